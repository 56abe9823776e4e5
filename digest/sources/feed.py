"""RSS 0.9x / 1.0 / 2.0 and Atom through feedparser, and JSON Feed 1.1, into posts.

The bytes are decoded here (`digest.sources.encoding`), not by feedparser: feedparser falls back
to Windows-1252 for an undeclared EUC-KR feed, which stores mojibake. The decoded text is handed
to feedparser as UTF-8 with the declaration rewritten to match.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import feedparser

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.models import Post
from digest.sources import SourceResult
from digest.sources.byline import person_name
from digest.sources.encoding import decode, safe_charrefs
from digest.sources.html import clean_text, first_image, html_to_text
from digest.sources.jsonfeed import looks_like_json, parse_json_feed

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")


def read_feed(
    source: SourceConfig,
    data: bytes,
    *,
    content_type: str = "",
    fallback_date: datetime | None = None,
) -> SourceResult:
    """Posts of a feed. An entry without a date gets `fallback_date` (the time it was first
    seen) or, when that is None, is skipped with a problem."""
    where = f"source {source.name!r}: {source.url}"
    try:
        text = decode(data, content_type, source.encoding, where)
    except SourceError:
        raise SourceError(f"{where}: not a valid feed: cannot decode the bytes") from None
    if looks_like_json(text):
        try:
            parsed_json = parse_json_feed(text)
        except ValueError as exc:
            raise SourceError(f"{where}: not a valid feed: {exc}") from None
        if parsed_json is None:
            raise SourceError(f"{where}: not a feed (JSON, but not a JSON Feed)")
        feed, entries = parsed_json
        language = source.language or feed["language"][:2].lower()
        return _collect(source, entries, _json_entry, language, fallback_date, malformed=False)
    # feedparser gets UTF-8 bytes whose declaration says so, whatever the original charset, and
    # no `&#xD800;`: its lenient parser turns that into a lone surrogate and fails encoding it.
    text = safe_charrefs(text)
    utf8 = _XML_DECL.sub('<?xml version="1.0" encoding="utf-8"?>', text, count=1).encode()
    parsed = feedparser.parse(
        utf8, response_headers={"content-type": "application/xml; charset=utf-8"}
    )
    if parsed.bozo and not parsed.entries:
        reason = getattr(parsed.bozo_exception, "getMessage", None)
        detail = reason() if callable(reason) else str(parsed.bozo_exception)
        raise SourceError(f"{where}: not a valid feed: {detail}")
    if not parsed.entries and (not parsed.feed or not parsed.get("version")):
        # feedparser accepts any well-formed markup (an HTML page) with no error, no entries and
        # no feed version: that is not a feed, not an empty one.
        raise SourceError(f"{where}: not a feed")
    language = source.language or (parsed.feed.get("language") or "")[:2].lower()
    return _collect(
        source, parsed.entries, _xml_entry, language, fallback_date, malformed=bool(parsed.bozo)
    )


def _collect(
    source: SourceConfig,
    entries: list[Any],
    convert: Any,
    language: str,
    fallback_date: datetime | None,
    *,
    malformed: bool,
) -> SourceResult:
    posts: list[Post] = []
    problems: list[str] = []
    undated: set[str] = set()
    for index, entry in enumerate(entries, 1):
        try:
            post, dated = convert(source, entry, language, fallback_date)
        except ValueError as exc:
            problems.append(f"source {source.name!r}: entry {index}: {exc}; skipped")
            continue
        posts.append(post)
        if not dated:
            undated.add(post.key)
    if malformed and not posts:
        # A feed that breaks before its first readable entry is invalid, not empty.
        raise SourceError(
            f"source {source.name!r}: {source.url}: not a valid feed: malformed, no entry read"
        )
    if malformed:
        problems.append(f"source {source.name!r}: feed is malformed; read what could be parsed")
    return SourceResult(tuple(posts), tuple(problems), frozenset(undated))


# how a feed marks a teaser that stops mid-article: "...", "…", "[더보기]", "Read more"
_TRUNCATED = re.compile(
    r"(?:\.\.\.|…|\[\.\.\.\]|\[…\]|더\s?보기\]?|\(계속\)|기사\s?전문|read more|continue reading)"
    r"\s*[\])>»›]*\s*$",
    re.IGNORECASE,
)


def looks_truncated(text: str) -> bool:
    """Whether a feed item's text ends the way a teaser cut off by the feed does."""
    return bool(_TRUNCATED.search(text[-80:]))


