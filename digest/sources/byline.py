"""What an article page shows a reader but may not say in its metadata: the byline's name,
the dateline ("입력 2026.11.28 14:05"), the deck (subheadline), and the <br><br> paragraphs of
older Korean sites turned into real ones before the main text is extracted.

Everything here reads the page's visible markup and skips what belongs to the reader's side of
the page (comments) or to other articles (related boxes, sidebars, navigation): a commenter's
nickname or a related article's byline is never this article's author.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import lxml.html

from digest.sources.html import clean_text

KST = timezone(timedelta(hours=9))

# class / id / rel / itemprop of an element that holds the byline; the weak marks (an
# "info" line, a "name") count only when the text reads "홍길동 기자": a <span class="name">
# may be the site's name.
_BYLINE_MARK = re.compile(
    r"byline|writer|reporter|journalist|author|submitted|creator", re.IGNORECASE
)
# inside a byline ("Submitted by <span class="username">홍길동</span> on ..."), the name
_NAME_MARK = re.compile(r"username|author-?name|(?:^|[\s:_-])name(?:$|[\s_-])", re.IGNORECASE)
_WEAK_BYLINE_MARK = re.compile(
    r"info-?text|art(?:icle)?-?info|view-?info|news-?info|user-?info|name", re.IGNORECASE
)
# the reader's side and other articles' boxes: nothing in them is about this article
_ELSEWHERE_MARK = re.compile(
    r"comment|reply|replies|disqus|댓글|related|relation|sidebar|popular|most-?read|ranking|"
    r"recommend|other-?news|more-?news|headline-?list|(?:^|[\s_-])nav",
    re.IGNORECASE,
)
_ELSEWHERE_TAGS = {"nav", "aside", "footer", "form"}
_COMMENTS_MARK = re.compile(r"comment|reply|replies|disqus|댓글", re.IGNORECASE)
_ADDRESS = re.compile(r"\S+@\S+|https?://\S+")
_TITLES = (
    r"(?:선임|수석|객원|인턴|전문|편집|)\s?"
    r"(?:기자|대기자|특파원|논설위원|논설실장|통신원|에디터|칼럼니스트|위원|PD)"
)
# "홍길동 기자", "홍길동·김철수 기자", "글·사진 홍길동 기자": the name(s) before the title
_KOREAN_NAMES = re.compile(
    rf"(?<![가-힣])((?:[가-힣]{{2,4}}\s*[·,]\s*)*[가-힣]{{2,4}})\s?{_TITLES}(?![가-힣])"
)
# what may come before a byline's name on its line: punctuation, a dateline, a lead word
_BYLINE_PREFIX = re.compile(
    r"^[\W\d_]*(?:[\[(【][^\])】]{1,20}[\])】]\s*)?"
    r"(?:(?:글|사진|글\s?[·/]\s?사진|취재|정리|기사|by)\s?[=:：·]?\s*)?$",
    re.IGNORECASE,
)
# what may follow it: the end, punctuation, an address, a date, another byline
_BYLINE_SUFFIX = re.compile(
    r"\s*(?:$|[^\w\s]|_|\d|[\w.+-]+@|(?:기사\s?)?(?:입력|등록|승인|수정|게재|발행|송고)|"
    r"[가-힣]{2,4}\s?(?:기자|특파원))"
)
_NOT_NAMES = {"사진", "그래픽", "영상", "자료", "글", "취재", "정리", "편집", "뉴스", "제공"}
# lead words of a byline: "By", "글", "글·사진", "Written by", "취재"
_LEAD = re.compile(
    r"^(?:by|written by|submitted by|posted by|글\s*[·/]\s*사진|글쓴이|글|사진|취재|정리|작성자?)"
    r"\s*[:：=|·]?\s*",
    re.IGNORECASE,
)
_TRAIL = re.compile(rf"\s*{_TITLES}\s*$")
_DATE_IN_TEXT = re.compile(r"\d{4}\s*[.\-/년]\s*\d{1,2}\s*[.\-/월]")
# "입력 2026.11.28 14:05", "기사입력 : 2026-11-21 오후 5:40", "등록 2026년 11월 28일 11:40"
_DATELINE = re.compile(
    r"(?P<label>기사\s*입력|입력|등록|승인|게재|발행|작성|송고|published|posted)\s*(?:일|일시)?"
    r"\s*[:：]?\s*(?P<y>\d{4})\s*[.\-/년]\s*(?P<m>\d{1,2})\s*[.\-/월]\s*(?P<d>\d{1,2})\s*일?\.?"
    r"(?:\s*\(?[월화수목금토일]\)?)?"
    r"(?:\s*(?P<ampm>오전|오후|AM|PM|am|pm)?\s*(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?",
    re.IGNORECASE,
)
_DECK_MARK = re.compile(
    r"sub-?head(?:line|ing)?|sub-?title|sub_title|deck|standfirst|(?:^|[\s_-])dek(?:$|[\s_-])|"
    r"article-?summary|summary-?title|lede|alternative-?headline|(?:head|title)-?sub",
    re.IGNORECASE,
)
_BLOCK_CHILDREN = {
    "p", "div", "figure", "table", "ul", "ol", "blockquote", "h1", "h2", "h3", "h4", "h5",
    "h6", "section", "article", "aside", "pre", "dl", "hr",
}  # fmt: skip


def _marker(el: Any) -> str:
    return " ".join(el.get(a, "") for a in ("class", "id", "rel", "itemprop"))


def elsewhere(el: Any) -> bool:
    """Whether `el` is in the comments, a related box, a sidebar, navigation or a footer."""
    return any(_marked_elsewhere(node) for node in [el, *el.iterancestors()])


_FOOTER_MARK = re.compile(r"footer", re.IGNORECASE)
# an article's own footer ("article-footer", "entry-footer", Drupal's "node__footer")
_OWN_FOOTER_MARK = re.compile(r"(?:article|news|view|post|entry|node|story)[\s_-]*footer", re.I)


def _marked_elsewhere(el: Any) -> bool:
    if not isinstance(el.tag, str):
        return False
    marker = _marker(el)
    if el.tag == "footer" or _FOOTER_MARK.search(marker):
        # the page's footer; an article's own footer holds its byline (Drupal's "Submitted
        # by ..." in the <article>'s <footer>, "글·사진 홍길동 기자" in .article-footer)
        own = _OWN_FOOTER_MARK.search(marker) or any(a.tag == "article" for a in el.iterancestors())
        return not own
    return el.tag in _ELSEWHERE_TAGS or bool(_ELSEWHERE_MARK.search(marker))


def in_comments(el: Any) -> bool:
    return any(
        isinstance(node.tag, str) and _COMMENTS_MARK.search(_marker(node))
        for node in [el, *el.iterancestors()]
    )


def person_name(raw: str) -> str:
    """The person a byline or author field names: "홍길동 기자 hong@x.kr" -> "홍길동",
    "글·사진 홍길동·김철수 기자" -> "홍길동, 김철수", "By Jane Doe" -> "Jane Doe",
    "jane@x.org (Jane Doe)" -> "Jane Doe"; "" when nothing name-like is left."""
    text = clean_text(raw).replace("\n", " ")
    bracketed = re.fullmatch(r"\S+@\S+\s*\((.+)\)", text)
    if bracketed:
        text = bracketed.group(1)
    for match in _KOREAN_NAMES.finditer(text):
        names = [n for n in re.split(r"\s*[·,]\s*", match.group(1)) if n not in _NOT_NAMES]
        if names:
            return ", ".join(names)
    text = clean_text(_ADDRESS.sub(" ", text)).strip(" \t|·/-=:")
    bare = text
    for _ in range(2):
        bare = _TRAIL.sub("", _LEAD.sub("", bare)).strip(" \t|·/-=:")
    if len(bare) > 1:
        text = bare  # else a pen name such as "김기자" stays whole
    if not 1 < len(text) <= 40 or _DATE_IN_TEXT.search(text):
        return ""
    return text


def visible_byline(root: Any) -> str:
    """The byline's name: first an element marked as a byline (writer, reporter, author...),
    then any short text of the page's own that reads "홍길동 기자"; never one in the
    comments, a related box, a sidebar or the footer."""
    candidates: list[Any] = []
    weak: list[Any] = []
    fallback: list[Any] = []
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in ("script", "style", "title", "meta"):
            continue
        marker = _marker(el)
        if _BYLINE_MARK.search(marker):
            candidates.append(el)
        elif _WEAK_BYLINE_MARK.search(marker):
            weak.append(el)
        elif el.tag in ("p", "div", "span", "li", "em", "strong", "b", "address", "dd", "td"):
            fallback.append(el)
    for el in candidates:
        if elsewhere(el):
            continue
        for inner in el.iterdescendants():
            marks = " ".join(inner.get(a, "") for a in ("class", "property", "itemprop", "rel"))
            if isinstance(inner.tag, str) and _NAME_MARK.search(marks):
                name = person_name(" ".join(inner.itertext()))
                if name:
                    return name
        text = " ".join(el.itertext())
        if len(text) <= 200:
            name = person_name(text)
            if name:
                return name
    for el in [*weak, *fallback]:
        text = clean_text(" ".join(el.itertext()))
        match = _KOREAN_NAMES.search(text) if len(text) <= 120 else None
        # the byline opens the line ("글·사진 홍길동 기자 hong@...", "홍길동 기자 입력 ..."):
        # "한국 기자 협회가 ..." in a sentence of the text is no byline
        if (
            match is None
            or not _BYLINE_PREFIX.match(text[: match.start()])
            or not _BYLINE_SUFFIX.match(text[match.end() :])
            or elsewhere(el)
        ):
            continue
        name = person_name(text[match.start() :])
        if name:
            return name
    return ""


def visible_date(root: Any) -> datetime | None:
    """The publication time a labelled dateline shows ("입력 2026.11.28 14:05"), outside the
    comments and other articles' boxes; Korean labels mean Korean time, others UTC."""
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in ("script", "style", "title"):
            continue
        own = " ".join(t for t in [el.text or ""] + [c.tail or "" for c in el] if t)
        text = own if _DATELINE.search(own) else ""
        # "<li>입력 <em>2026.11.28</em></li>": the label and the date in separate nodes,
        # unless part of it is a comment's or another article's
        if (
            not text
            and len(el)
            and len(" ".join(el.itertext())) <= 120
            and not any(_marked_elsewhere(d) for d in el.iterdescendants())
        ):
            text = " ".join(el.itertext())
        match = _DATELINE.search(text) if text else None
        if match is None or elsewhere(el):
            continue
        found = _dateline_time(match)
        if found is not None:
            return found
    return None


