"""A Korean news site as a newsroom runs it (tests/fixtures/newsite: front page, sections,
author pages, "회사소개", ten articles with bylines, decks, captions, related boxes and comments,
three of them in EUC-KR, a teaser-only EUC-KR RSS feed and a sitemap), served on 127.0.0.1 and
ingested with `digest -v ingest` four ways: a page source on the front page, a page source on
the sitemap, a feed source on the RSS and a feed source given the front page. Each must store
the ten articles and nothing else, each with its byline's author, its deck as description,
its date and its body without comments, captions or related headlines.

On SQLite and, with DIGEST_TEST_PG set, on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.sources.byline import person_name, visible_byline, visible_date
from digest.sources.page import article_shapes, off_pattern, url_shape

from .conftest import store_url
from .fixtures.newsite import score, sitegen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "site" in metafunc.fixturenames:
        metafunc.parametrize("store_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def site() -> Iterator[sitegen.Running]:
    with sitegen.serve() as running:
        yield running


def ingest(tmp_path: Path, kind: str, site: sitegen.Running) -> score.Score:
    card = score.run(tmp_path, kind, site.base, store_url())
    assert card.exit_code == 0, card.output
    return card


def assert_perfect(card: score.Score) -> None:
    details = "\n".join([card.row(), *card.problems, *card.non_articles])
    assert card.articles == 10, details
    assert card.non_articles == [], details
    assert card.titles == 10, details
    assert card.authors == 10, details
    assert card.decks == 10, details
    assert card.dates == 10, details
    assert card.bodies == 10, details
    assert card.perfect, details


def skipped_lines(output: str) -> dict[str, str]:
    """path -> reason of each `skipped URL: not an article (reason)` line of `-v ingest`."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        match = re.match(r"\s+skipped https?://[^/]+(/\S*): not an article \((.*)\)$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_front_page_as_a_page_source(tmp_path: Path, site: sitegen.Running) -> None:
    """Every link of the front page is followed; the ten articles are stored, the section
    fronts, author pages and the full list are skipped with the reason, including the two
    profiles that have a dated biography long enough to pass for an article (off the URL
    pattern of the pages that say they are articles)."""
    card = ingest(tmp_path, "page", site)
    assert_perfect(card)
    assert "newsite: 10 new, 0 updated, 0 unchanged, 14 page(s) skipped" in card.output
    skipped = skipped_lines(card.output)
    expected = {"/news", *(f"/section/{k}" for k in sitegen.SECTIONS)}
    expected |= {f"/user/{n}" for n in sitegen.AUTHORS}
    assert set(skipped) == expected, card.output
    for profile in ("/user/4", "/user/6"):
        assert skipped[profile].startswith("no article metadata, and its URL is off the"), skipped
        assert "/news/articleView.html?idxno" in skipped[profile]


def test_sitemap_as_a_page_source(tmp_path: Path, site: sitegen.Running) -> None:
    """A page source on /sitemap.xml (there is no `kind = "sitemap"`: a page source reads a
    sitemap as such): the sitemap lists the articles and every other page; "회사소개" is
    skipped as undated, the front page and the lists for their little text."""
    card = ingest(tmp_path, "sitemap", site)
    assert_perfect(card)
    skipped = skipped_lines(card.output)
    assert len(skipped) == 16, card.output
    assert skipped["/about"] == "no publication date and no article metadata"
    assert skipped["/"] == "the site's front page"  # though its og:type says "article"
    assert "/user/6" in skipped


def test_teaser_only_euc_kr_feed(tmp_path: Path, site: sitegen.Running) -> None:
    """The RSS feed (EUC-KR) carries a teaser per item and "홍길동 기자" as author on most:
    each article is completed from its page (three of them EUC-KR), the author is the name
    and the description the publisher's deck, not the teaser."""
    card = ingest(tmp_path, "feed", site)
    assert_perfect(card)
    assert "newsite: 10 new, 0 updated, 0 unchanged" in card.output
    posts = score.stored_posts(tmp_path, store_url())
    assert all(len(p.text) > 800 for p in posts)  # the full article, not the teaser
    by_id = {p.url.rsplit("=", 1)[-1]: p for p in posts}
    assert by_id["102"].title == "흔들리는 시장, 개인 투자자의 전략은"  # EUC-KR, both ways


