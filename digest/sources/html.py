"""HTML to plain text that keeps paragraph breaks, so the summarizer sees real sentences."""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

_BLOCKS = {
    "p", "div", "section", "article", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6",
    "pre", "tr", "dd", "dt", "figure", "header", "footer", "main", "ul", "ol", "table", "br",
}
_DROP = {"script", "style", "nav", "noscript", "iframe", "form", "button", "svg", "figcaption"}
_SPACE = re.compile(r"[ \t\u00a0\u200b]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def html_to_text(html: str) -> str:
    """Paragraphs of plain text separated by blank lines; scripts, styles, navigation dropped."""
    if not html.strip():
        return ""
    if "<" not in html:
        return clean_text(html)
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return clean_text(re.sub(r"<[^>]+>", " ", html))
    for el in list(root.iter(*_DROP)):
        if el.getparent() is not None:
            el.drop_tree()
    parts: list[str] = []

    def walk(el: etree._Element) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _BLOCKS:
            parts.append("\n\n")
        if el.text and tag:
            parts.append(el.text)
        for child in el:
            walk(child)
            if child.tail:
                parts.append(child.tail)
        if tag in _BLOCKS:
            parts.append("\n\n")

    walk(root)
    return clean_text("".join(parts))


def clean_text(text: str) -> str:
    text = _CONTROL.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [_SPACE.sub(" ", p).strip() for p in re.split(r"\n\s*\n", text)]
    lines = [" ".join(line.strip() for line in p.splitlines() if line.strip()) for p in paragraphs]
    return "\n\n".join(p for p in lines if p)
