"""Korean analysis with Kiwi: sentence spans and content morphemes from one pass.

Kiwi's model takes over a second to load and ~100 MB, so there is one instance per process
(`get_kiwi`). `analyze` runs Kiwi once per text and returns both the sentences (exact substrings
of the input, with offsets) and their content morphemes, because summarizing needs both and a
second pass would double the cost.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiwipiepy import Kiwi

# Nouns that may join into a compound when written without a space (인공+지능 -> 인공지능).
# Kiwi splits most compounds; theme matching and ROUGE both want the word as the author wrote it.
_NOUN_TAGS = frozenset({"NNG", "NNP"})
# Light verbs and auxiliaries: they occur in nearly every sentence and carry no topic.
_LIGHT_STEMS = frozenset(
    [
        "하",
        "되",
        "있",
        "없",
        "않",
        "같",
        "이",
        "아니",
        "그렇",
        "이렇",
        "저렇",
        "어떻",
        "보",
        "주",
        "싶",
        "말",
        "받",
    ]
)
_QUOTE_OPEN = frozenset({"SSO"})
_QUOTE_CLOSE = frozenset({"SSC"})
_FINAL_PUNCT = frozenset({".", "?", "!", "…", "。", "？", "！"})
_TRAILING_DOTS = re.compile(r"[.,]+$")


@dataclass(frozen=True)
class AnalyzedSentence:
    text: str  # exactly text[start:end] of the analysed input
    start: int
    end: int
    morphemes: tuple[str, ...]


@dataclass(frozen=True)
class Analysis:
    text: str
    sentences: tuple[AnalyzedSentence, ...]

    @property
    def morphemes(self) -> list[str]:
        return [m for s in self.sentences for m in s.morphemes]


@functools.lru_cache(maxsize=1)
def get_kiwi() -> Kiwi:
    """The process-wide Kiwi analyzer (loaded lazily, once)."""
    from kiwipiepy import Kiwi

    return Kiwi()


def _base_tag(tag: str) -> str:
    # Irregular conjugations come tagged "VV-I"/"VA-R"; the class is what matters here.
    return tag.split("-", 1)[0]


def _content(tokens: Sequence[Any]) -> list[str]:
    """Content morphemes of one token run (one sentence or one short text)."""
    out: list[str] = []
    compound = ""
    compound_end = -1
    for tok in tokens:
        tag = _base_tag(tok.tag)
        if tag in _NOUN_TAGS:
            if compound and tok.start == compound_end:
                compound += tok.form
            else:
                if compound:
                    out.append(compound)
                compound = tok.form
            compound_end = tok.start + tok.len
            continue
        if compound:
            out.append(compound)
            compound = ""
        if tag in ("VV", "VA"):
            if tok.form not in _LIGHT_STEMS:
                out.append(tok.form + "다")
        elif tag == "XR":
            out.append(tok.form)
        elif tag == "SL":
            out.append(tok.form.lower().rstrip("."))
        elif tag == "SN":
            number = _TRAILING_DOTS.sub("", tok.form)
            if number:
                out.append(number)
    if compound:
        out.append(compound)
    return [m for m in out if m]


def _sentence_cuts(tokens: Sequence[Any], text: str, start: int, end: int) -> list[int]:
    """Extra boundaries inside one Kiwi sentence, as absolute offsets.

    Kiwi keeps `말했다. "다음 인용."라고 했다` together when a quotation follows a finished
    sentence; a final ending + full stop + space at quote depth 0 is a boundary.
    """
    cuts: list[int] = []
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.tag in _QUOTE_OPEN:
            depth += 1
        elif tok.tag in _QUOTE_CLOSE:
            depth = max(0, depth - 1)
        elif (
            tok.tag == "SF"
            and depth == 0
            and tok.form in _FINAL_PUNCT
            and i > 0
            and i + 1 < len(tokens)
        ):
            after = tok.start + tok.len
            nxt = tokens[i + 1]
            prev_tag = _base_tag(tokens[i - 1].tag)
            if (
                prev_tag in ("EF", "SF", "SSC")
                and start < after < end
                and text[after : nxt.start].strip() == ""
                and nxt.start > after
                and nxt.tag in _QUOTE_OPEN
            ):
                cuts.append(after)
    return cuts


def _analysis(text: str, sents: Iterable[Any]) -> Analysis:
    """Sentences (with extra cuts and quote fixes) and morphemes from Kiwi's sentences."""
    raw: list[tuple[int, int, list[Any]]] = []
    for sent in sents:
        tokens = list(sent.tokens or [])
        bounds = [sent.start, *_sentence_cuts(tokens, text, sent.start, sent.end), sent.end]
        for a, b in itertools.pairwise(bounds):
            raw.append((a, b, [t for t in tokens if a <= t.start < b]))
    raw = _fix_dangling_quotes(raw, text)
    sentences: list[AnalyzedSentence] = []
    for a, b, toks in raw:
        # Trim whitespace by moving offsets, never by rewriting the text.
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            sentences.append(AnalyzedSentence(text[a:b], a, b, tuple(_content(toks))))
    return Analysis(text, tuple(sentences))


def analyze(text: str) -> Analysis:
    """Split `text` into sentences and content morphemes with a single Kiwi pass."""
    return analyze_many([text])[0]


def analyze_many(texts: Sequence[str]) -> list[Analysis]:
    """`analyze` for many texts in one batch: one Kiwi pass per text, spread over Kiwi's
    worker threads (a digest's posts are analysed together, so throughput is what counts)."""
    out = [Analysis(text, ()) for text in texts]
    todo = [i for i, text in enumerate(texts) if text.strip()]
    if not todo:
        return out
    kiwi = get_kiwi()
    if len(todo) == 1:
        i = todo[0]
        out[i] = _analysis(texts[i], kiwi.split_into_sents(texts[i], return_tokens=True))
        return out
    batch = kiwi.split_into_sents([texts[i] for i in todo], return_tokens=True)
    for i, sents in zip(todo, batch, strict=True):
        out[i] = _analysis(texts[i], sents)
    return out


def _fix_dangling_quotes(
    raw: list[tuple[int, int, list[Any]]], text: str
) -> list[tuple[int, int, list[Any]]]:
    """Move an opening quote that Kiwi left at the end of a sentence to the next one.

    `그는 말했다."좋아."` comes back as `그는 말했다."` + `좋아."`.
    """
    fixed = list(raw)
    for i in range(len(fixed) - 1):
        a, b, toks = fixed[i]
        if toks and toks[-1].tag in _QUOTE_OPEN and toks[-1].start + toks[-1].len == b:
            quote = toks[-1]
            _, nb, ntoks = fixed[i + 1]
            fixed[i] = (a, quote.start, toks[:-1])
            fixed[i + 1] = (quote.start, nb, [quote, *ntoks])
    return [(a, b, t) for a, b, t in fixed if text[a:b].strip()]


def content_morphemes(text: str) -> list[str]:
    """Content morphemes of a short text, in order.

    인공지능은/인공지능을 -> 인공지능; 투자하는/투자를 -> 투자.

    Nouns written together form one compound (인공지능, 머신러닝); verb and adjective stems end
    in 다 (바꿨다 -> 바꾸다); Latin words are lowercased; light verbs (하다, 있다) are dropped.
    """
    if not text.strip():
        return []
    return _content(get_kiwi().tokenize(text))


def morphemes_of(texts: Iterable[str]) -> list[list[str]]:
    """Content morphemes for many short texts (Kiwi batches them internally)."""
    items = list(texts)
    return [_content(tokens) for tokens in get_kiwi().tokenize(items)] if items else []
