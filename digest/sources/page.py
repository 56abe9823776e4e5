"""Sites without a feed: the article links of a listing page or a sitemap.

A sitemap (`<urlset>`) lists articles, newest `lastmod` first here; a sitemap index lists
sitemaps, which the caller fetches in turn. On a listing page the article links are those on
the same host inside the page's content (navigation, header, footer and asides dropped) that
match the source's `link_pattern`, or, without one, that do not look like site furniture
(tags, categories, paging, login, feeds, images).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
from lxml import etree

_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_NOT_ARTICLE = re.compile(
    r"/(?:tags?|category|categories|author|authors|page|search|login|logout|signup|about|"
    r"contact|feed|rss|privacy|terms)(?:/|$)|[?&](?:page|p)=\d+$|"
    r"\.(?:jpe?g|png|gif|webp|svg|pdf|zip|css|js|xml|rss|atom|json|mp[34])$",
    re.IGNORECASE,
)


def url_shape(url: str) -> str:
    """The pattern of a URL's path and query, without what varies between articles:
    `/news/articleView.html?idxno=101` -> `/news/articleView.html?idxno`, `/node/7` and
    `/node/8` -> `/node/*`, `/2026/11/28/slug` -> `/#/*/*/*`, a blog's `/a-slug` -> `/*`."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    shaped: list[str] = []
    for index, segment in enumerate(segments):
        if index == 0 and len(segments) > 1:
            shaped.append(re.sub(r"\d+", "#", segment))
        elif "." in segment and not any(c.isdigit() for c in segment):
            shaped.append(segment)  # a script's name: articleView.html, view.php
        else:
            shaped.append("*")
    keys = sorted({k.split("=", 1)[0] for k in parts.query.split("&") if k})
    return "/" + "/".join(shaped) + ("?" + "&".join(keys) if keys else "")


def article_shapes(marked: list[str], listed: list[str]) -> set[str]:
    """The URL patterns of a site's articles: those of the pages that say they are articles
    (`marked`, two at least), else the pattern most links of the listing share (`listed`:
    three links at least, and more than any other pattern); empty when neither shows one."""
    if len(marked) >= 2:
        return {url_shape(u) for u in marked}
    counts = Counter(url_shape(u) for u in listed).most_common(2)
    if counts and counts[0][1] >= 3 and (len(counts) == 1 or counts[0][1] > counts[1][1]):
        return {counts[0][0]}
    return set()


def off_pattern(url: str, shapes: set[str]) -> str:
    """Why a page that is an article only by its date and text length is suspect ("" if it is
    not): its URL has none of the articles' patterns (an author's profile with a dated
    biography, a section front)."""
    if not shapes or url_shape(url) in shapes:
        return ""
    return (
        f"no article metadata, and its URL is off the articles' pattern "
        f"({', '.join(sorted(shapes)[:3])})"
    )


@dataclass(frozen=True)
class Listing:
    articles: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = field(default=())  # a sitemap index's child sitemaps


def is_sitemap(text: str) -> bool:
    head = text[:2048]
    return "<urlset" in head or "<sitemapindex" in head


def read_listing(text: str, base_url: str, link_pattern: str = "") -> Listing:
    """Article links of a listing page or sitemap at `base_url`, in page order, deduplicated."""
    if is_sitemap(text):
        return _read_sitemap(text, base_url)
    try:
        root = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return Listing()
    for el in list(root.iter("nav", "header", "footer", "aside", "script", "style")):
        if el.getparent() is not None:
            el.drop_tree()
    pattern = re.compile(link_pattern) if link_pattern else None
    listing_url = urldefrag(base_url).url.rstrip("/")
    host = urlsplit(base_url).netloc.lower()
    links: dict[str, None] = {}
    for anchor in root.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith(("mailto:", "javascript:", "tel:", "#")):
            continue
        url = urldefrag(urljoin(base_url, href)).url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != host:
            continue
        if url.rstrip("/") == listing_url or parts.path in ("", "/"):
            continue
        if pattern is not None:
            if not pattern.search(url):
                continue
        elif _NOT_ARTICLE.search(parts.path + (f"?{parts.query}" if parts.query else "")):
            continue
        links[url] = None
    return Listing(tuple(links))


def _read_sitemap(text: str, base_url: str) -> Listing:
    try:
        root = etree.fromstring(
            text.encode(), etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
        )
    except etree.XMLSyntaxError:
        return Listing()
    if root is None:
        return Listing()
    tag = etree.QName(root).localname
    entries: list[tuple[str, datetime]] = []
    for node in root:
        if not isinstance(node.tag, str):
            continue
        loc = node.findtext(f"{_SITEMAP_NS}loc") or node.findtext("loc") or ""
        lastmod = node.findtext(f"{_SITEMAP_NS}lastmod") or node.findtext("lastmod") or ""
        if loc.strip():
            # undated entries keep sitemap order after the dated ones
            when = _date(lastmod) or datetime.min.replace(tzinfo=UTC)
            entries.append((urljoin(base_url, loc.strip()), when))
    entries.sort(key=lambda e: e[1], reverse=True)
    urls = tuple(dict.fromkeys(url for url, _ in entries))
    if tag == "sitemapindex":
        return Listing(sitemaps=urls)
    return Listing(articles=urls)


def _date(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