def test_front_page_given_as_the_feed(tmp_path: Path, site: sitegen.Running) -> None:
    card = ingest(tmp_path, "discovered", site)
    assert_perfect(card)
    assert "read the feed it announces" in card.output
    assert f"{site.base}/rss/allArticle.xml" in card.output


# -- the general rules behind the scorecard, on markup the fixture site does not use ----------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("홍길동 기자", "홍길동"),
        ("홍길동 기자 hong@example.co.kr", "홍길동"),
        ("글·사진 홍길동 기자", "홍길동"),
        ("[서울=뉴스] 홍길동·김철수 기자", "홍길동, 김철수"),
        ("홍길동 선임기자", "홍길동"),
        ("By Jane Doe", "Jane Doe"),
        ("jane@example.org (Jane Doe)", "Jane Doe"),
        ("Haebom", "Haebom"),
        ("https://facebook.com/someone", ""),
        ("입력 2026.11.28 14:05", ""),
    ],
)
def test_person_name(raw: str, name: str) -> None:
    assert person_name(raw) == name


@pytest.mark.parametrize(
    ("markup", "author"),
    [
        ('<div class="article-writer">김민지 기자</div>', "김민지"),
        ('<p class="writer">글 이수진 논설위원</p>', "이수진"),
        ('<ul class="info-text"><li>박준 기자</li><li>입력 2026.11.28 14:05</li></ul>', "박준"),
        # no marked byline: a short line of the article's own that reads "... 기자"
        ("<article><p>본문입니다.</p><p>글·사진 정하늘 기자</p></article>", "정하늘"),
        # an article's own footer holds its byline, the page's footer does not
        (
            '<div class="article-body"><p>본문</p><div class="article-footer">글·사진 홍길동 기자'
            '</div></div><div id="footer"><p>발행인 김철수 기자</p></div>',
            "홍길동",
        ),
        ('<p>본문</p><div id="footer"><p>편집 김철수 기자</p></div>', ""),
        # a related box's and a commenter's bylines are other people's
        (
            '<div class="related"><span class="byline">남궁민 기자</span></div>'
            '<div id="comments"><span class="writer">오지랖 기자</span></div>'
            '<span class="byline">서하준 기자</span>',
            "서하준",
        ),
    ],
)
def test_visible_byline(markup: str, author: str) -> None:
    root = lxml.html.document_fromstring(f"<html><body>{markup}</body></html>")
    assert visible_byline(root) == author


@pytest.mark.parametrize(
    ("markup", "when"),
    [
        ('<span class="date">입력 2026.11.28 14:05</span>', datetime(2026, 11, 28, 5, 5)),
        ("<p>기사입력 : 2026-11-21 오후 5:40</p>", datetime(2026, 11, 21, 8, 40)),
        ("<p>등록 2026년 11월 3일 09:30</p>", datetime(2026, 11, 3, 0, 30)),
        ("<p>Published 2026-11-03 09:30</p>", datetime(2026, 11, 3, 9, 30)),
        ('<div class="comment">입력 2026.11.28 14:05</div><p>본문</p>', None),
    ],
)
def test_visible_date(markup: str, when: datetime | None) -> None:
    root = lxml.html.document_fromstring(f"<html><body>{markup}</body></html>")
    assert visible_date(root) == (when.replace(tzinfo=UTC) if when else None)


def test_url_shapes_learned_from_the_articles_or_the_listing() -> None:
    assert url_shape("http://x/news/articleView.html?idxno=12") == "/news/articleView.html?idxno"
    assert url_shape("http://x/node/7") == url_shape("http://x/node/8") == "/node/*"
    assert url_shape("http://x/2026/11/28/a-slug") == "/#/*/*/*"
    assert url_shape("http://x/one-post") == url_shape("http://x/another") == "/*"
    marked = ["http://x/2026/11/28/one", "http://x/2026/11/27/two"]
    shapes = article_shapes(marked, [])
    assert off_pattern("http://x/2026/11/26/three", shapes) == ""
    assert "off the articles' pattern" in off_pattern("http://x/user/4", shapes)
    assert article_shapes(marked[:1], []) == set()  # one article is no pattern
    # no page says it is an article: the pattern most of the listing's links share
    listed = [f"http://x/view.php?id={n}" for n in range(5)] + ["http://x/user/1", "http://x/about"]
    assert article_shapes([], listed) == {"/view.php?id"}
    assert "off the articles' pattern" in off_pattern("http://x/user/1", {"/view.php?id"})
    assert article_shapes([], listed[:2] + listed[5:]) == set()  # no pattern stands out


