"""TextRank centrality in numpy: the same ratings as sumy's `TextRankSummarizer`, faster.

sumy builds the similarity matrix with a Python double loop (`list.count` per word pair and a
`numpy.isclose` per sentence pair), which cost more than the rest of ranking on a long post.
Here the overlap `sum(words2.count(w) for w in words1)` is the dot product of the two
sentences' term-count vectors, so the whole matrix is one product of a sparse count matrix;
the normalisation, damping and power method are sumy's, step for step, and
`tests/test_summarize.py` checks the ratings against sumy's own. sumy stays the implementation
behind the selectable `textrank` algorithm; the default `hybrid` uses this one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# sumy.summarizers.text_rank.TextRankSummarizer's constants.
_EPSILON = 1e-4
_DAMPING = 0.85
_ZERO_DIVISION_PREVENTION = 1e-7


def _overlap(terms: Sequence[Sequence[str]]) -> np.ndarray:
    """counts[i] . counts[j] for every pair: how often sentence i's words occur in j."""
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for i, words in enumerate(terms):
        for word in words:
            rows.append(i)
            cols.append(vocab.setdefault(word.lower(), len(vocab)))
    n, width = len(terms), max(len(vocab), 1)
    cells = np.asarray(rows, dtype=np.intp) * width + np.asarray(cols, dtype=np.intp)
    counts = np.bincount(cells, minlength=n * width).reshape(n, width).astype(np.float64)
    overlap: np.ndarray = counts @ counts.T
    return overlap


def textrank_scores(terms: Sequence[Sequence[str]]) -> list[float]:
    """A TextRank rating per sentence (its stationary probability), as sumy computes it."""
    n = len(terms)
    if n == 0:
        return []
    if not any(terms):
        return [0.0] * n
    rank = _overlap(terms)
    logs = np.array([math.log(len(words)) if words else 0.0 for words in terms])
    norm = logs[:, np.newaxis] + logs[np.newaxis, :]
    # sumy: rank / (log|w1| + log|w2|), or the bare rank when both sentences have one word.
    single = np.isclose(norm, 0.0)
    weights = np.where(rank == 0, 0.0, np.where(single, rank, rank / np.where(single, 1.0, norm)))
    weights /= weights.sum(axis=1)[:, np.newaxis] + _ZERO_DIVISION_PREVENTION
    matrix = np.full((n, n), (1.0 - _DAMPING) / n) + _DAMPING * weights
    transposed = matrix.T
    p_vector = np.array([1.0 / n] * n)
    lambda_val = 1.0
    while lambda_val > _EPSILON:
        next_p = np.dot(transposed, p_vector)
        lambda_val = float(np.linalg.norm(np.subtract(next_p, p_vector)))
        p_vector = next_p
    return [float(v) for v in p_vector]
