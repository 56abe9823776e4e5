"""RSS and Atom feeds through feedparser."""

from __future__ import annotations

import calendar
import hashlib
from datetime import UTC, datetime
from typing import Any

import feedparser

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.models import Post
from digest.sources import SourceResult
from digest.sources.html import clean_text, html_to_text


def read_feed(source: SourceConfig, data: bytes) -> SourceResult:
    parsed = feedparser.parse(data)
    if parsed.bozo and not parsed.entries:
        reason = getattr(parsed.bozo_exception, "getMessage", None)
        detail = reason() if callable(reason) else str(parsed.bozo_exception)
        raise SourceError(f"source {source.name!r}: {source.url}: not a valid feed: {detail}")
    if not parsed.entries and (not parsed.feed or not parsed.get("version")):
        # feedparser accepts any well-formed markup (an HTML page) with no error, no entries and
        # no feed version: that is not a feed, not an empty one.
        raise SourceError(f"source {source.name!r}: {source.url}: not a feed")
    language = source.language or (parsed.feed.get("language") or "")[:2].lower()
    posts: list[Post] = []
    problems: list[str] = []
    for index, entry in enumerate(parsed.entries, 1):
        try:
            posts.append(_entry_to_post(source, entry, language))
        except ValueError as exc:
            problems.append(f"source {source.name!r}: entry {index}: {exc}; skipped")
    if parsed.bozo:
        problems.append(f"source {source.name!r}: feed is malformed; read what could be parsed")
    return SourceResult(tuple(posts), tuple(problems))


def _entry_to_post(source: SourceConfig, entry: Any, language: str) -> Post:
    title = clean_text(entry.get("title", ""))
    html = ""
    if entry.get("content"):
        html = max((c.get("value", "") for c in entry.content), key=len)
    description_html = entry.get("summary", "")
    text = html_to_text(html) or html_to_text(description_html)
    if not title and not text:
        raise ValueError("no title and no text")
    link = entry.get("link", "")
    guid = entry.get("id") or link or hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()
    # dict.get: FeedParserDict maps a missing `updated_parsed` onto `published_parsed` with a
    # DeprecationWarning (feedparser issue 310), which would also make every RSS item "updated".
    updated = _date(dict.get(entry, "updated_parsed"))
    published = _date(entry.get("published_parsed")) or updated
    if published is None:
        raise ValueError(f"{title[:40]!r} has no date")
    description = html_to_text(description_html) if html else ""
    tags = tuple(dict.fromkeys([*source.tags, *(t.get("term", "") for t in entry.get("tags", []))]))
    image, image_alt = _image(entry)
    return Post(
        source=source.name,
        guid=guid,
        url=link,
        title=title or text[:60],
        text=text,
        published=published,
        author=entry.get("author", ""),
        updated=updated,
        tags=tuple(t for t in tags if t),
        description=description,
        image=image,
        image_alt=image_alt,
        language=language or None,
        reactions=_int(entry.get("digest_reactions")),
        comments=_int(entry.get("thr_total")),
    )


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), UTC)


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _image(entry: Any) -> tuple[str | None, str]:
    for thumb in entry.get("media_thumbnail", []) or []:
        if thumb.get("url"):
            return thumb["url"], ""
    for link in entry.get("links", []):
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return link.get("href"), ""
    return None, ""
