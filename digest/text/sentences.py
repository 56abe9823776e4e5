"""Sentence splitting that returns exact substrings of the input.

Korean goes through Kiwi, English through pysbd (nupunkt was equally good on abbreviations,
decimals and quotes in a side-by-side check, but pysbd is already a dependency). Blank lines
always end a sentence, and so does a line break before a list item or after a line that
ends in terminal punctuation; other single line breaks are hard wraps and are ignored.
The language is decided per paragraph so mixed posts get the right splitter for each part.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from digest.text.english import english_terms
from digest.text.kiwi import iter_analyses
from digest.text.lang import detect_language

if TYPE_CHECKING:
    import pysbd

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# Bullets, 1. 1) (1), and the Korean enumeration 가. 나. 다. ... 하.
_LIST_ITEM = re.compile(
    r"\s*(?:[-*+•·▶▷■□◆◇○●※✔✓]|\d{1,3}[.)]|[가나다라마바사아자차카타파하][.)]|\(\d{1,3}\))\s"
)
_LINE_END = re.compile(r"""[.?!。…？！:]["'”’)\]]*\s*$""")
_SENTENCE_END = re.compile(r"""[.?!。…？！]["'”’)\]]*$""")
# A line this short that does not end a sentence is a heading or label, not a hard wrap.
_SHORT_LINE = 40
# Both splitters cost more than linear time on long input (pysbd on runs of "a. a. a.", Kiwi
# on a long word: 8 s for 20,000 characters of Hangul without a space), so a block is split
# into pieces of at most this many characters, cut after a sentence end where there is one ...
_PIECE = 2000
_PIECE_CUT = re.compile(r"""[.?!。…？！]["'”’)\]]*\s+|\s+""")
# ... and a run this long without whitespace is no word (base64, a row of dots, a hostile
# feed's filler): it becomes a span of its own, never analysed, never summary material.
_LONG_RUN = re.compile(r"\S{500,}")


@dataclass(frozen=True)
class Span:
    text: str  # exactly source[start:end]
    start: int
    end: int
    language: str  # "ko" or "en"
    terms: tuple[str, ...]  # content morphemes (ko) or stemmed content words (en)
    block: int  # index of the block (see `_blocks`) the sentence came from
    final: bool  # ends like a sentence, unlike a heading, label or list item


