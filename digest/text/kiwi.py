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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiwipiepy import Kiwi

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
_FINAL_PUNCT_ENDS = tuple(_FINAL_PUNCT)
_TRAILING_DOTS = re.compile(r"[.,]+$")
# Where `_sentence_cuts` can cut at all: final punctuation, then whitespace, inside a Kiwi
# sentence. A cheap test that spares the token walk for most sentences.
_CUT_CANDIDATE = re.compile(r"[.?!…。？！]\s+\S")
_WORD = re.compile(r"\S+")
_EYES = re.compile(r"[:;=]-?$")
_STRAY_STOPS = re.compile(r"[.!?~…]+")
# Laughs, cries and ASCII faces: ㅋㅋ, ㅎㅎ, ㅠㅠ, ^^, ^_^, :), ;-), :D, T_T.
_EMOTICON = re.compile(r"(?:[ㄱ-ㅎㅏ-ㅣ]+|\^[_\-.]?\^|[:;=]-?[()DPpO3]|T[_.]?T)+[.!~;]*")


@dataclass(frozen=True)
class AnalyzedSentence:
    text: str  # exactly text[start:end] of the analysed input
    start: int
    end: int
    morphemes: tuple[str, ...]
    final: bool  # ends like a sentence: a final ending (EF) or final punctuation


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


# What `_content` does with a token, by its tag (tags are few, so each is classified once).
# Nouns may join into a compound when written without a space (인공+지능 -> 인공지능): Kiwi
# splits most compounds; theme matching and ROUGE both want the word as the author wrote it.
_SKIP, _NOUN, _STEM, _ROOT, _LATIN, _NUMBER = range(6)
_KIND_OF_BASE = {"NNG": _NOUN, "NNP": _NOUN, "VV": _STEM, "VA": _STEM, "XR": _ROOT}
_KIND_OF_BASE |= {"SL": _LATIN, "SN": _NUMBER}
_KINDS: dict[str, int] = {}


def _kind(tag: str) -> int:
    kind = _KINDS.get(tag)
    if kind is None:
        kind = _KINDS[tag] = _KIND_OF_BASE.get(_base_tag(tag), _SKIP)
    return kind


def _content(tokens: Sequence[Any]) -> list[str]:
    """Content morphemes of one token run (one sentence or one short text).

    On the hot path of every summary (tens of thousands of tokens a digest): one dict lookup
    per token, and token attributes read only for the tokens that are kept."""
    out: list[str] = []
    compound = ""
    compound_end = -1
    kinds = _KINDS
    for tok in tokens:
        tag = tok.tag
        kind = kinds.get(tag)
        if kind is None:
            kind = _kind(tag)
        if kind == _NOUN:
            start = tok.start
            if compound and start == compound_end:
                compound += tok.form
            else:
                if compound:
                    out.append(compound)
                compound = tok.form
            compound_end = start + tok.len
            continue
        if compound:
            out.append(compound)
            compound = ""
        if kind == _SKIP:
            continue
        form = tok.form
        if kind == _STEM:
            if form not in _LIGHT_STEMS:
                out.append(form + "다")
        elif kind == _ROOT:
            out.append(form)
        elif kind == _LATIN:
            out.append(form.lower().rstrip("."))
        else:
            number = _TRAILING_DOTS.sub("", form)
            if number:
                out.append(number)
    if compound:
        out.append(compound)
    return [m for m in out if m]


def _sentence_cuts(tokens: Sequence[Any], text: str, start: int, end: int) -> list[int]:
    """Extra boundaries inside one Kiwi sentence, as absolute offsets.

    Kiwi keeps a finished sentence together with what follows when that starts with a quote,
    a bracket or a symbol (`말했다. "다음 인용."라고 했다`, `읽어봅시다. (중간관리자라면)`,
    `기능입니다. ⇒ 결국`); a final ending + final punctuation + space, outside quotes and
    brackets, is a boundary whatever follows.
    """
    if not _CUT_CANDIDATE.search(text, start, end):
        return []  # no final punctuation followed by space and a symbol: nothing to cut
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
            ):
                # An emoticon after the full stop (`우연일까요? :)`, `좋았다. ㅋㅋ`) stays with
                # the sentence it comments on, as Kiwi itself does; the cut moves after it.
                word = _WORD.match(text, nxt.start, end)
                if word and _EMOTICON.fullmatch(word.group()):
                    if text[word.end() : end].strip():
                        cuts.append(word.end())
                else:
                    cuts.append(after)
    return cuts


# Symbols that may follow a sentence's last word: punctuation, quotes, brackets, emoji.
_TRAILING_SYMBOLS = frozenset({"SF", "SP", "SSO", "SSC", "SE", "SO", "SW", "SB", "W_EMOJI"})


def _ends_sentence(tokens: Sequence[Any]) -> bool:
    """Whether a token run ends like a sentence: with final punctuation (`.`, `?`, `!`, ...)
    or with a final ending (`...했다`, `...까요`) before any closing quotes and symbols.
    Headings, labels and list items (`정보 자본: 현대의 새로운 힘`) end in neither."""
    if tokens and tokens[-1].form in (":", "："):
        return False  # a lead-in (`결론은 이렇다:`) introduces what follows
    for tok in reversed(tokens):
        tag = tok.tag
        if tag == "SF":
            return bool(tok.form.endswith(_FINAL_PUNCT_ENDS))
        if tag not in _TRAILING_SYMBOLS:
            # Before an emoticon Kiwi may read a polite final ending as connective
            # (`좋았어요 :)`: 어요/EC); a connective in 요 ends no clause anyway.
            base = _base_tag(tag)
            return base == "EF" or (base == "EC" and tok.form.endswith("요"))
    return False