def author_names(authors: list[str]) -> str:
    """The feed's authors as names: "홍길동 기자" -> "홍길동", as the byline on the page."""
    names = (person_name(a) or clean_text(a) for a in authors if str(a).strip())
    return ", ".join(dict.fromkeys(n for n in names if n))


def post_identity(guid: str, link: str, title: str, text: str) -> str:
    """guid, else the canonical link, else a hash of the content."""
    guid, link = guid.strip(), link.strip()
    return guid or link or hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()


def merge_tags(*groups: Any) -> tuple[str, ...]:
    tags = (clean_text(str(t)) for group in groups for t in group)
    return tuple(t for t in dict.fromkeys(tags) if t)


def _xml_entry(
    source: SourceConfig, entry: Any, language: str, fallback: datetime | None
) -> tuple[Post, bool]:
    title = clean_text(entry.get("title", ""))
    html = ""
    if entry.get("content"):
        html = max((c.get("value", "") for c in entry.content), key=len)
    description_html = entry.get("summary", "")
    text = html_to_text(html) or html_to_text(description_html)
    if not title and not text:
        raise ValueError("no title and no text")
    link = entry.get("link", "")
    # dict.get: FeedParserDict maps a missing `updated_parsed` onto `published_parsed` with a
    # DeprecationWarning (feedparser issue 310), which would also make every RSS item "updated".
    updated = _date(dict.get(entry, "updated_parsed"))
    published = _date(entry.get("published_parsed")) or updated
    dated = published is not None
    if published is None:
        if fallback is None:
            raise ValueError(f"{title[:40]!r} has no date")
        published = fallback
    description = html_to_text(description_html) if html else ""
    terms = (t.get("term") or t.get("label") or "" for t in entry.get("tags", []))
    authors = [a.get("name", "") for a in entry.get("authors", []) if a.get("name")]
    if len(authors) < 2 and entry.get("author"):
        # one author: feedparser's string as written, since its name for an RSS <author>
        # that is only an e-mail address is a fragment of the address ("ple")
        authors = [entry["author"]]
    image, image_alt = _image(entry, html or description_html, link)
    post = Post(
        source=source.name,
        guid=post_identity(entry.get("id", ""), link, title, text),
        url=link,
        title=title or text[:60],
        text=text,
        published=published,
        author=author_names(authors),
        updated=updated,
        tags=merge_tags(source.tags, terms),
        description=description,
        image=image,
        image_alt=image_alt,
        language=language or None,
        reactions=_int(entry.get("digest_reactions")),
        comments=_int(entry.get("thr_total") or entry.get("slash_comments")),
    )
    return post, dated


def _json_entry(
    source: SourceConfig, entry: dict[str, Any], language: str, fallback: datetime | None
) -> tuple[Post, bool]:
    title = clean_text(entry["title"])
    text = html_to_text(entry["html"]) or clean_text(entry["text"])
    summary = clean_text(entry["summary"])
    text = text or summary
    if not title and not text:
        raise ValueError("no title and no text")
    updated = _iso_date(entry["updated"])
    published = _iso_date(entry["published"]) or updated
    dated = published is not None
    if published is None:
        if fallback is None:
            raise ValueError(f"{title[:40]!r} has no date")
        published = fallback
    image, image_alt = entry["image"] or None, ""
    if image is None:
        image, image_alt = first_image(entry["html"], entry["link"])
    post = Post(
        source=source.name,
        guid=post_identity(entry["id"], entry["link"], title, text),
        url=entry["link"],
        title=title or text[:60],
        text=text,
        published=published,
        author=author_names(entry["authors"]),
        updated=updated,
        tags=merge_tags(source.tags, entry["tags"]),
        description=summary if summary != text else "",
        image=image,
        image_alt=image_alt,
        language=source.language or entry["language"][:2].lower() or language or None,
    )
    return post, dated


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), UTC)


def _iso_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _image(entry: Any, html: str, base: str) -> tuple[str | None, str]:
    for thumb in entry.get("media_thumbnail", []) or []:
        if thumb.get("url"):
            return thumb["url"], ""
    for media in entry.get("media_content", []) or []:
        kind = str(media.get("type", "")) or str(media.get("medium", ""))
        if media.get("url") and kind.startswith("image"):
            return media["url"], ""
    for link in entry.get("links", []):
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return link.get("href"), ""
    return first_image(html, base)
