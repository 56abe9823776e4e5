"""Extractive summarization (sumy ranking on Kiwi/pysbd sentences, our selection rules)."""

from digest.summarize.core import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    SUMMARY_VERSION,
    Summarizer,
    SummaryConfig,
    SummaryRequest,
    rank_presplit,
    summarize,
    summarize_batch,
    summarize_many,
    summarizer_version,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "SUMMARY_VERSION",
    "Summarizer",
    "SummaryConfig",
    "SummaryRequest",
    "rank_presplit",
    "summarize",
    "summarize_batch",
    "summarize_many",
    "summarizer_version",
]
