"""Keep a digest's HTML under Gmail's clipping size. Pure: no I/O, no clock.

Gmail clips HTML bodies over about 102 KB and hides what follows, the footer with the
unsubscribe link included. `fit` finds the largest number of full cards (in reading order)
whose HTML stays within a budget; the posts after them become title-and-link lines in
`Digest.overflow`, shown with a "more in the archive" link. Only when even that is too big are
the last overflow lines dropped (the archive link still leads to them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TypeVar

from digest.models import Digest, DigestItem, Section

__all__ = ["HTML_BUDGET", "VALUE_ALLOWANCE", "demote", "fit", "trim_overflow", "worst_case_size"]

HTML_BUDGET = 100_000  # octets of HTML, personalized: under Gmail's ~102 KB clip
# Octets reserved for each per-recipient value (an address, a name, a signed link), escaped.
VALUE_ALLOWANCE = 320

T = TypeVar("T")


def worst_case_size(html: str, placeholders: Mapping[str, str]) -> int:
    """Octets of `html` once every placeholder holds a value of VALUE_ALLOWANCE octets."""
    size = len(html.encode("utf-8"))
    for token in placeholders.values():
        size += html.count(token) * (VALUE_ALLOWANCE - len(token))
    return size


def demote(digest: Digest, keep: int) -> Digest:
    """`digest` with only its first `keep` items (in reading order) as cards; the later ones
    become overflow lines, ahead of the digest's own overflow. Emptied sections are dropped."""
    sections: list[Section] = []
    moved: list[DigestItem] = []
    left = max(0, keep)
    for section in digest.sections:
        kept = section.items[:left]
        moved.extend(section.items[left:])
        left -= len(kept)
        if kept:
            sections.append(replace(section, items=kept))
    if not moved:
        return digest
    return replace(digest, sections=tuple(sections), overflow=(*moved, *digest.overflow))


def trim_overflow(digest: Digest, keep: int) -> Digest:
    return replace(digest, overflow=digest.overflow[: max(0, keep)])


def _largest(count: int, fits: Callable[[int], bool]) -> int:
    """The largest n in 0..count with fits(n), for a monotone `fits`; -1 if none.
    `fits(count)` is known to be false."""
    lo, hi = -1, count  # fits(lo) is true (or lo == -1), fits(hi) is false
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def fit(
    digest: Digest,
    render: Callable[[Digest], T],
    size: Callable[[T], int],
    budget: int = HTML_BUDGET,
) -> tuple[Digest, T]:
    """The digest to send and its rendering: `digest` itself when it fits in `budget`, else
    with as many full cards as fit. Best effort: if nothing fits (a huge template), the
    smallest form is returned."""
    cache: dict[tuple[int, int], tuple[Digest, T]] = {}

    def attempt(cards: int, lines: int) -> tuple[Digest, T]:
        if (cards, lines) not in cache:
            candidate = demote(digest, cards)
            if lines < len(candidate.overflow):
                candidate = trim_overflow(candidate, lines)
            cache[(cards, lines)] = (candidate, render(candidate))
        return cache[(cards, lines)]

    total = len(digest.items)
    unlimited = total + len(digest.overflow)
    whole = attempt(total, unlimited)
    if size(whole[1]) <= budget:
        return whole
    cards = _largest(total, lambda n: size(attempt(n, unlimited)[1]) <= budget)
    if cards >= 0:
        return attempt(cards, unlimited)
    lines = _largest(unlimited, lambda n: size(attempt(0, n)[1]) <= budget)
    return attempt(0, max(lines, 0))