def test_a_page_source_without_article_metadata_learns_the_pattern_from_the_listing(
    tmp_path: Path, site: sitegen.Running
) -> None:
    """A site whose pages carry no article metadata at all: the listing's links (mostly
    articles) give the pattern, and a dated profile off it is skipped."""
    listing = (
        "".join(f'<li><a href="/view.php?id={n}">기사 {n}</a></li>' for n in range(1, 5))
        + '<li><a href="/member/9">기자 소개</a></li>'
    )
    page = (
        '<html lang="ko"><head><meta charset="utf-8"><title>{t}</title></head><body>'
        '<div class="article"><h1>{t}</h1><div class="writer">{t} 기자</div>'
        '<p class="date">입력 2026.11.2{n} 10:00</p>'
        + "".join(f"<p>{_PARAGRAPH * 3}{{t}} {k}.</p>" for k in range(4))
        + "</div></body></html>"
    )
    site.pages["/list"] = (f"<html><body><ul>{listing}</ul></body></html>".encode(), sitegen.HTML)
    for n in range(1, 5):
        site.pages[f"/view.php?id={n}"] = (page.format(t=f"정기자{n}", n=n).encode(), sitegen.HTML)
    site.pages["/member/9"] = (page.format(t="프로필", n=9).encode(), sitegen.HTML)
    config = score.write_config(tmp_path, "page", site.base, store_url())
    config.write_text(config.read_text("utf-8").replace(f"{site.base}/", f"{site.base}/list"))
    result = CliRunner().invoke(main, ["--config", str(config), "-v", "ingest"])
    assert result.exit_code == 0, result.output
    assert "newsite: 4 new, 0 updated, 0 unchanged, 1 page(s) skipped" in result.output
    assert skipped_lines(result.output)["/member/9"].endswith("(/view.php?id)")


def test_a_sentence_naming_a_reporter_is_no_byline() -> None:
    root = lxml.html.document_fromstring(
        "<html><body><p>한국 기자 협회가 성명을 냈다.</p>"
        "<p>그는 김 기자에게 말했다.</p></body></html>"
    )
    assert visible_byline(root) == ""


@pytest.mark.parametrize("feed_author", ["pjh@newsite.example", "뉴사이트", ""])
def test_the_page_names_the_author_a_feed_does_not(feed_author: str) -> None:
    """A feed's <author> that is only an e-mail address (RSS 2.0) or the paper's name gives
    way to the page's byline; a person's name in the feed stays."""
    from digest.models import Post
    from digest.sources.article import Article, merge_into

    post = Post(
        source="s", guid="g", url="https://n.example/1", title="t", text="teaser",
        published=datetime(2026, 11, 1, tzinfo=UTC), author=feed_author,
    )  # fmt: skip
    article = Article(url=post.url, title="t", text="본문 " * 300, author="박지훈",
                      site_name="뉴사이트")  # fmt: skip
    assert merge_into(post, article).author == "박지훈"
    assert merge_into(replace(post, author="Jane Doe"), article).author == "Jane Doe"


_PARAGRAPH = (
    "정부는 내년부터 인공지능 기본법 시행령을 적용한다고 밝혔다. 업계는 세부 기준을 기다린다. "
)


def _page(head: str, article: str, after: str = "") -> str:
    body = "".join(f"<p>{_PARAGRAPH * 3}{n}번째 문단.</p>" for n in range(1, 5))
    return (
        f'<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>시행령 발표</title>'
        f'<meta property="og:site_name" content="뉴스포털">{head}</head><body>'
        '<aside class="sidebar"><time datetime="2020-01-01T00:00:00+09:00">2020.01.01</time>'
        '<span class="byline">남궁민 기자</span></aside>'
        f'<div class="article-body"><h1>시행령 발표</h1>{article}{body}</div>{after}</body></html>'
    )


