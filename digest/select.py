"""Selection: which posts go into a section. Pure functions over posts and theme configs.

A section of theme T, for one reader, takes T's posts that arrived (were published, or first
seen by digest if that is later: a late feed, a backdated post) after the last digest of T
that reader got (the first time: within `lookback_days`), never a post the reader was already
sent in any digest (themed, manual or scheduled), at most `max_posts` of them. The
caller (digest.pipeline.Planner) works out `since` and `already_sent` per reader.
Ordering rule, documented in docs/configuration.md:

    1. theme score, highest first (rounded to whole points, so small differences do not
       override the next criteria);
    2. reactions plus comments, where the source has them, highest first;
    3. publication time, newest first.

Subscribers who chose the same set of themes share one digest variant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.config import ThemeConfig
from digest.models import ALL_SECTION, Post
from digest.themes import ThemeMatch, belongs, match_theme, rank

ALL = ALL_SECTION  # the section key of an unthemed digest


@dataclass(frozen=True)
class Pick:
    post: Post
    score: float
    match: ThemeMatch | None


def rank_key(pick: Pick) -> tuple[float, int, float]:
    return rank(pick.post, pick.score)


def select_section(
    posts: Iterable[Post],
    theme: ThemeConfig | None,
    *,
    since: datetime,
    until: datetime,
    already_sent: set[str],
    max_posts: int,
) -> list[Pick]:
    picks: list[Pick] = []
    for post in posts:
        if not (since < post.arrived and post.published <= until) or post.key in already_sent:
            continue
        if theme is None:
            picks.append(Pick(post, 0.0, None))
            continue
        match = match_theme(post, theme)
        if belongs(match, theme):
            picks.append(Pick(post, match.score, match))
    picks.sort(key=rank_key)
    return picks[:max_posts]


def variant_key(themes: Sequence[str]) -> str:
    """Subscribers with the same chosen themes (in any order) share one variant."""
    return ",".join(sorted(set(themes)))


def dedupe_sections(sections: list[tuple[str, list[Pick]]]) -> list[tuple[str, list[Pick]]]:
    """A post that matches several chosen themes appears once, in its best-scoring section."""
    best: dict[str, tuple[float, int]] = {}
    for index, (_key, picks) in enumerate(sections):
        for pick in picks:
            current = best.get(pick.post.key)
            if current is None or pick.score > current[0]:
                best[pick.post.key] = (pick.score, index)
    return [
        (key, [p for p in picks if best[p.post.key][1] == index])
        for index, (key, picks) in enumerate(sections)
    ]
