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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from nltk.stem.snowball import EnglishStemmer

from digest.config import ThemeConfig
from digest.models import Post
from digest.text.kiwi import content_morphemes

TITLE_WEIGHT = 3.0
TAG_WEIGHT = 3.0
BODY_CAP = 3

_LATIN = re.compile(r"^[a-z0-9][a-z0-9'.+-]*$")
_stemmer = EnglishStemmer()


@dataclass(frozen=True)
class ThemeMatch:
    theme: str
    score: float
    matched: tuple[str, ...]  # the keywords and tags that matched, for `digest themes`

    def __bool__(self) -> bool:
        return self.score > 0


@lru_cache(maxsize=4096)
def tokens(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for token in content_morphemes(text):
        low = token.lower()
        out.append(_stemmer.stem(low) if _LATIN.match(low) else low)
    return tuple(out)


def _count(needle: tuple[str, ...], haystack: tuple[str, ...]) -> int:
    if not needle:
        return 0
    n = len(needle)
    first = needle[0]
    return sum(
        1
        for i, tok in enumerate(haystack)
        if tok == first and haystack[i : i + n] == needle
    )


def match_theme(post: Post, theme: ThemeConfig) -> ThemeMatch:
    title = tokens(post.title)
    body = tokens(post.text)
    for word in theme.exclude:
        needle = tokens(word)
        if _count(needle, title) or _count(needle, body):
            return ThemeMatch(theme.key, 0.0, ())
    score = 0.0
    matched: list[str] = []
    for word in theme.keywords:
        needle = tokens(word)
        in_title = _count(needle, title)
        in_body = min(_count(needle, body), BODY_CAP)
        if in_title or in_body:
            score += TITLE_WEIGHT * in_title + in_body
            matched.append(word)
    theme_tags = {t.casefold() for t in theme.tags}
    for tag in post.tags:
        if tag.casefold() in theme_tags:
            score += TAG_WEIGHT
            matched.append(f"#{tag}")
    return ThemeMatch(theme.key, score, tuple(matched))


def post_themes(post: Post, themes: Sequence[ThemeConfig]) -> list[ThemeMatch]:
    """The themes a post belongs to, best first."""
    matches = [match_theme(post, t) for t in themes]
    by_key = {t.key: t for t in themes}
    kept = [m for m in matches if m.score >= by_key[m.theme].threshold and m.score > 0]
    return sorted(kept, key=lambda m: -m.score)
