"""The editor's intro note of one issue (digest.approval), made safe for both parts.

The note is the editor's text, written in Markdown, but it is still text typed into a form:
its HTML is Markdown with raw HTML turned off, then cleaned by nh3 to a small allow-list
(paragraphs, emphasis, lists, quotes and http(s)/mailto links; no images, no styles). The
plain-text part shows the note as written, control characters dropped.
"""

from __future__ import annotations

import unicodedata

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

NOTE_TAGS = {"a", "b", "blockquote", "br", "code", "em", "i", "li", "ol", "p", "strong", "ul"}
NOTE_MAX_CHARS = 4000

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def note_text(note: str) -> str:
    """The note for the text part: NFC, no control characters but line breaks, no trailing
    spaces, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", note).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch) != "Cc")
    lines = [line.rstrip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def note_html(note: str) -> Markup:
    """The note as sanitized HTML ("" for an empty note)."""
    text = note_text(note)
    if not text:
        return Markup("")
    cleaned = nh3.clean(
        _MARKDOWN.render(text),
        tags=NOTE_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return Markup(cleaned.strip())
