"""JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1) into the same entries as feedparser.

Entries are returned as plain dicts shaped like feedparser's (`id`, `link`, `title`, `content`,
`summary`, `published`/`updated` strings, `tags`, `authors`, `image`), so one code path turns
every feed format into posts.
"""

from __future__ import annotations

import json
from typing import Any

from digest.sources.encoding import scrub


def looks_like_json(text: str) -> bool:
    return text.lstrip().startswith("{")


def parse_json_feed(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(feed fields, entries), or None when `text` is not a JSON Feed; ValueError when it
    is nested too deeply to read."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError:
        return None
    if not isinstance(data, dict) or "jsonfeed.org/version/" not in str(data.get("version", "")):
        return None
    items = data.get("items")
    if not isinstance(items, list):
        return None
    feed = {
        "title": _str(data.get("title")),
        "language": _str(data.get("language")),
        "link": _str(data.get("home_page_url")),
        "authors": _authors(data),
    }
    entries = [_entry(item, feed) for item in items if isinstance(item, dict)]
    return feed, entries


def _str(value: Any) -> str:
    # a `\\ud800` escape gives a lone surrogate, which no UTF-8 store or terminal takes
    return scrub(value).strip() if isinstance(value, str) else ""


def _authors(obj: dict[str, Any]) -> list[str]:
    # 1.1 has `authors` (a list); 1.0 had a single `author` object
    raw = obj.get("authors")
    if not isinstance(raw, list):
        raw = [obj["author"]] if isinstance(obj.get("author"), dict) else []
    return [_str(a.get("name")) for a in raw if isinstance(a, dict) and _str(a.get("name"))]


def _entry(item: dict[str, Any], feed: dict[str, Any]) -> dict[str, Any]:
    html = _str(item.get("content_html"))
    text = _str(item.get("content_text"))
    image = _str(item.get("image")) or _str(item.get("banner_image"))
    if not image:
        attachments = item.get("attachments")
        for attachment in attachments if isinstance(attachments, list) else []:
            if isinstance(attachment, dict) and _str(attachment.get("mime_type")).startswith(
                "image/"
            ):
                image = _str(attachment.get("url"))
                break
    raw_tags = item.get("tags")
    tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
    return {
        # ids are strings in 1.1; some 1.0 feeds wrote numbers
        "id": str(item["id"]) if isinstance(item.get("id"), int) else _str(item.get("id")),
        "link": _str(item.get("url")) or _str(item.get("external_url")),
        "title": _str(item.get("title")),
        "html": html,
        "text": text,
        "summary": _str(item.get("summary")),
        "published": _str(item.get("date_published")),
        "updated": _str(item.get("date_modified")),
        "tags": [_str(t) for t in tags if _str(t)],
        "authors": _authors(item) or feed["authors"],
        "image": image,
        "language": _str(item.get("language")),
    }
