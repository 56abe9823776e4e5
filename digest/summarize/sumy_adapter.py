"""Run sumy's summarizers on sentences we have already split and tokenized.

sumy's own `Tokenizer` would split with NLTK punkt (unavailable offline) and, for Korean,
start a JVM through konlpy. Building the `ObjectDocumentModel` ourselves keeps sumy's ranking
code while sentences and words come from Kiwi / pysbd. Every sumy summarizer funnels through
`_get_best_sentences`, which accepts a callable count: we pass one that records the full
ranking, so any algorithm yields a score per sentence and selection (budget, MMR, order)
stays ours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
from sumy.nlp.stemmers import null_stemmer
from sumy.summarizers.edmundson import EdmundsonSummarizer
from sumy.summarizers.kl import KLSummarizer
from sumy.summarizers.lex_rank import LexRankSummarizer
from sumy.summarizers.lsa import LsaSummarizer
from sumy.summarizers.luhn import LuhnSummarizer
from sumy.summarizers.sum_basic import SumBasicSummarizer
from sumy.summarizers.text_rank import TextRankSummarizer

SUMY_ALGORITHMS = ("lexrank", "textrank", "lsa", "luhn", "edmundson", "kl", "sumbasic")


class _TermTokenizer:
    """The duck-typed tokenizer sumy's `Sentence.words` calls: looks up precomputed terms."""

    def __init__(self, terms_by_text: dict[str, tuple[str, ...]]) -> None:
        self._terms = terms_by_text

    def to_words(self, text: str) -> tuple[str, ...]:
        return self._terms.get(text, ())


def build_document(
    texts: Sequence[str], terms: Sequence[Sequence[str]], title_terms: Sequence[str] = ()
) -> ObjectDocumentModel:
    table: dict[str, tuple[str, ...]] = {}
    sentences: list[Sentence] = []
    for i, (text, words) in enumerate(zip(texts, terms, strict=True)):
        # sumy strips and hashes sentences by text; a per-index key keeps equal sentences
        # (a repeated refrain) distinct so every index gets its own rating.
        key = f"{i}\x1f{text.strip()}"
        table[key] = tuple(words)
        sentences.append(Sentence(key, _TermTokenizer(table)))
    heading: list[Sentence] = []
    if title_terms:
        table["\x1ftitle"] = tuple(title_terms)
        heading.append(Sentence("\x1ftitle", _TermTokenizer(table), is_heading=True))
    return ObjectDocumentModel([Paragraph([*heading, *sentences])])


def _make(algorithm: str, title_terms: Sequence[str]) -> Any:
    if algorithm == "lexrank":
        return LexRankSummarizer(null_stemmer)
    if algorithm == "textrank":
        return TextRankSummarizer(null_stemmer)
    if algorithm == "lsa":
        return LsaSummarizer(null_stemmer)
    if algorithm == "luhn":
        return LuhnSummarizer(null_stemmer)
    if algorithm == "kl":
        return KLSummarizer(null_stemmer)
    if algorithm == "sumbasic":
        return SumBasicSummarizer(null_stemmer)
    if algorithm == "edmundson":
        # Cue words need a stigma list we do not have; key + title + location remain.
        summarizer = EdmundsonSummarizer(
            null_stemmer, cue_weight=0.0, key_weight=1.0, title_weight=1.0, location_weight=1.0
        )
        summarizer.bonus_words = tuple(title_terms) or ("\x00",)
        summarizer.null_words = ("\x00",)  # stop words are already gone from our terms
        return summarizer
    raise ValueError(f"unknown sumy algorithm {algorithm!r}")


def sumy_scores(
    algorithm: str,
    texts: Sequence[str],
    terms: Sequence[Sequence[str]],
    title_terms: Sequence[str] = (),
) -> list[float]:
    """A score per sentence (higher is better) from the named sumy summarizer.

    The scores are sumy's own ratings where they are numeric, else a rank-derived value.
    """
    n = len(texts)
    if n == 0:
        return []
    if not any(terms):
        return [0.0] * n
    document = build_document(texts, terms, title_terms)
    index = {id(s): i for i, s in enumerate(document.sentences)}
    ranked: list[Any] = []

    def capture(infos: list[Any]) -> list[Any]:
        ranked.extend(infos)
        return infos

    count: Callable[[list[Any]], list[Any]] = capture
    _make(algorithm, title_terms)(document, count)
    scores = [0.0] * n
    for position, info in enumerate(ranked):
        i = index.get(id(info.sentence))
        if i is None:
            continue
        rating = info.rating
        scores[i] = float(rating) if isinstance(rating, int | float) else float(n - position)
    return scores
