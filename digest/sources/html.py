"""HTML to plain text that keeps paragraph breaks, so the summarizer sees real sentences.

Besides markup, what a summarizer must not see is dropped: scripts, styles, navigation, share
buttons, image captions (`사진=연합뉴스`), bylines (`홍길동 기자`), e-mail addresses and
copyright footers. Those would otherwise be picked as "key sentences" of a news article.
"""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

from digest.sources.encoding import scrub

_BLOCKS = {
    "p", "div", "section", "article", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6",
    "pre", "tr", "dd", "dt", "figure", "header", "footer", "main", "ul", "ol", "table", "br",
    "lb",  # trafilatura's <br>: article pages that separate paragraphs by <br><br>
}  # fmt: skip
_DROP = {
    "script", "style", "nav", "noscript", "iframe", "form", "button", "svg", "figcaption",
    "template", "select", "aside",
}  # fmt: skip
# class / id fragments of share bars, bylines and other page furniture inside article bodies
_FURNITURE = re.compile(
    r"(?:^|[\s_-])(?:share|sharing|sns|social|byline|reporter|copyright|breadcrumbs?|"
    r"related|subscribe|newsletter|advert|banner|caption|tags?-?list|print)(?:$|[\s_-])",
    re.IGNORECASE,
)
_SPACE = re.compile(r"[ \t\u00a0\u200b\u3000\ufeff]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# The lookbehind starts a match only where a run of local-part characters starts: without it a
# 200,000-character word was scanned from each of its positions (quadratic: minutes).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# (사진=연합뉴스), [그래픽=김아무개 기자], <자료: 통계청> anywhere in a paragraph
_CREDIT = re.compile(
    r"[\[(<【]\s*(?:사진|그래픽|영상|자료|출처|이미지|일러스트|제공)\s*[=:：][^\])>】]{0,60}[\])>】]"
)
# a paragraph that is only a credit or caption: "사진=연합뉴스", "▲ 사진=..."
_CAPTION_LINE = re.compile(r"^[▲△▶■□◆◇※\s]*(?:사진|그래픽|영상|자료|이미지|일러스트)\s*[=:：]")
_REPORTER = r"[가-힣]{2,4}\s?(?:선임|수석|객원|인턴|전문)?\s?(?:기자|특파원|논설위원|통신원)"
# "[서울=뉴시스] 홍길동 기자 = " or "(서울=연합뉴스) 홍길동 기자 =" opening a paragraph
_DATELINE = re.compile(
    rf"^\s*[\[(【][^\])】]{{1,20}}=[^\])】]{{1,20}}[\])】]\s*(?:(?:{_REPORTER})\s*=?\s*)*"
)
# a paragraph that is only bylines: "홍길동 기자", "/ 홍길동 기자 hong@news.com", "By Jane Roe",
# "글·사진=홍길동 기자"
_BYLINE_LINE = re.compile(
    rf"^[\s/·|-]*(?:(?:글|사진|글\s?[·/]\s?사진|취재|정리)\s?[=:：·]?\s*)?"
    rf"(?:(?:{_REPORTER})[\s,/·]*)+$|^\s*(?:By|Written by)\s+[A-Z][\w.'-]*"
    r"(?:\s+[A-Z][\w.'-]*){0,3}\s*$"
)
# a paragraph that is only the dateline, maybe after the byline: "입력 2026.11.28 14:05 |
# 수정 2026.11.28 15:00", "홍길동 기자 | 기사입력 : 2026-11-21 17:40"
_DATELINE_LINE = re.compile(
    rf"^(?:(?:{_REPORTER})\s*[|·/]?\s*)?(?:(?:기사\s?)?(?:입력|등록|승인|수정|게재|발행|송고)"
    r"(?:일|일시)?\s*[:：]?\s*\d{4}\s*[.\-/년]\s*\d{1,2}\s*[.\-/월]\s*\d{1,2}\s*일?\.?"
    r"(?:\s*(?:오전|오후)?\s*\d{1,2}:\d{2}(?::\d{2})?)?\s*[|·/]?\s*)+$"
)
_EMPTY_BRACKETS = re.compile(r"[\[(<]\s*[\])>]")
_COPYRIGHT = re.compile(r"(?:ⓒ|©|\(c\)|copyright|저작권자).{0,80}(?:무단|금지|reserved)", re.I)


def html_to_text(html: str) -> str:
    """Paragraphs of plain text separated by blank lines; scripts, styles, navigation dropped."""
    if not html.strip():
        return ""
    html = scrub(html)
    if "<" not in html:
        return strip_boilerplate(clean_text(html))
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return strip_boilerplate(clean_text(re.sub(r"<[^>]+>", " ", html)))
    for el in list(root.iter(etree.Comment, etree.ProcessingInstruction)):
        if el.getparent() is not None:
            el.drop_tree()
    for el in list(root.iter(*_DROP)):
        if el.getparent() is not None:
            el.drop_tree()
    for el in list(root.iter()):
        marker = f"{el.get('class', '')} {el.get('id', '')} {el.get('role', '')}"
        if el.getparent() is not None and marker.strip() and _FURNITURE.search(marker):
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
    return strip_boilerplate(clean_text("".join(parts)))


def clean_text(text: str) -> str:
    text = _CONTROL.sub("", scrub(text)).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [_SPACE.sub(" ", p).strip() for p in re.split(r"\n\s*\n", text)]
    lines = [" ".join(line.strip() for line in p.splitlines() if line.strip()) for p in paragraphs]
    return "\n\n".join(p for p in lines if p)


def strip_boilerplate(text: str) -> str:
    """Drop captions, credits, bylines, e-mail addresses and copyright lines, paragraph-wise."""
    kept: list[str] = []
    for paragraph in text.split("\n\n"):
        p = _DATELINE.sub("", paragraph)
        p = _CREDIT.sub("", p)
        p = _EMPTY_BRACKETS.sub("", _EMAIL.sub("", p))
        p = _SPACE.sub(" ", p).strip()
        if not p or (_CAPTION_LINE.match(p) and len(p) < 200):
            continue
        if _BYLINE_LINE.match(p) or _DATELINE_LINE.match(p):
            continue
        if _COPYRIGHT.search(p) and len(p) < 200:
            continue
        kept.append(p)
    return "\n\n".join(kept)


def first_image(html: str, base_url: str = "") -> tuple[str | None, str]:
    """(src, alt) of the first real <img> in `html`: tracking pixels and data: URIs skipped."""
    if "<img" not in html.lower():
        return None, ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return None, ""
    for img in root.iter("img"):
        src = (img.get("src") or img.get("data-src") or "").strip()
        if not src or src.startswith("data:") or img.get("width") in ("0", "1"):
            continue
        if base_url:
            from urllib.parse import urljoin

            src = urljoin(base_url, src)
        return src, clean_text(img.get("alt") or "")
    return None, ""
