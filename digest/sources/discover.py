"""Feed autodiscovery: the feeds a web page announces (`<link rel="alternate">`), so that a
blog's home page given as a feed URL reads its feed instead of failing."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

FEED_TYPES = (
    "application/atom+xml",
    "application/rss+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, str]] = []  # (href, type, title)
        self.base = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag == "base" and values.get("href") and not self.base:
            self.base = values["href"]
        if tag != "link":
            return
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower().split(";")[0].strip()
        if "alternate" in rels and kind in FEED_TYPES and values.get("href", "").strip():
            self.found.append((values["href"].strip(), kind, values.get("title", "")))


_HTML_START = re.compile(
    r"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>]|head[\s>])", re.IGNORECASE | re.DOTALL
)


def looks_like_html(text: str) -> bool:
    """Whether `text` is an HTML page (not a feed, which starts with <?xml, <rss or <feed)."""
    return _HTML_START.match(text[:4096]) is not None


def discover_feeds(page: str, url: str) -> list[str]:
    """Absolute http(s) URLs of the feeds `page` (fetched from `url`) announces, in its
    order, comment feeds last (a blog's main feed is the one its readers want)."""
    parser = _Links()
    parser.feed(page[:1_000_000])  # the <head> is at the top; a huge page is not read whole
    base = urljoin(url, parser.base) if parser.base else url
    feeds: list[tuple[bool, str]] = []
    for href, _kind, title in parser.found:
        absolute = urljoin(base, href)
        if not absolute.lower().startswith(("http://", "https://")):
            continue
        comments = "comment" in title.lower() or "/comments" in absolute.lower()
        if all(absolute != seen for _, seen in feeds):
            feeds.append((comments, absolute))
    return [u for _, u in sorted(feeds, key=lambda item: item[0])]
