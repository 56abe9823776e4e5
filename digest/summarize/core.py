"""Extractive summaries: rank sentences (sumy or our blend), then choose under a budget.

Selection rules shared by every algorithm:
  * sentences are exact substrings of the post and come back in the post's order;
  * the character budget is met by choosing sentences, never by cutting one;
  * a text that already fits the budget is its own summary;
  * boilerplate (captions, bylines, contact and subscribe lines) is never chosen.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from digest.config import SummaryConfig
from digest.errors import SummaryError
from digest.models import Summary
from digest.summarize.boilerplate import is_boilerplate
from digest.summarize.centrality import textrank_scores
from digest.summarize.kinds import (
    AUTO,
    HYBRID_WEIGHTS,
    KIND_WEIGHTS,
    LIST,
    HybridWeights,
    detect_kind,
)
from digest.summarize.sumy_adapter import SUMY_ALGORITHMS, sumy_scores
from digest.text.english import english_terms
from digest.text.kiwi import content_morphemes, morphemes_of
from digest.text.lang import detect_language
from digest.text.sentences import Span, iter_spans_many, punctuated, starts_list_item
from digest.text.versions import package_versions

# Part of the summary cache's key: raise it whenever the same text and settings would give a
# different summary (a new selection rule, a new analyzer), so an upgrade does not serve
# summaries the old code made. 2: headings and list items are passed over; Korean sentences
# end after a final ending and full stop before any symbol, not only before a quote. 3: long
# paragraphs are split in pieces, only the first `MAX_CANDIDATES` sentences are ranked.
# 4: weights per kind of text; decks by default; tables, preambles, question headings and
# more captions are never quoted.
SUMMARY_VERSION = 4


@functools.lru_cache(maxsize=1)
def summarizer_version() -> str:
    """What a cached summary depends on besides its input and settings: this code's
    `SUMMARY_VERSION` and the sentence splitters' versions (a new Kiwi model may split and
    tag differently)."""
    versions = package_versions("kiwipiepy", "kiwipiepy_model", "pysbd")
    return " ".join([f"summary-v{SUMMARY_VERSION}", *versions])


HYBRID = "hybrid"
ALGORITHMS = ("lead", *SUMY_ALGORITHMS, HYBRID)
DEFAULT_ALGORITHM = HYBRID

# Candidate length bounds in characters. Shorter "sentences" are fragments, labels or
# headings; longer ones are usually run-ons from missing punctuation and eat the budget.
_MIN_CHARS = {"ko": 12, "en": 25}
_MAX_CHARS = 320
# A lone line without a full stop in a post that uses them is a heading up to this length
# even when it is a clause (`우리에게 힘이 있다`); longer, it is a sentence missing its stop.
_HEADING_CHARS = 40
_WORDY = re.compile(r"[^\W_]")  # a letter or digit, in any script
_SEPARATOR = " "


_TEASER_END = re.compile(
    r"(?:\.\.\.|…|\[…\]|\[\.\.\.\]|더\s*보기|read more|continue reading)\W*$", re.IGNORECASE
)


@dataclass(frozen=True)
class Candidate:
    text: str
    terms: tuple[str, ...]
    position: int
    boilerplate: bool = False  # not summary material: boilerplate, or a heading (see below)


# Centrality compares every sentence with every other (n x n matrices): a post of 15,000
# sentences (a 200,000-character feed entry) would take minutes and gigabytes. A summary comes
# from the first this many sentences, the length of a very long essay (about 40,000 characters).
MAX_CANDIDATES = 600

# A series preamble or an editor's note at the top speaks about the post, not its news
# (`[해외DS]는 해외 데이터 사이언스 소식을 담았습니다`, `This post is part of a series`).
_PREAMBLE = re.compile(
    r"^\s*[\[【<〈][^\]】>〉]{1,20}[\]】>〉]\s*(?:은|는|이란|란)\s"
    r"|편집자\s*주"
    r"|(?:연재|시리즈|코너|기획)\S*\s.*(?:담았|소개합|소개해|전해\s*드|전합|정리했|다룹|다뤄|싣습|연재합)"
    r"|^\s*editor['’]s note"
    r"|\bthis (?:article|post|story|piece|essay|newsletter) (?:is|was) "
    r"(?:part of|the \w+ (?:in|of)|originally|adapted|first published)"
    r"|\bthis is (?:part \w+|the \w+ (?:post|article|installment|part)) (?:of|in)\b"
    r"|\boriginally (?:published|appeared) (?:in|on|at)\b",
    re.IGNORECASE,
)
_PREAMBLE_BLOCKS = 2  # a preamble is in the first blocks of a post
_QUESTION = re.compile(r"[?？][\"'”’)\]」』]*\s*$")
_QUESTION_HEADING_CHARS = 80


def _terms_for(text: str, language: str) -> list[str]:
    return content_morphemes(text) if language == "ko" else english_terms(text)


def _normalize(values: Sequence[float]) -> list[float]:
    if not values:
        return []
    low, high = min(values), max(values)
    if math.isclose(high, low):
        return [0.0 for _ in values]
    return [(v - low) / (high - low) for v in values]


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(count * b[term] for term, count in a.items() if term in b)
    if not dot:
        return 0.0
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm


def _title_overlap(terms: Sequence[str], title: frozenset[str]) -> float:
    if not title or not terms:
        return 0.0
    return len(title.intersection(terms)) / len(title)


def score_sentences(
    candidates: Sequence[Candidate],
    algorithm: str,
    title_terms: Sequence[str] = (),
    weights: HybridWeights = HYBRID_WEIGHTS,
) -> list[float]:
    """One score per candidate (boilerplate scores -inf); higher is better. Only the first
    `MAX_CANDIDATES` sentences that are summary material are ranked, the rest score -inf."""
    keep = [i for i, c in enumerate(candidates) if not c.boilerplate][:MAX_CANDIDATES]
    texts = [candidates[i].text for i in keep]
    terms = [candidates[i].terms for i in keep]
    n = len(keep)
    if algorithm == "lead":
        raw = [float(n - k) for k in range(n)]
    elif algorithm == HYBRID:
        centrality = _normalize(textrank_scores(terms))
        title = frozenset(title_terms)
        raw = [
            weights.centrality * centrality[k]
            + weights.title * _title_overlap(terms[k], title)
            + weights.position * math.exp(-k / weights.position_decay)
            for k in range(n)
        ]
    elif algorithm in SUMY_ALGORITHMS:
        raw = sumy_scores(algorithm, texts, terms, title_terms)
    else:
        raise SummaryError(
            f"unknown summary algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}"
        )
    scores = [-math.inf] * len(candidates)
    for k, i in enumerate(keep):
        scores[i] = raw[k]
    return scores


def select(
    candidates: Sequence[Candidate],
    scores: Sequence[float],
    *,
    count: int,
    max_chars: int,
    language: str,
    mmr_lambda: float = 1.0,
) -> list[int]:
    """Indices of the chosen candidates, in document order."""
    usable = [i for i, c in enumerate(candidates) if not c.boilerplate and scores[i] > -math.inf]
    low = _MIN_CHARS.get(language, 12)
    bounded = [i for i in usable if low <= len(candidates[i].text) <= _MAX_CHARS]
    # Fall back to any length rather than return nothing for a post of fragments.
    pool = bounded or usable
    if not pool or count <= 0:
        return []
    norm = dict(
        zip(pool, _normalize([scores[i] for i in pool]) if len(pool) > 1 else [1.0], strict=True)
    )
    bags = {i: Counter(candidates[i].terms) for i in pool}
    chosen: list[int] = []
    used = 0
    remaining = set(pool)
    while remaining and len(chosen) < count:
        best, best_value = -1, -math.inf
        for i in remaining:
            value = norm[i]
            if mmr_lambda < 1.0 and chosen:
                redundancy = max(_cosine(bags[i], bags[j]) for j in chosen)
                value = mmr_lambda * value - (1 - mmr_lambda) * redundancy
            if value > best_value or (value == best_value and i < best):
                best, best_value = i, value
        remaining.discard(best)
        if any(candidates[j].text == candidates[best].text for j in chosen):
            continue  # a refrain repeated in the post is worth one slot at most
        extra = len(candidates[best].text) + (len(_SEPARATOR) if chosen else 0)
        if used + extra > max_chars:
            continue  # too long for what is left of the budget: try the next best
        chosen.append(best)
        used += extra
    return sorted(chosen)


_WORD = re.compile(r"[^\W_]{2,}")


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _is_usable_description(description: str, text: str) -> bool:
    """Whether a publisher's description reads as a summary an author wrote (a deck), not
    a teaser, a copy of the text's opening or a site-wide blurb."""
    desc = _flat(description)
    if len(desc) < 20 or _TEASER_END.search(desc):
        return False
    body = _flat(text)
    # The opening of the body, cut (an automatic teaser), or a copy of some of its text.
    # A deck the page also shows as a paragraph of its own (a subheadline) is still a deck.
    if body.startswith(desc.rstrip(".…")):
        return desc in {_flat(block) for block in re.split(r"\n\s*\n", text)}
    if desc in body:
        return desc in {_flat(block) for block in re.split(r"\n\s*\n", text)}
    # A blurb about the site shares few words with the article: a deck restates some of its
    # facts, in words of its own. Words are compared by their first two letters (Korean
    # words carry their particles). The same blurb on many pages is caught by the caller.
    words = _WORD.findall(desc.lower())
    if len(words) < 3:
        return False
    lowered = body.lower()
    shared = sum(1 for w in words if w[:2] in lowered)
    return 4 * shared >= len(words)


