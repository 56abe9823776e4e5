"""Language-aware text helpers: language detection, sentence splitting, Korean morphemes."""

from digest.text.kiwi import (
    Analysis,
    AnalyzedSentence,
    analyze,
    analyze_many,
    content_morphemes,
    get_kiwi,
)
from digest.text.lang import detect_language
from digest.text.sentences import Span, split_sentences, split_spans, split_spans_many

__all__ = [
    "Analysis",
    "AnalyzedSentence",
    "Span",
    "analyze",
    "analyze_many",
    "content_morphemes",
    "detect_language",
    "get_kiwi",
    "split_sentences",
    "split_spans",
    "split_spans_many",
]
