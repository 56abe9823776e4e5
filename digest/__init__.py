"""digest: a newsletter digest generator and mailer."""

import os

# numpy's OpenBLAS would start a thread per core for the summarizer's small matrices, and
# those threads spin between calls, taking CPU from Kiwi's analysis threads (a batch of
# summaries measured about 10% faster with one). Set before anything imports numpy; an
# explicit setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