def _deck(request: SummaryRequest, config: SummaryConfig) -> str | None:
    """The publisher's deck to use as the summary, or None (see `SummaryConfig.deck`)."""
    desc = request.description.strip()
    mode = request.deck or config.deck
    if not desc or mode == "never" or len(desc) > config.max_chars:
        return None
    if mode == "prefer":
        return None if _TEASER_END.search(desc) else desc
    if request.shared_description:
        return None
    return desc if _is_usable_description(desc, request.text) else None


class Summarizer:
    """Holds a configuration; the Kiwi analyzer itself is shared per process."""

    def __init__(self, config: SummaryConfig | None = None) -> None:
        self.config = config or SummaryConfig()

    def __call__(
        self, text: str, *, title: str = "", language: str | None = None, description: str = ""
    ) -> Summary:
        return summarize(
            text, title=title, config=self.config, language=language, description=description
        )

    def many(self, items: Iterable[tuple[str, str]], language: str | None = None) -> list[Summary]:
        """Summaries of (title, text) pairs, analysed in one batch."""
        return summarize_many(items, config=self.config, language=language)


def _resolve_language(text: str, config_language: str, hint: str | None) -> str:
    if config_language in ("ko", "en"):
        return config_language
    return detect_language(text, hint)


@dataclass(frozen=True)
class SummaryRequest:
    """One text to summarize: `language` is the source's declared language (a hint for
    detection when the configured language is "auto"); `description` is the source's own
    summary or deck, used instead of an extract as `deck` (or the config's `deck`) says:
    "prefer" whenever there is one, "auto" when it reads as a real summary (see
    `_is_usable_description`), "never"; `kind` chooses the ranking weights."""

    text: str
    title: str = ""
    language: str | None = None
    description: str = ""
    kind: str = AUTO  # the source's `text_kind`: news, essay, list, or auto (read the text)
    deck: str = ""  # the source's `deck` setting: auto, prefer, never ("" = the config's)
    # Other posts of the source carry the same description: a site blurb, never a deck.
    shared_description: bool = False


