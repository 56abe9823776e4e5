"""Sources: read posts from feeds (RSS, Atom, JSON Feed), article pages and folders.

Every reader is pure over bytes it is given: `read_feed(config, data) -> SourceResult`,
`read_folder(config) -> SourceResult`, and the page helpers in `digest.sources.page`. Fetching
lives in `digest.sources.fetch`, and `digest.ingest` ties them together. A bad entry is
reported, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from digest.models import Post


@dataclass(frozen=True)
class SourceResult:
    posts: tuple[Post, ...]
    problems: tuple[str, ...] = field(default=())  # one line per skipped entry
    # keys of posts that carried no date of their own (their `published` is a stand-in)
    undated: frozenset[str] = field(default=frozenset())