def _dateline_time(match: re.Match[str]) -> datetime | None:
    hour = int(match.group("H") or 0)
    ampm = (match.group("ampm") or "").lower()
    if ampm in ("오후", "pm") and hour < 12:
        hour += 12
    elif ampm in ("오전", "am") and hour == 12:
        hour = 0
    zone = UTC if match.group("label").isascii() else KST
    try:
        local = datetime(
            int(match.group("y")),
            int(match.group("m")),
            int(match.group("d")),
            hour,
            int(match.group("M") or 0),
            int(match.group("S") or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None
    return local.astimezone(UTC)


def visible_deck(root: Any, title: str) -> str:
    """The publisher's deck shown under the headline (a subheadline or standfirst)."""
    for el in root.iter():
        if not isinstance(el.tag, str) or not _DECK_MARK.search(_marker(el)):
            continue
        if elsewhere(el):
            continue
        text = clean_text(" ".join(el.itertext())).replace("\n\n", " ")
        if 8 <= len(text) <= 400 and text != title:
            return text
    return ""


def split_break_paragraphs(root: Any) -> None:
    """Text separated by <br><br> (or by a block such as a photo) inside one element becomes
    <p> paragraphs, in place: the extractor otherwise runs such paragraphs together."""
    for el in list(root.iter("div", "td", "article", "section", "font")):
        if el.getparent() is None or not _has_break_paragraphs(el):
            continue
        _wrap_runs(el)


def _has_break_paragraphs(el: Any) -> bool:
    doubles = 0
    previous_br = False
    for child in el:
        if not isinstance(child.tag, str):
            continue
        is_br = child.tag == "br"
        if is_br and previous_br:
            doubles += 1
        previous_br = is_br and not (child.tail or "").strip()
    has_text = bool((el.text or "").strip()) or any((c.tail or "").strip() for c in el)
    return doubles >= 1 and has_text


def _wrap_runs(el: Any) -> None:
    """Regroup `el`'s inline content into <p> elements, split at <br><br> and block children."""
    children = list(el)
    pieces: list[list[Any]] = [[]]  # runs of inline nodes; a str is text
    blocks: list[tuple[int, Any]] = []

    def cut() -> None:
        if pieces[-1]:
            pieces.append([])

    if el.text:
        pieces[-1].append(el.text)
    el.text = None
    pending_br: Any = None
    for child in children:
        el.remove(child)
        tail, child.tail = child.tail, None
        if isinstance(child.tag, str) and child.tag == "br":
            if pending_br is not None:
                pending_br = None
                cut()
            else:
                pending_br = child
        else:
            if pending_br is not None:
                pieces[-1].append(pending_br)
                pending_br = None
            if isinstance(child.tag, str) and child.tag in _BLOCK_CHILDREN:
                cut()
                blocks.append((len(pieces) - 1, child))
                pieces.append([])
            else:
                pieces[-1].append(child)
        if tail:
            if tail.strip() and pending_br is not None:
                pieces[-1].append(pending_br)
                pending_br = None
            pieces[-1].append(tail)
    by_index = dict(blocks)
    for index, run in enumerate(pieces):
        if index in by_index:
            el.append(by_index[index])
            continue
        if not any(not isinstance(p, str) or p.strip() for p in run):
            continue
        para = lxml.html.Element("p")
        for part in run:
            if isinstance(part, str):
                if len(para):
                    para[-1].tail = (para[-1].tail or "") + part
                else:
                    para.text = (para.text or "") + part
            else:
                para.append(part)
        el.append(para)


# Boxes inside or around the article that are not its text: the comments, other articles'
# headlines, photo captions. Dropped before the main text is extracted.
_FURNITURE_MARK = re.compile(
    r"comment|(?:^|[\s_-])cmt|reply|replies|disqus|댓글|related|relation|recommend|popular|"
    r"most-?read|ranking|other-?news|more-?news|caption|photo-?desc|img-?desc",
    re.IGNORECASE,
)
_KEEP_TAGS = {"html", "body", "main", "head"}


def drop_furniture(root: Any) -> None:
    """Remove, in place, the comments, related boxes and captions marked by class or id;
    never an element that holds most of the page's text (a <div class="has-comments">
    around the whole article)."""
    body = root.find(".//body")
    total = len(" ".join((body if body is not None else root).itertext()))
    for el in list(root.iter()):
        if not isinstance(el.tag, str) or el.tag in _KEEP_TAGS or el.getparent() is None:
            continue
        marker = f"{el.get('class', '')} {el.get('id', '')}"
        if not marker.strip() or not _FURNITURE_MARK.search(marker):
            continue
        if len(" ".join(el.itertext())) > total / 2:
            continue
        el.drop_tree()


def visible_time(root: Any) -> str:
    """The `datetime` of the first <time> of the article's own (not a comment's, not a
    related article's)."""
    for el in root.iter("time"):
        value = (el.get("datetime") or "").strip()
        if value and not elsewhere(el):
            return str(value)
    return ""


def unwrap_layout_tables(root: Any) -> None:
    """Tables used for page layout (older Korean sites put the whole article in a <td>)
    become plain <div>s, in place, so the extractor, which skips tables, keeps their text; a
    data table (many short cells) stays a table."""
    for table in list(root.iter("table")):
        cells = [c for c in table.iter("td", "th") if c.getparent() is not None]
        longest = max((len(" ".join(c.itertext()).strip()) for c in cells), default=0)
        if longest < 200 or (len(cells) > 12 and longest < 600):
            continue
        for el in [table, *table.iter("tbody", "thead", "tfoot", "tr", "td", "th")]:
            if el.tag in ("table", "tbody", "thead", "tfoot", "tr", "td", "th"):
                el.tag = "div"