def summarize(
    text: str,
    *,
    title: str = "",
    config: SummaryConfig,
    language: str | None = None,
    description: str = "",
) -> Summary:
    """Extractive summary of `text` under `config`.

    `language` is the source's declared language, a hint for detection when
    `config.language` is "auto". `description` is the source's own summary, used instead
    as `config.deck` says (see `SummaryRequest`).
    """
    request = SummaryRequest(text, title, language, description)
    return summarize_batch([request], config=config)[0]


def summarize_batch(requests: Sequence[SummaryRequest], *, config: SummaryConfig) -> list[Summary]:
    """Summaries of many texts with one configuration, in the order given.

    Each text is analysed once, and the Korean parts of all of them go through Kiwi in one
    batch (spread over Kiwi's worker threads), so a digest's posts cost less together than
    one by one. The result for each text is the same as `summarize` would give.
    """
    algorithm = config.algorithm or DEFAULT_ALGORITHM
    if algorithm not in ALGORITHMS:
        raise SummaryError(
            f"unknown summary algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}"
        )
    langs = [_resolve_language(r.text, config.language, r.language) for r in requests]
    descriptions = {
        i: deck for i, r in enumerate(requests) if (deck := _deck(r, config)) is not None
    }
    texts = [descriptions.get(i, r.text) for i, r in enumerate(requests)]
    # Titles first (short: one small batch), then each post is ranked as soon as Kiwi has
    # analysed it, while Kiwi's threads go on with the next ones.
    titles = _title_terms_many([(r.title, lang) for r, lang in zip(requests, langs, strict=True)])
    results: list[Summary] = []
    for i, spans in enumerate(iter_spans_many(texts, langs)):
        if i in descriptions:
            pieces = [s.text for s in spans] or [descriptions[i]]
            results.append(Summary(langs[i], tuple(pieces), "description"))
            continue
        skip, listed = _not_summary_material(spans)
        kind = requests[i].kind
        if kind == AUTO:
            kind = detect_kind(
                [s.text for k, s in enumerate(spans) if k not in skip and k not in listed],
                langs[i],
            )
        elif kind == LIST:
            listed = set()  # the items are the content
        weights = KIND_WEIGHTS[kind]
        candidates = [
            Candidate(s.text, s.terms, k, k in skip or k in listed) for k, s in enumerate(spans)
        ]
        content = [s.text for k, s in enumerate(spans) if k not in skip]
        if len(_SEPARATOR.join(content)) <= config.max_chars:
            results.append(Summary(langs[i], tuple(content), "full"))
            continue
        scores = score_sentences(candidates, algorithm, titles[i], weights)
        chosen = select(
            candidates,
            scores,
            count=config.sentences,
            max_chars=config.max_chars,
            language=langs[i],
            mmr_lambda=weights.mmr_lambda if algorithm == HYBRID else 1.0,
        )
        results.append(Summary(langs[i], tuple(candidates[k].text for k in chosen), algorithm))
    return results


