"""An article page's main text and metadata: trafilatura for the text, the page's own <meta>
first for the metadata.

trafilatura finds the main content well, but its metadata is heuristic: its date has day
precision and comes from htmldate, which discards dates later than "today"; its author may be a
byline ("홍길동 기자"). Explicit markup (`article:published_time`, `<meta name="author">`,
`og:image`, `<link rel="canonical">`) is read first and trafilatura fills the gaps.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from digest.models import Post
from digest.sources.byline import (
    KST,
    drop_furniture,
    elsewhere,
    in_comments,
    person_name,
    split_break_paragraphs,
    unwrap_layout_tables,
    visible_byline,
    visible_date,
    visible_deck,
    visible_time,
)
from digest.sources.html import clean_text, first_image, html_to_text

# trafilatura logs every page it finds too short at WARNING; that is ours to report.
logging.getLogger("trafilatura").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Article:
    url: str  # the canonical link if the page names one, else the fetched URL
    title: str
    text: str  # paragraphs separated by blank lines
    author: str = ""
    published: datetime | None = None
    updated: datetime | None = None
    image: str | None = None
    image_alt: str = ""
    tags: tuple[str, ...] = ()
    description: str = ""
    language: str = ""
    # Why the page is not an article (a profile, a section front, an undated "about" page),
    # or "" when it is one: page and sitemap sources store articles only.
    not_article: str = ""
    # The page says it is an article (JSON-LD or og:type), rather than only looking like one
    # (a date and enough text): page sources learn the articles' URL pattern from these.
    marked: bool = False
    site_name: str = ""  # og:site_name or the JSON-LD publisher: the paper, not a person


_ARTICLE_TYPES = {
    "article", "newsarticle", "blogposting", "reportagenews", "analysisnewsarticle",
    "opinionnewsarticle", "reviewnewsarticle", "backgroundnewsarticle", "techarticle",
    "scholarlyarticle", "socialmediaposting", "liveblogposting",
}  # fmt: skip
_NOT_ARTICLE_TYPES = {"profilepage", "person", "collectionpage", "searchresultspage", "aboutpage"}
_ORGANIZATIONS = {"organization", "newsmediaorganization", "corporation"}
MIN_ARTICLE_CHARS = 400


def _kind(types: set[str], og_type: str, published: datetime | None, text: str) -> str:
    """Why the page is not an article, or "": JSON-LD or og:type say "article", else a page
    that has a publication date and some text is one; a profile, a collection, an undated
    page or a stub is not."""
    if types & _ARTICLE_TYPES or og_type == "article":
        return ""
    if types & _NOT_ARTICLE_TYPES or og_type == "profile":
        what = sorted(types & _NOT_ARTICLE_TYPES) or ["og:type profile"]
        return f"a {what[0]} page"
    if published is None:
        return "no publication date and no article metadata"
    if len(text) < MIN_ARTICLE_CHARS:
        return f"only {len(text)} characters of text"
    return ""


def _json_ld_items(root: Any) -> list[dict[str, Any]]:
    """The JSON-LD objects of the page: each script's object (or list of them) and the
    objects of its `@graph`, parsed once per page."""
    items: list[dict[str, Any]] = []
    for script in root.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text or "")
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            continue
        found = data if isinstance(data, list) else [data]
        if isinstance(data, dict) and isinstance(data.get("@graph"), list):
            found = [data, *data["@graph"]]
        items.extend(item for item in found if isinstance(item, dict))
    return items


def _rdfa_types(root: Any) -> set[str]:
    """The schema.org types of the page's RDFa (`typeof="schema:Article"`, as Drupal writes
    it), those of comments and other articles' boxes left out."""
    found: set[str] = set()
    for el in root.xpath("//*[@typeof]"):
        names = [t for t in str(el.get("typeof")).split() if t.lower().startswith("schema:")]
        if names and not elsewhere(el):
            found.update(t.split(":", 1)[1].lower() for t in names)
    return found


