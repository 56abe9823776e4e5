"""The public archive: every sent digest as a web page, an index per theme, and Atom feeds.

The store keeps each digest as rendered, with the per-recipient placeholders still in it. The
archive fills them with neutral public values through the same `personalize` a send uses: no
name, no address, and links to the token-less /preferences and /unsubscribe pages (which say
to use the link from one's own email), so no page ever carries anyone's personal link.

Several variants go out per edition (one per set of chosen themes). The public digest of a
theme in an edition is the variant that carried that theme's section with the fewest other
themes, the single-theme variant when there is one; `all` is the everything-variant.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

from digest.compose.render import RenderedDigest, personalize
from digest.compose.strings import reader_language
from digest.config import Config
from digest.models import Recipient
from digest.select import ALL
from digest.store import ArchivedDigest
from digest.tracking import strip_pixel
from digest.web.labels import labels_for

ATOM = "http://www.w3.org/2005/Atom"
DIGEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+_-]{0,120}$")


@dataclass(frozen=True)
class ArchiveEntry:
    key: str  # theme key or "all"
    title: str  # the theme's display title
    digest: ArchivedDigest


def theme_titles(config: Config) -> dict[str, str]:
    """Section keys in display order with their titles: every theme, then everything."""
    lang = config.site.language
    titles = {t.key: t.title_for(lang) for t in config.themes}
    titles[ALL] = labels_for(lang)["everything"]
    return titles


def _rank(digest: ArchivedDigest) -> tuple[int, str]:
    themes = [t for t in digest.variant.split(",") if t]
    return (len(themes), digest.id)


def public_digests(archived: list[ArchivedDigest], key: str) -> list[ArchivedDigest]:
    """The public digest of `key` in each edition that carried it, newest first."""
    best: dict[str, ArchivedDigest] = {}
    for digest in archived:
        if key not in digest.sections:
            continue
        current = best.get(digest.edition)
        if current is None or _rank(digest) < _rank(current):
            best[digest.edition] = digest
    return sorted(best.values(), key=lambda d: (d.sent, d.id), reverse=True)


def editions(config: Config, archived: list[ArchivedDigest]) -> list[list[ArchiveEntry]]:
    """Per edition (newest first), its public digest per theme, in the config's theme order."""
    titles = theme_titles(config)
    by_edition: dict[str, list[ArchiveEntry]] = {}
    order: list[str] = []
    for key, title in titles.items():
        for digest in public_digests(archived, key):
            if digest.edition not in by_edition:
                by_edition[digest.edition] = []
            by_edition[digest.edition].append(ArchiveEntry(key, title, digest))
    newest = {d.edition: d.sent for d in archived}
    order = sorted(by_edition, key=lambda e: newest[e], reverse=True)
    return [by_edition[e] for e in order]


def public_copy(config: Config, html: str, text: str, subject: str = "") -> tuple[str, str]:
    """A stored digest with its placeholders filled with neutral, public values, the stand-in
    for the address in the digest's own language (a reader's copy may be in theirs)."""
    base = config.web.base_url.rstrip("/")
    written = re.search(r'<html\b[^>]*\blang="([a-z]+)"', html[:2000])
    language = reader_language(written.group(1) if written else "", config.site.language)
    neutral = Recipient(
        email=labels_for(language)["public_email"],
        name="",
        unsubscribe_url=f"{base}/unsubscribe",
        preferences_url=f"{base}/preferences",
    )
    return personalize(RenderedDigest(subject, strip_pixel(html), text, ""), neutral)


def with_way_back(page: str, href: str, label: str) -> str:
    """The archived email as a page: a link back to the archive first in its body."""
    import html as markup
    import re

    link = (
        '<p style="margin:0;padding:12px 16px;font:14px/1.5 sans-serif">'
        f'<a href="{markup.escape(href, quote=True)}">← {markup.escape(label)}</a></p>'
    )
    body = re.search(r"<body\b[^>]*>", page, re.IGNORECASE)
    if body is None:
        return link + page
    return page[: body.end()] + link + page[body.end() :]


def atom_feed(
    config: Config,
    entries: list[ArchiveEntry],
    *,
    feed_url: str,
    title: str,
    texts: dict[str, str],
) -> bytes:
    """An Atom 1.0 feed of `entries`; each entry's content is the digest's public text part."""
    ET.register_namespace("", ATOM)
    base = config.web.base_url.rstrip("/")
    feed = ET.Element(f"{{{ATOM}}}feed")
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", config.site.language)
    ET.SubElement(feed, f"{{{ATOM}}}id").text = feed_url
    ET.SubElement(feed, f"{{{ATOM}}}title").text = title
    newest = max((e.digest.sent for e in entries), default=datetime(2000, 1, 1, tzinfo=UTC))
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = _stamp(newest)
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=feed_url)
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="alternate", href=f"{base}/archive")
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = config.site.name
    for entry in entries:
        page = f"{base}/archive/d/{entry.digest.id}"
        node = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(node, f"{{{ATOM}}}id").text = page
        ET.SubElement(node, f"{{{ATOM}}}title").text = entry.digest.subject
        ET.SubElement(node, f"{{{ATOM}}}updated").text = _stamp(entry.digest.sent)
        ET.SubElement(node, f"{{{ATOM}}}published").text = _stamp(entry.digest.sent)
        ET.SubElement(node, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=page)
        ET.SubElement(node, f"{{{ATOM}}}category", term=entry.key, label=entry.title)
        content = ET.SubElement(node, f"{{{ATOM}}}content", type="text")
        content.text = _xml_safe(texts.get(entry.digest.id, ""))
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    # Characters XML 1.0 cannot carry at all would make the whole feed unparsable.
    return _XML_BAD.sub("", text)