def _not_summary_material(spans: Sequence[Span]) -> tuple[set[int], set[int]]:
    """Indices of spans a summary should not quote: (never, passed over by ranking).

    Never: boilerplate (bylines, captions, subscribe lines, table rows), a series preamble or
    editor's note in the first blocks, and headings, including a short question alone in its
    block (`왜 지금 AI인가?`). A heading is alone
    in its block (a paragraph, or a short line of its own: see `_blocks`), is not a list
    item, and does not end like the post's sentences do: in a post that ends its sentences
    with full stops, it has no stop and either no final ending (`정보 자본: 현대의 새로운
    힘`) or few characters (`우리에게 힘이 있다`). Quoted, a heading reads as a fragment
    glued to the next sentence.

    Passed over, but kept in a short post's own summary: list items (`- 비용`, `1. 학습
    방법을 이해하라`), which read as fragments out of their list, and, in a post that does
    not use full stops, lone lines without a final ending (`커피도 최고`), which may be
    headings or may be the author's style; and questions inside paragraphs.

    When nothing else is left, list items come back first, then those lone lines, then the
    headings (release notes as a bare list under headings).
    """
    # Boilerplate, and "sentences" with no word at all (`...`, `🎉🎉`, zero-width spaces).
    boilerplate = {
        k for k, s in enumerate(spans) if is_boilerplate(s.text) or not _WORDY.search(s.text)
    }
    first_blocks = sorted({s.block for s in spans})[:_PREAMBLE_BLOCKS]
    boilerplate |= {
        k for k, s in enumerate(spans) if s.block in first_blocks and _PREAMBLE.search(s.text)
    }
    listed = {k for k, s in enumerate(spans) if starts_list_item(s.text)} - boilerplate
    # Questions: a short one alone in its block is a heading (`왜 지금 AI인가?`); one inside a
    # paragraph is the writer's device, a summary's last resort.
    questions = {k for k, s in enumerate(spans) if _QUESTION.search(s.text)} - boilerplate - listed
    prose = [k for k in range(len(spans)) if k not in boilerplate and k not in listed]
    per_block = Counter(span.block for span in spans)
    lone = [k for k in prose if per_block[spans[k].block] == 1]
    question_headings = {
        k for k in lone if k in questions and len(spans[k].text) <= _QUESTION_HEADING_CHARS
    }
    questions -= question_headings
    prose = [k for k in prose if k not in question_headings and k not in questions]
    lone = [k for k in lone if k in prose]
    stops = {k: punctuated(spans[k].text) for k in prose}
    # Does the post end its sentences with full stops? Judged on what reads as a sentence
    # (a final ending or a stop), so that many headings do not outvote a few sentences.
    sentences = [k for k in prose if stops[k] or spans[k].final]
    headings: set[int] = set()
    casual: set[int] = set()
    if sentences and 2 * sum(stops[k] for k in sentences) >= len(sentences):
        headings = {
            k
            for k in lone
            if not stops[k] and (not spans[k].final or len(spans[k].text) <= _HEADING_CHARS)
        }
    else:
        casual = {k for k in lone if not spans[k].final}
    usable = set(prose) - headings - casual
    if not usable and listed:  # a bare list: its items are the content
        usable, listed = set(listed), set()
    if not usable and casual:
        usable, casual = set(casual), set()
    if not usable and questions:
        usable, questions = set(questions), set()
    if not usable:
        headings, question_headings = set(), set()
    return boilerplate | headings | question_headings, listed | casual | questions


