"""Theme matching: morpheme-aware for Korean, whole-word and inflection-insensitive for English.

Keywords and posts go through the same tokenizer (Kiwi content morphemes; Latin words
lowercased and stemmed), and a keyword matches where its token sequence occurs in the post's.
So 인공지능 matches 인공지능은/인공지능을, 투자 matches 투자하는/투자를 but not 투자자... only
where Kiwi sees the same morpheme, and "agent" matches "Agents" but not "agency".

Score = 3 x title hits + body hits (at most 3 per keyword) + 3 x matching source tags.
A post belongs to every theme whose score reaches the theme's threshold, unless an excluded
keyword occurs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

from digest.config import ThemeConfig
from digest.models import Post
from digest.text.kiwi import content_morphemes, morphemes_of
from digest.text.versions import package_versions

TITLE_WEIGHT = 3.0
TAG_WEIGHT = 3.0
BODY_CAP = 3

_LATIN = re.compile(r"^[a-z0-9][a-z0-9'.+-]*$")
# Kiwi splits a Latin word that ends a sentence ("models." -> "mod" + "els."); a space before
# the full stop keeps the word whole.
_LATIN_FULL_STOP = re.compile(r"(?<=[A-Za-z])\.(?=\s|$)")
# The Snowball English stemmer, without importing nltk (whose package import pulls in SciPy:
# seconds and ~100 MB in every process that only wants to match themes or send mail).
_stemmer = snowballstemmer.stemmer("english")


@dataclass(frozen=True)
class Hit:
    """One keyword (or `#tag`) that matched, with where: for `digest themes`."""

    word: str
    title: int = 0  # occurrences in the title
    body: int = 0  # occurrences in the body (before the cap)
    points: float = 0.0  # what it added to the score

    def describe(self) -> str:
        if self.word.startswith("#"):
            return f"{self.word} +{self.points:g}"
        where = [f"title x{self.title}"] if self.title else []
        if self.body:
            where.append(f"body x{self.body}")
        return f"{self.word} ({', '.join(where)}) +{self.points:g}"


@dataclass(frozen=True)
class ThemeMatch:
    theme: str
    score: float
    matched: tuple[str, ...]  # the keywords and tags that matched, for `digest themes`
    hits: tuple[Hit, ...] = ()  # the same, with counts and points
    excluded: str = ""  # the excluded word that vetoed the post, if any

    def __bool__(self) -> bool:
        return self.score > 0


# Raise when the same text would give different tokens (a new rule below); the analyzer's
# own versions are part of `analysis_key` too.
TOKENS_VERSION = 1


def _finish(morphemes: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for token in morphemes:
        low = token.lower()
        out.append(_stemmer.stemWord(low) if _LATIN.match(low) else low)
    return tuple(out)


def _prepared(text: str) -> str:
    return _LATIN_FULL_STOP.sub(" .", text)


@lru_cache(maxsize=4096)
def _analysed(text: str) -> tuple[str, ...]:
    return _finish(content_morphemes(_prepared(text)))


class Analyses:
    """Analyses of texts that came from elsewhere (the store), consulted before Kiwi: a
    planning process that finds every post and keyword here never loads Kiwi's model. One
    per process, bounded: `remember` replaces what was there."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, ...]] = {}

    def remember(self, known: dict[str, tuple[str, ...]]) -> None:
        self._known = known

    def get(self, text: str) -> tuple[str, ...] | None:
        return self._known.get(text)


ANALYSES = Analyses()


def tokens(text: str) -> tuple[str, ...]:
    """Theme matching's tokens of `text`: Kiwi content morphemes, Latin words lowercased
    and stemmed."""
    known = ANALYSES.get(text)
    return known if known is not None else _analysed(text)


def tokens_many(texts: Sequence[str]) -> list[tuple[str, ...]]:
    """`tokens` of many texts, the ones not known analysed in one Kiwi batch."""
    todo = [t for t in dict.fromkeys(texts) if ANALYSES.get(t) is None]
    done = dict(zip(todo, (_finish(m) for m in morphemes_of(map(_prepared, todo))), strict=True))
    return [done[t] if t in done else tokens(t) for t in texts]


@lru_cache(maxsize=1)
def _analyzer_version() -> str:
    versions = package_versions("kiwipiepy", "kiwipiepy_model", "snowballstemmer")
    return " ".join([f"tokens-v{TOKENS_VERSION}", *versions])


def analysis_key(text: str) -> str:
    """The store's key for the analysis of `text` (see `Store.cached_analyses`)."""
    return hashlib.sha256(f"{_analyzer_version()}\x1e{text}".encode()).hexdigest()


def _count(needle: tuple[str, ...], haystack: tuple[str, ...]) -> int:
    if not needle:
        return 0
    n = len(needle)
    first = needle[0]
    return sum(
        1 for i, tok in enumerate(haystack) if tok == first and haystack[i : i + n] == needle
    )


