"""Ingest: read every configured source into the store, one failing source never stopping the rest."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from digest.config import Config, SourceConfig
from digest.errors import DigestError
from digest.models import Post
from digest.sources.feed import read_feed
from digest.sources.fetch import fetch
from digest.store import Store

MAX_PARALLEL_SOURCES = 4


@dataclass(frozen=True)
class SourceReport:
    name: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str = ""
    problems: tuple[str, ...] = field(default=())

    @property
    def failed(self) -> bool:
        return bool(self.error)


def content_hash(post: Post) -> str:
    """What counts as an edit: title, text, author, tags, image (not dates or counters)."""
    parts = [post.title, post.text, post.author, "\x1f".join(post.tags), post.image or "", post.url]
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()


def replayed(posts: tuple[Post, ...], shift: timedelta) -> list[Post]:
    return [
        replace(
            p,
            published=p.published + shift,
            updated=p.updated + shift if p.updated else None,
        )
        for p in posts
    ]


async def ingest_source(source: SourceConfig, store: Store, now: datetime) -> SourceReport:
    try:
        data = await fetch(source.name, source.url, source.timeout)
        result = read_feed(source, data)
    except DigestError as exc:
        store.record_source(source.name, ok=False, error=str(exc))
        return SourceReport(source.name, error=str(exc))
    posts = list(result.posts)
    if source.replay and posts:
        # Sample content: the newest entry is treated as published at the first ingest, the
        # rest keep their spacing. The shift is stored so later ingests agree with the first.
        shift = store.replay_shift(source.name)
        if shift is None:
            newest = max(p.published for p in posts)
            shift = (now - newest).total_seconds()
        posts = replayed(result.posts, timedelta(seconds=shift))
        store.record_source(source.name, ok=True, replay_shift=shift)
    else:
        store.record_source(source.name, ok=True)
    new, updated, unchanged = store.upsert_posts((p, content_hash(p)) for p in posts)
    return SourceReport(source.name, new, updated, unchanged, problems=result.problems)


async def ingest_all(config: Config, store: Store, now: datetime) -> list[SourceReport]:
    semaphore = asyncio.Semaphore(MAX_PARALLEL_SOURCES)

    async def one(source: SourceConfig) -> SourceReport:
        async with semaphore:
            return await ingest_source(source, store, now)

    return list(await asyncio.gather(*(one(s) for s in config.sources)))
