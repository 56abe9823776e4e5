"""Sources: read posts from feeds (and, later, pages and folders).

Every reader shares one contract: `read(config, data) -> SourceResult`, pure over the fetched
bytes; fetching lives in `digest.sources.fetch`. A bad entry is reported, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from digest.models import Post


@dataclass(frozen=True)
class SourceResult:
    posts: tuple[Post, ...]
    problems: tuple[str, ...] = field(default=())  # one line per skipped entry