def test_a_different_newsroom_markup() -> None:
    """Markup the fixture site does not use: the paper's name as <meta name="author">, an
    Organization as JSON-LD author, a zone-less time on a Korean page, a sidebar <time>
    before the article's, comments and a caption inside the article's own container."""
    from digest.sources.article import extract_article

    head = (
        '<meta name="author" content="뉴스포털">'
        '<script type="application/ld+json">{"@type": "NewsArticle", "author": '
        '{"@type": "Organization", "name": "뉴스포털"}}</script>'
    )
    article = (
        '<div class="view-info"><span class="name">뉴스포털</span>'
        '<span class="writer">김하늘 기자 sky@portal.example</span>'
        '<time datetime="2026-11-28T14:05:00">2026.11.28 14:05</time></div>'
        '<div class="photo_caption">▲ 시행령 발표 현장 모습</div>'
    )
    comments = (
        '<div class="cmt_list"><div class="cmt_item"><b class="nick">지나가는독자</b>'
        f"<p>{_PARAGRAPH}댓글입니다.</p></div></div>"
    )
    page = _page(head, article + comments)
    found = extract_article(page, "https://portal.example/news/1")
    assert found is not None
    assert found.author == "김하늘"
    assert found.published == datetime(2026, 11, 28, 5, 5, tzinfo=UTC)  # 14:05 KST
    assert "1번째 문단" in found.text and "4번째 문단" in found.text
    assert "댓글입니다" not in found.text and "시행령 발표 현장" not in found.text
    assert "남궁민" not in found.text and found.marked


def test_a_byline_only_at_the_end_of_the_text() -> None:
    from digest.sources.article import extract_article

    page = _page("", "", after="").replace(
        "4번째 문단.</p>", "4번째 문단.</p><p>/글·사진=정하늘 기자 sky@portal.example</p>"
    )
    page = page.replace("<title>", '<meta property="og:type" content="article"><title>')
    found = extract_article(page, "https://portal.example/news/2")
    assert found is not None
    assert found.author == "정하늘"  # not the sidebar's 남궁민
    assert "정하늘" not in found.text


def test_drupal_core_markup() -> None:
    """A Drupal node as core writes it: RDFa only (typeof="schema:Article",
    schema:dateCreated), "Submitted by <span class="username">...</span> on ..." in the
    article's own <footer>, a comment whose author is a schema:Person too."""
    from digest.sources.article import extract_article

    body = "".join(f"<p>{_PARAGRAPH * 3}{n}번째 문단.</p>" for n in range(1, 5))
    page = (
        '<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8"><title>시행령 | 뉴스D'
        '</title></head><body><header role="banner"><a href="/" class="site-name">뉴스D</a>'
        '</header><main><article role="article" about="/node/12" typeof="schema:Article" '
        'class="node node--type-article"><h1><span property="schema:name">시행령</span></h1>'
        '<footer class="node__meta"><div class="node__submitted">Submitted by <span '
        'rel="schema:author" class="field field--name-uid"><span typeof="schema:Person" '
        'property="schema:name" class="username">박지훈</span></span> on <span '
        'property="schema:dateCreated" content="2026-11-29T05:05:00+00:00">Sat, 11/29/2026 - '
        f'14:05</span></div></footer><div class="node__content">{body}'
        '<section class="comment-wrapper"><article typeof="schema:Comment" class="comment">'
        '<footer class="comment__meta"><span typeof="schema:Person" property="schema:name" '
        'class="username">김서연</span></footer><p>좋은 기사네요. 댓글 남깁니다.</p></article>'
        "</section>"
        "</div></article></main></body></html>"
    )
    found = extract_article(page, "https://d.example/node/12")
    assert found is not None
    assert found.marked and found.not_article == ""
    assert found.author == "박지훈"
    assert found.published == datetime(2026, 11, 29, 5, 5, tzinfo=UTC)
    assert len(found.text.split("\n\n")) == 4 and "4번째 문단" in found.text
    assert "댓글 남깁니다" not in found.text


def test_the_digest_quotes_each_articles_deck(tmp_path: Path, site: sitegen.Running) -> None:
    """With `deck = "auto"` (the default) the summary of each article is the editor's deck
    the page shows under its headline; with `deck = "never"` it is an extract instead."""
    from digest.config import load_config
    from digest.pipeline import summarize_posts
    from digest.store import Store

    ingest(tmp_path, "page", site)
    config = load_config(score.write_config(tmp_path, "page", site.base, store_url()))
    store = Store.from_config(config.store)
    try:
        posts = sorted(store.posts_since(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC)),
                       key=lambda p: p.title)  # fmt: skip
        decks = {a.title: a.deck for a in sitegen.ARTICLES}
        summaries = summarize_posts(posts, config, store)
        assert [" ".join(s.sentences) for s in summaries] == [decks[p.title] for p in posts]
        never = replace(config, summary=replace(config.summary, deck="never"))
        extracts = summarize_posts(posts, never, store)
        assert all(s.algorithm == "hybrid" for s in extracts), extracts
    finally:
        store.close()