# What can only continue a word: particles, endings, the copula, suffixes. No sentence
# starts with one.
_ATTACHED_PREFIXES = ("J", "E", "VCP", "XS")
_FULL_STOPS = frozenset({".", "。"})


def _rejoin_attached(sents: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    """Kiwi's sentences, with a run that starts with a particle or ending written right
    after the previous run put back onto it: Kiwi sometimes ends a sentence after a closing
    quote or a question mark and starts the next with the particle that follows
    (`'다니'` + `는 드라마의...`, `“항상”` + `이라고 말할 수도...`). Never after a full
    stop: `합니다.이는` is two sentences written without a space."""
    held: list[Any] = []
    for tokens in sents:
        if not tokens:
            continue
        first = tokens[0]
        if (
            held
            and first.start == held[-1].end
            and first.tag.startswith(_ATTACHED_PREFIXES)
            and held[-1].form not in _FULL_STOPS  # `합니다.이는`: Kiwi reads 이는 as 이+는
        ):
            held.extend(tokens)
            continue
        if held:
            yield held
        held = list(tokens)
    if held:
        yield held


def _attach_emoticons(
    raw: list[tuple[int, int, Sequence[Any]]], text: str
) -> list[tuple[int, int, Sequence[Any]]]:
    """Move an emoticon or emoji that opens a sentence (`ㅋㅋ. 또 가자.`, `🎉 내일...`), or
    a stray full stop after one (`:).`), back onto the sentence before it when that one is
    finished: it comments on what was said."""
    fixed = list(raw)
    for i in range(1, len(fixed)):
        a, b, toks = fixed[i]
        word = _WORD.search(text, a, b)
        if not word or not toks:
            continue
        piece, cut = word.group(), word.end()
        if not (
            (toks[0].tag == "W_EMOJI" and all(t.tag == "W_EMOJI" for t in toks if t.start < cut))
            or _EMOTICON.fullmatch(piece)
            or _STRAY_STOPS.fullmatch(piece)
        ):
            continue  # the common case: a sentence that starts with a word
        pa, _, ptoks = fixed[i - 1]
        if not ptoks or not _ends_sentence(ptoks):
            continue
        moved = [t for t in toks if t.start < cut]
        fixed[i - 1] = (pa, cut, [*ptoks, *moved])
        fixed[i] = (cut, b, [t for t in toks if t.start >= cut])
    return [(a, b, t) for a, b, t in fixed if text[a:b].strip()]


def _analysis(text: str, sents: Iterable[Sequence[Any]]) -> Analysis:
    """Sentences (with extra cuts and quote fixes) and morphemes from Kiwi's token runs, one
    run per sentence Kiwi found."""
    raw: list[tuple[int, int, Sequence[Any]]] = []
    for tokens in _rejoin_attached(sents):
        start, end = tokens[0].start, tokens[-1].end
        cuts = _sentence_cuts(tokens, text, start, end)
        if not cuts:
            raw.append((start, end, tokens))
            continue
        for a, b in itertools.pairwise([start, *cuts, end]):
            raw.append((a, b, [t for t in tokens if a <= t.start < b]))
    raw = _attach_emoticons(_fix_dangling_quotes(raw, text), text)
    sentences: list[AnalyzedSentence] = []
    for a, b, toks in raw:
        # Trim whitespace by moving offsets, never by rewriting the text.
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            content = tuple(_content(toks))
            sentences.append(AnalyzedSentence(text[a:b], a, b, content, _ends_sentence(toks)))
    return Analysis(text, tuple(sentences))


def analyze(text: str) -> Analysis:
    """Split `text` into sentences and content morphemes with a single Kiwi pass."""
    return analyze_many([text])[0]


def analyze_many(texts: Sequence[str]) -> list[Analysis]:
    """`analyze` for many texts in one batch."""
    return list(iter_analyses(texts))


def iter_analyses(texts: Sequence[str]) -> Iterator[Analysis]:
    """`analyze` for many texts, yielded in order as Kiwi finishes them: one Kiwi pass per
    text, spread over Kiwi's worker threads, so a caller that works on each result as it
    comes overlaps its work with Kiwi's on the rest."""
    todo = [text for text in texts if text.strip()]
    if not todo:
        yield from (Analysis(text, ()) for text in texts)
        return
    kiwi = get_kiwi()
    if len(todo) == 1:
        batch = iter([kiwi.tokenize(todo[0], split_sents=True)])
    else:
        batch = iter(kiwi.tokenize(todo, split_sents=True))
    for text in texts:
        yield _analysis(text, next(batch)) if text.strip() else Analysis(text, ())


def _fix_dangling_quotes(
    raw: list[tuple[int, int, Sequence[Any]]], text: str
) -> list[tuple[int, int, Sequence[Any]]]:
    """Move an opening quote that Kiwi left at the end of a sentence to the next one.

    `그는 말했다."좋아."` comes back as `그는 말했다."` + `좋아."`.
    """
    fixed = list(raw)
    for i in range(len(fixed) - 1):
        a, b, toks = fixed[i]
        if (
            toks
            and toks[-1].tag in _QUOTE_OPEN
            and toks[-1].start + toks[-1].len == b
            # `:(` is a face, not a bracket
            and not _EYES.search(text, max(0, toks[-1].start - 2), toks[-1].start)
        ):
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