@functools.lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def _blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of paragraph-like blocks: sentences never cross a block boundary. A
    block is a paragraph (text between blank lines), or a line of one that cannot be a hard
    wrap: a list item, a line ending a sentence, a short heading-like line."""
    blocks: list[tuple[int, int]] = []
    pos = 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        _split_lines(text, pos, end, blocks)
        if match:
            pos = match.end()
    return [(a, b) for a, b in blocks if text[a:b].strip()]


def _split_lines(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    """Split a paragraph into blocks at the line breaks that are not hard wraps."""
    block_start = start
    line_start = start
    # A short line is a heading or label; but in text hard-wrapped at a narrow width every
    # line is short. A paragraph of 3+ lines whose inner lines are all close to its longest
    # (20+ characters) is wrapped: there, "short" is relative to the longest line.
    lengths = [len(line.strip()) for line in text[start:end].split("\n")]
    longest = max(lengths)
    wrapped = len(lengths) >= 3 and longest >= 20 and all(n >= 0.6 * longest for n in lengths[1:-1])
    short = int(longest * 0.6) if wrapped else _SHORT_LINE
    while True:
        nl = text.find("\n", line_start, end)
        if nl < 0:
            break
        line = text[line_start:nl]
        nxt_end = text.find("\n", nl + 1, end)
        nxt = text[nl + 1 : end if nxt_end < 0 else nxt_end]
        if _LIST_ITEM.match(nxt) or _LINE_END.search(line) or len(line.strip()) < short:
            out.append((block_start, nl))
            block_start = nl + 1
        line_start = nl + 1
    out.append((block_start, end))


def _pieces(flat: str, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    """(start, end, is_text) of the pieces of the block flat[start:end] that the splitters
    see one at a time (see `_PIECE`); a long run without whitespace comes as not text."""
    pos = start
    for run in [*_LONG_RUN.finditer(flat, start, end), None]:
        stop = run.start() if run else end
        while stop - pos > _PIECE:
            window = flat[pos + _PIECE // 2 : pos + _PIECE]
            cuts = [m for m in _PIECE_CUT.finditer(window) if m.group().strip()] or list(
                _PIECE_CUT.finditer(window)
            )
            cut = pos + _PIECE // 2 + cuts[-1].end() if cuts else pos + _PIECE
            yield pos, cut, True
            pos = cut
        if stop > pos:
            yield pos, stop, True
        if run:
            yield run.start(), run.end(), False
            pos = run.end()


def _english_spans(block: str, offset: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos = 0
    for seg in _segmenter().segment(block):
        # pysbd (clean=False) returns consecutive pieces of its input; find() guards against
        # the rare piece it normalises.
        seg = seg.strip()
        if not seg:
            continue
        found = block.find(seg, pos)
        if found < 0:
            continue
        spans.append((offset + found, offset + found + len(seg)))
        pos = found + len(seg)
    return spans


def split_spans(text: str, language: str | None = None) -> list[Span]:
    """Sentences of `text` with offsets, language and content terms.

    `language` ("ko"/"en"/None/"auto") is a hint; each block is detected on its own.
    """
    return split_spans_many([text], [language])[0]


def split_spans_many(
    texts: Sequence[str], languages: Sequence[str | None] | None = None
) -> list[list[Span]]:
    """`split_spans` for many texts; their Korean blocks go through Kiwi in one batch."""
    return list(iter_spans_many(texts, languages))


def iter_spans_many(
    texts: Sequence[str], languages: Sequence[str | None] | None = None
) -> Iterator[list[Span]]:
    """`split_spans_many`, yielding each text's spans as soon as Kiwi has analysed it."""
    hints = [
        None if lang in (None, "", "auto") else lang
        for lang in (languages if languages is not None else [None] * len(texts))
    ]
    # Hard wraps become spaces (same length, so offsets stay valid) so that neither splitter
    # treats them as boundaries; the returned text is always taken from the original.
    flats = [text.replace("\n", " ").replace("\r", " ") for text in texts]
    plans: list[list[tuple[int, int, str, int, bool]]] = []
    korean: list[str] = []
    for text, flat, hint in zip(texts, flats, hints, strict=True):
        plan = [
            (a, b, lang, index, is_text)
            for index, (start, end) in enumerate(_blocks(text))
            for lang in [detect_language(text[start:end], hint)]
            for a, b, is_text in _pieces(flat, start, end)
        ]
        korean.extend(flat[a:b] for a, b, lang, _, is_text in plan if is_text and lang == "ko")
        plans.append(plan)
    analyses = iter_analyses(korean)
    for text, flat, plan in zip(texts, flats, plans, strict=True):
        spans: list[Span] = []
        for a, b, lang, index, is_text in plan:
            if not is_text:
                spans.append(Span(text[a:b], a, b, lang, (), index, False))
            elif lang == "ko":
                for s in next(analyses).sentences:
                    start, end = a + s.start, a + s.end
                    piece = text[start:end]
                    spans.append(Span(piece, start, end, "ko", s.morphemes, index, s.final))
            else:
                for start, end in _english_spans(flat[a:b], a):
                    piece = text[start:end]
                    terms = tuple(english_terms(piece))
                    spans.append(Span(piece, start, end, "en", terms, index, punctuated(piece)))
        yield spans


def starts_list_item(sentence: str) -> bool:
    """Whether a sentence starts with a list marker (`- `, `1. `, `가. `, `(1) `)."""
    return _LIST_ITEM.match(sentence) is not None


def punctuated(sentence: str) -> bool:
    """Whether a sentence ends in final punctuation, before any closing quotes/brackets."""
    return _SENTENCE_END.search(sentence) is not None


def split_sentences(text: str, language: str | None = None) -> list[str]:
    """Sentences of `text`, each an exact substring of it, in order."""
    return [s.text for s in split_spans(text, language)]