def match_theme(post: Post, theme: ThemeConfig) -> ThemeMatch:
    title = tokens(post.title)
    body = tokens(post.text)
    for word in theme.exclude:
        needle = tokens(word)
        if _count(needle, title) or _count(needle, body):
            return ThemeMatch(theme.key, 0.0, (), excluded=word)
    score = 0.0
    hits: list[Hit] = []
    for word in theme.keywords:
        needle = tokens(word)
        in_title = _count(needle, title)
        in_body = _count(needle, body)
        if in_title or in_body:
            points = TITLE_WEIGHT * in_title + min(in_body, BODY_CAP)
            score += points
            hits.append(Hit(word, in_title, in_body, points))
    theme_tags = {t.casefold() for t in theme.tags}
    for tag in post.tags:
        if tag.casefold() in theme_tags:
            score += TAG_WEIGHT
            hits.append(Hit(f"#{tag}", points=TAG_WEIGHT))
    return ThemeMatch(theme.key, score, tuple(h.word for h in hits), tuple(hits))


def belongs(match: ThemeMatch, theme: ThemeConfig) -> bool:
    """A post belongs to a theme when its score is positive and reaches the threshold."""
    return match.score > 0 and match.score >= theme.threshold


def post_themes(post: Post, themes: Sequence[ThemeConfig]) -> list[ThemeMatch]:
    """The themes a post belongs to, best first."""
    kept = [m for m, t in ((match_theme(post, t), t) for t in themes) if belongs(m, t)]
    return sorted(kept, key=lambda m: -m.score)


# -- `digest themes`: why a post belongs (or not) to a theme --------------------------------


def short_id(post: Post) -> str:
    """A short, stable id for a post: the first 8 hex digits of SHA-256 of its key
    (`source:guid`). It never changes while the post's source name and guid do not."""
    return hashlib.sha256(post.key.encode()).hexdigest()[:8]


def find_post(posts: Iterable[Post], ident: str) -> Post | None:
    """The post whose short id, key, guid or URL is `ident` (a short id may be a prefix of
    at least 4 digits if only one post has it)."""
    ident = ident.strip()
    candidates = list(posts)
    for post in candidates:
        if ident in (post.key, post.guid, post.url, short_id(post)):
            return post
    if len(ident) >= 4:
        found = [p for p in candidates if short_id(p).startswith(ident.lower())]
        if len(found) == 1:
            return found[0]
    return None


@dataclass(frozen=True)
class ThemeTake:
    """One theme and the posts it takes (score at or above its threshold), best first."""

    theme: ThemeConfig
    posts: tuple[tuple[Post, ThemeMatch], ...]


def theme_report(posts: Iterable[Post], themes: Sequence[ThemeConfig]) -> list[ThemeTake]:
    """For each theme, the posts it takes, ordered by the selection rule (score in whole
    points, then reactions plus comments, then newest first)."""
    candidates = list(posts)
    report: list[ThemeTake] = []
    for theme in themes:
        taken = [(p, m) for p in candidates if belongs(m := match_theme(p, theme), theme)]
        taken.sort(key=lambda pm: rank(pm[0], pm[1].score))
        report.append(ThemeTake(theme, tuple(taken)))
    return report


def post_report(post: Post, themes: Sequence[ThemeConfig]) -> list[tuple[ThemeConfig, ThemeMatch]]:
    """Every theme's match for one post (also those below the threshold), best first."""
    pairs = [(t, match_theme(post, t)) for t in themes]
    return sorted(pairs, key=lambda tm: -tm[1].score)


def rank(post: Post, score: float) -> tuple[float, int, float]:
    """The selection order, as a sort key (see `digest.select`)."""
    popularity = (post.reactions or 0) + (post.comments or 0)
    return (-round(score), -popularity, -post.published.timestamp())


def format_theme_report(report: Sequence[ThemeTake], language: str) -> list[str]:
    """`digest themes`: per theme, the posts it takes with score, id, date and matched words."""
    lines: list[str] = []
    for take in report:
        theme = take.theme
        lines.append(
            f"{theme.key} · {theme.title_for(language)} "
            f"(threshold {theme.threshold:g}): {len(take.posts)} post(s)"
        )
        for post, match in take.posts:
            lines.append(
                f"  {match.score:5g}  {short_id(post)}  {post.published:%Y-%m-%d}  {post.title}"
            )
            lines.append(f"{'':17}{'; '.join(h.describe() for h in match.hits)}")
    return lines


def format_post_report(
    post: Post, matches: Sequence[tuple[ThemeConfig, ThemeMatch]], language: str
) -> list[str]:
    """`digest themes --post ID`: every theme's score for one post and why."""
    lines = [
        f"{short_id(post)}  {post.key}",
        f"  {post.published:%Y-%m-%d}  {post.title}",
        f"  tags: {', '.join(post.tags) or '-'}",
    ]
    for theme, match in matches:
        verdict = "takes it" if belongs(match, theme) else "no"
        lines.append(
            f"{theme.key} · {theme.title_for(language)}: score {match.score:g} "
            f"(threshold {theme.threshold:g}) → {verdict}"
        )
        if match.excluded:
            lines.append(f"    excluded by {match.excluded!r}")
        for hit in match.hits:
            lines.append(f"    {hit.describe()}")
    return lines