def _json_ld_types(items: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for item in items:
        kind = item.get("@type")
        for name in kind if isinstance(kind, list) else [kind]:
            if isinstance(name, str):
                found.add(name.lower())
    return found


def extract_article(html: str, url: str) -> Article | None:
    """The page's article, or None when it has no main text worth keeping."""
    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return None
    meta = _meta(root, url)
    import trafilatura  # imported on first use: it is slow to import and feeds rarely need it

    # The extractor gets a copy without the comments, related boxes and captions, and with
    # paragraphs separated by <br><br> as <p>s, which it keeps apart.
    work = copy.deepcopy(root)
    drop_furniture(work)
    unwrap_layout_tables(work)
    split_break_paragraphs(work)
    html = lxml.html.tostring(work, encoding="unicode")
    extracted = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        include_images=False,
        favor_precision=True,
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    doc = None if isinstance(extracted, dict) else extracted  # as_dict=False: a Document
    text = ""
    title = meta.get("title", "")
    if doc is not None and doc.body is not None:
        title = title or clean_text(doc.title or "")
        for head in list(doc.body.iter("head")):
            # trafilatura keeps the page's <h1> as a heading: the title, not a paragraph
            parent = head.getparent()
            if parent is not None and clean_text("".join(head.itertext())) == title:
                parent.remove(head)
        body = etree.tostring(doc.body, encoding="unicode")
        body = body.replace("<head", "<h2").replace("</head>", "</h2>")
        text = html_to_text(body)
    if not text:
        return None
    assert doc is not None  # text comes from doc
    description = meta.get("description", "")
    if meta.get("deck") and _opens(text, description):
        # a CMS's og:description that is only the body's first words: the deck is the
        # publisher's own summary
        description = meta["deck"]
    published = meta.get("published") or _parse_date(doc.date)
    # trafilatura's own guess may be a commenter's nickname: kept only if the page's comments
    # do not hold it.
    guess = person_name(doc.author or "") if doc else ""
    if guess and _named_in_comments(root, guess):
        guess = ""
    author = meta.get("author") or guess
    image = meta.get("image") or (doc.image if doc and doc.image else None)
    image_alt = ""
    if not image:
        image, image_alt = first_image(html, url)
    tags = tuple(meta.get("tags", ())) or tuple(
        t for t in [*(doc.categories or []), *(doc.tags or [])] if t
    )
    return Article(
        url=meta.get("canonical") or doc.url or url,
        title=title,
        text=text,
        author=author,
        published=published,
        updated=meta.get("updated"),
        image=image,
        image_alt=image_alt,
        tags=tags,
        description=description,
        language=(meta.get("language") or "")[:2].lower(),
        site_name=meta.get("site_name", ""),
        marked=bool(meta.get("ld_types", set()) & _ARTICLE_TYPES)
        or meta.get("og_type") == "article",
        not_article=_front_page(url)
        or _kind(
            meta.get("ld_types", set()),
            meta.get("og_type", ""),
            published or meta.get("updated"),
            text,
        ),
    )


def _front_page(url: str) -> str:
    """A site's home page is no article, whatever its og:type says (some themes put
    "article" on every page)."""
    parts = urlsplit(url)
    return "the site's front page" if parts.path in ("", "/") and not parts.query else ""


def _opens(text: str, description: str) -> bool:
    """Whether `description` is the first words of `text` (an automatic description)."""
    squeeze = re.compile(r"[\s.…]+")
    head = squeeze.sub("", description)[:30]
    return len(head) >= 10 and squeeze.sub("", text[: len(description) + 50]).startswith(head)


def merge_into(post: Post, article: Article) -> Post:
    """The feed's post completed by its article page.

    The page's text and image win (the point of fetching it is the full article); title,
    author and dates stay the feed's when it has them, since the page's are extracted
    heuristically ("제목 | 사이트명", a byline as author); the page fills whatever the feed
    lacks. The identity (guid) and link never change, so the post stays the same post.
    """
    text = article.text if len(article.text) > len(post.text) else post.text
    description = post.description
    if not description and article.description:
        description = article.description  # the publisher's deck (og:description)
    elif not description and text != post.text:
        description = post.text  # the feed's teaser
    author = post.author
    paper = article.site_name.replace(" ", "").lower()
    if article.author and (
        not author or "@" in author or (paper and author.replace(" ", "").lower() == paper)
    ):
        # a feed's <author> that is only an e-mail address (as RSS 2.0 has it) or the paper's
        # own name: the page's byline names the person
        author = article.author
    return replace(
        post,
        text=text,
        title=post.title or article.title,
        author=author,
        image=article.image or post.image,
        image_alt=article.image_alt if article.image else post.image_alt,
        tags=post.tags or article.tags,
        description=description,
        language=post.language or article.language or None,
    )


def _meta(root: Any, url: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def content(*selectors: str) -> str:
        for selector in selectors:
            for el in root.xpath(selector):
                value = (el.get("content") or el.get("datetime") or el.get("href") or "").strip()
                if value:
                    return str(value)
        return ""

    canonical = content('//link[@rel="canonical"]', '//meta[@property="og:url"]')
    if canonical:
        found["canonical"] = urljoin(url, canonical)
    ld = _json_ld_items(root)
    found["ld_types"] = _json_ld_types(ld) | _rdfa_types(root)
    og_type = content('//meta[@property="og:type"]').lower()
    if og_type:
        found["og_type"] = og_type
    title = content('//meta[@property="og:title"]', '//meta[@name="twitter:title"]')
    if title:
        found["title"] = clean_text(title)
    # JSON-LD, then the meta tags, then the visible byline; each cleaned to the name
    # ("홍길동 기자" -> "홍길동"); an article:author that is a profile URL names nobody.
    # Many Korean CMSs put the paper's own name in <meta name="author">: not a person.
    papers = (
        content('//meta[@property="og:site_name"]'),
        _json_ld_publisher(ld),
        content('//meta[@name="application-name"]'),
    )
    site_names = {n.replace(" ", "").lower() for n in papers if n}
    if any(papers):
        found["site_name"] = clean_text(next(n for n in papers if n))
    for candidate in (
        _json_ld_author(ld),
        content('//meta[@name="author"]'),
        content('//meta[@property="article:author"]'),
        content('//meta[@name="dable:author"]', '//meta[@name="byl"]'),
    ):
        name = person_name(candidate)
        if name and name.replace(" ", "").lower() not in site_names:
            found["author"] = name
            break
    else:
        author = visible_byline(root)
        if author and author.replace(" ", "").lower() not in site_names:
            found["author"] = author
    image = content('//meta[@property="og:image"]', '//meta[@name="twitter:image"]')
    if image:
        found["image"] = urljoin(url, image)
    # The publisher's deck: og:description or JSON-LD's, else the subheadline shown under the
    # title; a plain description meta tag comes last, as many CMSs fill it with the body's
    # first words.
    deck = visible_deck(root, title)
    if deck:
        found["deck"] = deck
    description = (
        content('//meta[@property="og:description"]')
        or _json_ld(ld, "description", article_only=True)
        or content('//meta[@name="twitter:description"]')
        or deck
        or content('//meta[@name="description"]')
    )
    if description:
        found["description"] = clean_text(description)
    # A time without a zone on a Korean page is Korean time.
    language = root.get("lang") or content('//meta[@property="og:locale"]')
    zone = KST if language.lower().startswith("ko") else UTC
    published = _parse_date(
        content(
            '//meta[@property="article:published_time"]',
            '//meta[@name="article:published_time"]',
            '//meta[@property="og:published_time"]',
            '//meta[@itemprop="datePublished"]',
            '//*[@itemprop="datePublished"][@datetime]',
            # RDFa, as Drupal writes it
            '//*[contains(@property, "datePublished")][@content]',
            '//*[contains(@property, "dateCreated")][@content]',
            '//*[contains(@property, "dc:created")][@content]',
            '//meta[@name="pubdate"]',
            '//meta[@name="publishdate"]',
            '//meta[@name="date"]',
        )
        or _json_ld(ld, "datePublished")
        or visible_time(root),
        zone,
    ) or visible_date(root)
    if published:
        found["published"] = published
    updated = _parse_date(
        content(
            '//meta[@property="article:modified_time"]',
            '//meta[@name="article:modified_time"]',
        )
        or _json_ld(ld, "dateModified"),
        zone,
    )
    if updated:
        found["updated"] = updated
    tags = [
        clean_text(str(el.get("content") or ""))
        for el in root.xpath('//meta[@property="article:tag"]')
    ]
    if any(tags):
        found["tags"] = tuple(dict.fromkeys(t for t in tags if t))
    if language:
        found["language"] = language
    return found


def _named_in_comments(root: Any, name: str) -> bool:
    for el in root.iter():
        if isinstance(el.tag, str) and el.text and name in el.text and in_comments(el):
            return True
    return False


def _json_ld_author(items: list[dict[str, Any]]) -> str:
    """The `author` of a JSON-LD article: a name, or {"name": ...}, or the first of a list;
    an Organization (the publisher named as author) is nobody's name."""
    for item in items:
        author = item.get("author")
        if isinstance(author, list) and author:
            author = author[0]
        if isinstance(author, dict):
            if _json_ld_types([author]) & _ORGANIZATIONS:
                continue
            author = author.get("name")
        if isinstance(author, str) and author.strip():
            return author.strip()
    return ""


def _json_ld_publisher(items: list[dict[str, Any]]) -> str:
    for item in items:
        publisher = item.get("publisher")
        if isinstance(publisher, dict) and isinstance(publisher.get("name"), str):
            return str(publisher["name"])
        if _json_ld_types([item]) & _ORGANIZATIONS and isinstance(item.get("name"), str):
            return str(item["name"])
    return ""


def _json_ld(items: list[dict[str, Any]], key: str, *, article_only: bool = False) -> str:
    for item in items:
        if article_only and not _json_ld_types([item]) & _ARTICLE_TYPES:
            continue  # a WebSite's or Organization's description is not the article's
        if isinstance(item.get(key), str):
            return str(item[key])
    return ""


def _parse_date(value: str | None, zone: tzinfo = UTC) -> datetime | None:
    """An ISO 8601 time (also "2026-11-28 14:05:00"), in `zone` when it names none."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)