def _title_terms_many(titles: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Content terms of (title, language) pairs; the Korean ones in one Kiwi batch."""
    korean = [t for t, lang in titles if lang == "ko" and t.strip()]
    analysed = iter(morphemes_of(korean))
    out: list[list[str]] = []
    for title, lang in titles:
        if not title.strip():
            out.append([])
        elif lang == "ko":
            out.append(next(analysed))
        else:
            out.append(english_terms(title))
    return out


def summarize_many(
    posts: Iterable[tuple[str, str]], *, config: SummaryConfig, language: str | None = None
) -> list[Summary]:
    """Summaries of (title, text) pairs with one configuration, in one batch."""
    requests = [SummaryRequest(text, title, language) for title, text in posts]
    return summarize_batch(requests, config=config)


def candidates_from_sentences(sentences: Sequence[str], language: str) -> list[Candidate]:
    """Candidates for text that is already split (evaluation sets), analysed in one batch."""
    terms = morphemes_of(sentences) if language == "ko" else [english_terms(s) for s in sentences]
    return [
        Candidate(s, tuple(t), i, is_boilerplate(s))
        for i, (s, t) in enumerate(zip(sentences, terms, strict=True))
    ]


def rank_presplit(
    sentences: Sequence[str],
    *,
    title: str = "",
    algorithm: str = DEFAULT_ALGORITHM,
    count: int = 3,
    max_chars: int = 10**9,
    language: str = "ko",
    weights: HybridWeights | None = None,
    candidates: Sequence[Candidate] | None = None,
    title_terms: Sequence[str] | None = None,
) -> list[int]:
    """Chosen sentence indices for pre-split text (used by the benchmark, which passes
    precomputed `candidates`/`title_terms` to try many weights without re-analysing).
    Without `weights`, the text's kind (`detect_kind`) chooses them, as for a post."""
    if candidates is None:
        candidates = candidates_from_sentences(sentences, language)
    if weights is None:
        kind = detect_kind([c.text for c in candidates if not c.boilerplate], language)
        weights = KIND_WEIGHTS[kind]
    if title_terms is None:
        title_terms = _terms_for(title, language) if title.strip() else []
    scores = score_sentences(candidates, algorithm, title_terms, weights)
    mmr_lambda = weights.mmr_lambda if algorithm == HYBRID else 1.0
    return select(
        candidates,
        scores,
        count=count,
        max_chars=max_chars,
        language=language,
        mmr_lambda=mmr_lambda,
    )


__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "HYBRID_WEIGHTS",
    "SUMMARY_VERSION",
    "Candidate",
    "HybridWeights",
    "Span",
    "Summarizer",
    "SummaryConfig",
    "SummaryRequest",
    "rank_presplit",
    "score_sentences",
    "select",
    "summarize",
    "summarize_batch",
    "summarize_many",
    "summarizer_version",
]
