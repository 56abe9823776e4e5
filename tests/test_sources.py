"""Sources: feed parsing (real feedparser on fixture files), HTML to text, fetching."""

from __future__ import annotations

import asyncio
import http.server
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.sources.feed import read_feed
from digest.sources.fetch import fetch
from digest.sources.html import clean_text, html_to_text

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
SMALL = FEEDS / "haebom-small.atom"
BROKEN = FEEDS / "broken.atom"


def source(name: str = "haebom", **kw: object) -> SourceConfig:
    return SourceConfig(name=name, url=str(kw.pop("url", SMALL)), **kw)  # type: ignore[arg-type]


# -- read_feed ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_posts() -> tuple:
    result = read_feed(source(), SMALL.read_bytes())
    assert result.problems == ()
    return result.posts


def test_small_feed_has_eight_posts(small_posts: tuple) -> None:
    assert len(small_posts) == 8
    assert len({p.guid for p in small_posts}) == 8
    assert small_posts[0].title == "계엄, 우리에겐 힘이 있지"
    assert small_posts[4].title == '"국내 최초의 인공지능 기본법"의 매력'
    assert all(p.title and p.text for p in small_posts)
    assert all(p.source == "haebom" for p in small_posts)
    assert small_posts[0].key == f"haebom:{small_posts[0].guid}"


def test_dates_are_aware_utc(small_posts: tuple) -> None:
    for post in small_posts:
        assert post.published.tzinfo is not None
        assert post.published.utcoffset() == timedelta(0)
    # <published>2026-11-20T09:00:00+09:00</published>
    assert small_posts[0].published == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    assert small_posts[0].updated == small_posts[0].published
    published = [p.published for p in small_posts]
    assert published == sorted(published, reverse=True)


def test_tags_author_counts_and_links(small_posts: tuple) -> None:
    first = small_posts[0]
    assert first.tags == ("사회", "정치", "인문학")
    assert first.author == "Haebom"
    assert first.reactions == 7 and first.comments == 2
    assert isinstance(first.reactions, int) and isinstance(first.comments, int)
    assert small_posts[1].reactions == 17 and small_posts[1].comments is None
    assert first.url == "https://haebom.example/posts/post-01-martial-law-we-have-power"
    assert first.guid.startswith("tag:haebom.example,2024:posts/")
    assert first.language == "ko"
    assert first.description.startswith("개인적으로 교류하는 분 중에")


def test_text_keeps_paragraph_breaks(small_posts: tuple) -> None:
    # One block of text per <p> or <h2> of each entry's HTML content.
    xml = SMALL.read_text(encoding="utf-8")
    contents = re.findall(r'<content type="html">(.*?)</content>', xml, re.S)
    counts = [c.count("&lt;p&gt;") + c.count("&lt;h2&gt;") for c in contents]
    assert sum(c.count("&lt;h2&gt;") for c in contents) >= 2  # the sample has subheadings
    for post, count in zip(small_posts, counts, strict=True):
        blocks = post.text.split("\n\n")
        assert len(blocks) == count, post.title
        assert all(p.strip() == p and p for p in blocks)
        assert "<p>" not in post.text and "&lt;" not in post.text
    first = small_posts[0].text.split("\n\n")
    assert first[0].startswith("개인적으로 교류하는 분 중에 May라는 분이 있다.")
    assert first[1] == "정보 자본: 현대의 새로운 힘"  # a subheading is a block of its own
    assert first[2].startswith("오늘날 '우리'가 지닌 힘은 다양하다.")


def test_entities_in_html_content_come_back_as_characters() -> None:
    atom = Path(__file__).resolve().parent / "fixtures" / "sources" / "atom.xml"
    assert "&amp;lt;구별짓기(Distinction)&amp;gt;" in atom.read_text(encoding="utf-8")
    result = read_feed(source(url=str(atom)), atom.read_bytes())
    assert "<구별짓기(Distinction)>" in result.posts[0].text


def test_source_tags_and_language_are_applied() -> None:
    result = read_feed(source(tags=("blog", "사회"), language="en"), SMALL.read_bytes())
    first = result.posts[0]
    assert first.tags == ("blog", "사회", "정치", "인문학")  # merged, no duplicates, source first
    assert first.language == "en"


def test_broken_feed_yields_what_it_could_read_and_a_problem() -> None:
    result = read_feed(source("broken", url=BROKEN), BROKEN.read_bytes())
    assert len(result.posts) >= 1
    assert result.posts[0].title == "계엄, 우리에겐 힘이 있지"
    assert result.posts[0].reactions == 7 and result.posts[0].comments == 2
    assert len(result.problems) == 1
    assert "'broken'" in result.problems[0]
    assert "malformed" in result.problems[0]


def test_entry_without_date_is_skipped_with_a_problem() -> None:
    feed = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>x</id>
<entry><id>a</id><title>Dated</title><updated>2026-01-02T03:04:05Z</updated>
<content type="html">&lt;p&gt;One.&lt;/p&gt;</content></entry>
<entry><id>b</id><title>Undated</title>
<content type="html">&lt;p&gt;Two.&lt;/p&gt;</content></entry>
</feed>"""
    result = read_feed(source("tiny"), feed)
    assert [p.title for p in result.posts] == ["Dated"]
    assert result.posts[0].published == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert len(result.problems) == 1
    assert "entry 2" in result.problems[0] and "no date" in result.problems[0]


def test_rss_feed_with_description_only() -> None:
    feed = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>R</title>
<item><title>Hello</title><link>https://r.example/1</link>
<pubDate>Tue, 03 Jun 2025 10:00:00 +0200</pubDate>
<description>&lt;p&gt;First para.&lt;/p&gt;&lt;p&gt;Second para.&lt;/p&gt;</description></item>
</channel></rss>"""
    (post,) = read_feed(source("rss"), feed).posts
    assert post.text == "First para.\n\nSecond para."
    assert post.guid == "https://r.example/1"
    assert post.published == datetime(2025, 6, 3, 8, 0, tzinfo=UTC)
    assert post.reactions is None and post.comments is None


def test_empty_but_valid_feed_is_not_an_error() -> None:
    feed = b'<?xml version="1.0"?><rss version="2.0"><channel><title>R</title></channel></rss>'
    assert read_feed(source("empty"), feed).posts == ()


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\xff\xfe\x89PNG garbage \x00\x00",
        b"",
        b"<!DOCTYPE html><html><head><title>Home</title></head>"
        b"<body><p>Welcome to my site</p></body></html>",
        b"<html><head><title>T</title></head><body><p>unclosed<br></body></html>",
        b'{"items": [{"title": "json"}]}',
    ],
    ids=["garbage", "empty", "html-page", "sloppy-html", "json"],
)
def test_not_a_feed_raises_source_error_naming_the_source(data: bytes) -> None:
    with pytest.raises(SourceError) as info:
        read_feed(source("mysource", url="https://example.com/page"), data)
    assert "'mysource'" in str(info.value)
    assert "https://example.com/page" in str(info.value)


# -- html_to_text ---------------------------------------------------------------------------


def test_html_to_text_drops_scripts_styles_and_navigation() -> None:
    html = """
    <nav><a href="/">Home</a> | <a href="/about">About</a></nav>
    <style>p { color: red }</style>
    <script>var tracking = "evil";</script>
    <h2>Title here</h2>
    <p>First paragraph with <b>bold</b> and <a href="#">a link</a>.</p>
    <div>Second<br>line</div>
    <noscript>enable js</noscript>
    <ul><li>one</li><li>two</li></ul>
    <figure><img src="x.png"><figcaption>caption</figcaption></figure>
    """
    text = html_to_text(html)
    for dropped in ("Home", "About", "color", "tracking", "enable js", "caption"):
        assert dropped not in text
    assert text.split("\n\n") == [
        "Title here",
        "First paragraph with bold and a link.",
        "Second",
        "line",
        "one",
        "two",
    ]


def test_html_to_text_plain_and_empty() -> None:
    assert html_to_text("") == ""
    assert html_to_text("   ") == ""
    assert html_to_text("just  text\n\nsecond") == "just text\n\nsecond"
    assert html_to_text("<p>가나다&nbsp;라마</p>") == "가나다 라마"


def test_clean_text_normalizes_whitespace_and_controls() -> None:
    assert clean_text("a\r\nb\r\n\r\n\r\nc\x00\x07d  \t e") == "a b\n\ncd e"


# -- fetch ----------------------------------------------------------------------------------


def test_fetch_local_file(tmp_path: Path) -> None:
    path = tmp_path / "feed.atom"
    path.write_bytes(SMALL.read_bytes())
    assert asyncio.run(fetch("local", str(path), 5)) == SMALL.read_bytes()
    assert asyncio.run(fetch("local", f"file://{path}", 5)) == SMALL.read_bytes()


def test_fetch_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.atom"
    with pytest.raises(SourceError) as info:
        asyncio.run(fetch("gone", str(missing), 5))
    assert "'gone'" in str(info.value)
    assert str(missing) in str(info.value)


def test_fetch_unsupported_scheme() -> None:
    with pytest.raises(SourceError, match="unsupported URL scheme"):
        asyncio.run(fetch("ftp", "ftp://example.com/feed", 5))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/feed.atom":
            body = SMALL.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/moved":
            self.send_response(301)
            self.send_header("Location", "/feed.atom")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_fetch_http(server: str) -> None:
    data = asyncio.run(fetch("web", f"{server}/feed.atom", 5))
    assert data == SMALL.read_bytes()
    assert len(read_feed(source("web", url=f"{server}/feed.atom"), data).posts) == 8


def test_fetch_http_follows_redirects(server: str) -> None:
    assert asyncio.run(fetch("web", f"{server}/moved", 5)) == SMALL.read_bytes()


def test_fetch_http_404(server: str) -> None:
    url = f"{server}/missing.atom"
    with pytest.raises(SourceError) as info:
        asyncio.run(fetch("web", url, 5))
    message = str(info.value)
    assert "'web'" in message and url in message and "404" in message


def test_fetch_http_connection_refused() -> None:
    # Bind then close a socket to get a port nobody listens on.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError, match="'down'"):
        asyncio.run(fetch("down", f"http://127.0.0.1:{port}/feed.atom", 2))


# -- encodings, boilerplate, listings, config (issue 10) ------------------------------------

KOREAN = "똠방각하의 인공지능 이야기: 한국어 본문입니다."


def test_decode_korean_in_any_declaration() -> None:
    from digest.sources.encoding import decode

    cp949 = f"<p>{KOREAN}</p>".encode("cp949")
    assert decode(cp949) == f"<p>{KOREAN}</p>"  # undeclared
    assert decode(cp949, "text/html; charset=euc-kr") == f"<p>{KOREAN}</p>"
    assert decode(cp949, "text/html; charset=iso-8859-1") == f"<p>{KOREAN}</p>"  # wrong label
    utf8 = f"<p>{KOREAN}</p>".encode()
    assert decode(utf8, "text/html; charset=euc-kr") == f"<p>{KOREAN}</p>"  # wrong label
    assert decode(b"\xef\xbb\xbf" + utf8) == f"<p>{KOREAN}</p>"  # BOM
    assert decode(b"<p>a\x00b\x0bc</p>") == "<p>abc</p>"  # control characters
    assert decode("café".encode("latin-1"), "text/plain; charset=iso-8859-1") == "café"


def test_mojibake_is_repaired_and_real_accents_kept() -> None:
    from digest.sources.encoding import repair_mojibake

    broken = KOREAN.encode("utf-8").decode("cp1252", errors="ignore")
    assert "ë" in broken or "ì" in broken
    assert repair_mojibake("안녕하세요".encode().decode("cp1252")) == "안녕하세요"
    assert repair_mojibake("café naïve Ångström") == "café naïve Ångström"


def test_boilerplate_is_dropped_and_paragraphs_kept() -> None:
    html = """<div class="article-share"><a>페이스북</a><a>트위터</a></div>
    <p>[서울=뉴시스] 홍길동 기자 = 정부가 인공지능 기본법 시행령을 발표했다.</p>
    <p>▲ 사진=연합뉴스</p>
    <p>시행령은 고위험 인공지능의 기준을 담았다. (사진=뉴시스) 업계는 환영했다.</p>
    <p>홍길동 기자 hong@newsis.com</p>
    <p>문의: press@example.com</p>
    <p>ⓒ 뉴시스, 무단전재 및 재배포 금지</p>"""
    assert html_to_text(html).split("\n\n") == [
        "정부가 인공지능 기본법 시행령을 발표했다.",
        "시행령은 고위험 인공지능의 기준을 담았다. 업계는 환영했다.",
        "문의:",
    ]


def test_listing_links_skip_navigation_and_other_hosts() -> None:
    from digest.sources.page import read_listing

    page = """<html><body><nav><a href="/about">소개</a></nav><main>
    <a href="/2026/11/ai-law">인공지능 기본법</a><a href="/tag/ai">태그</a>
    <a href="https://other.example/x">외부</a><a href="/2026/11/ai-law#comments">댓글</a>
    <a href="/img/a.jpg">사진</a><a href="/2026/11/economy">경제</a></main></body></html>"""
    listing = read_listing(page, "https://blog.example/")
    assert listing.articles == (
        "https://blog.example/2026/11/ai-law",
        "https://blog.example/2026/11/economy",
    )
    only = read_listing(page, "https://blog.example/", link_pattern=r"/economy$")
    assert only.articles == ("https://blog.example/2026/11/economy",)
    index = read_listing(
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<sitemap><loc>https://blog.example/s1.xml</loc></sitemap></sitemapindex>",
        "https://blog.example/sitemap.xml",
    )
    assert index.sitemaps == ("https://blog.example/s1.xml",) and index.articles == ()


def test_front_matter_yaml_toml_and_errors() -> None:
    from digest.sources.folder import split_front_matter

    meta, body = split_front_matter("---\ntitle: 제목\ntags: [a, b]\n---\n본문\n")
    assert meta == {"title": "제목", "tags": ["a", "b"]} and body == "본문\n"
    meta, body = split_front_matter('+++\ntitle = "제목"\n+++\n본문')
    assert meta == {"title": "제목"} and body == "본문"
    assert split_front_matter("# 그냥 글\n") == ({}, "# 그냥 글\n")
    with pytest.raises(ValueError, match="invalid front matter"):
        split_front_matter("---\ntitle: [unclosed\n---\n")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"kind": "sitemap"}, "unknown kind 'sitemap' (feed, page, folder)"),
        ({"full_text": "sometimes"}, "full_text' must be auto, always or never"),
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"link_pattern": "("}, "invalid regex"),
        ({"kind": "folder", "url": "https://x.example/"}, "a folder source needs a local path"),
        ({"timeout": 0}, "must be > 0"),
    ],
)
def test_source_config_is_validated(tmp_path: Path, extra: dict[str, object], message: str) -> None:
    from digest.config import parse_config
    from digest.errors import ConfigError

    data = {
        "site": {"name": "T", "url": "https://t.example", "sender": "T <t@t.example>"},
        "sources": [{"name": "s", "url": "https://x.example/feed", **extra}],
    }
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(data, tmp_path / "config.toml")


def test_an_article_whose_paragraphs_are_br_br_keeps_them_apart() -> None:
    """Older Korean sites write paragraphs as text separated by <br><br>: they ran together
    ("있습니다.둘째 문단"), and no sentence splitter could tell them apart."""
    from digest.sources.article import extract_article

    page = (
        "<html><head><title>t</title></head><body><article><h1>제목</h1>"
        '<div class="body">첫 문단입니다. 여기에 문장이 더 있습니다. 이 문장은 충분히 길게 '
        "써서 본문으로 인식되게 합니다.<br><br>둘째 문단입니다. 이것도 문장입니다.<br/><br/>"
        "셋째 문단입니다. 마지막 문장입니다.</div></article></body></html>"
    )
    article = extract_article(page, "https://news.example/a/1")
    assert article is not None
    assert article.text.split("\n\n") == [
        "첫 문단입니다. 여기에 문장이 더 있습니다. "
        "이 문장은 충분히 길게 써서 본문으로 인식되게 합니다.",
        "둘째 문단입니다. 이것도 문장입니다.",
        "셋째 문단입니다. 마지막 문장입니다.",
    ]


_BODY = "<p>" + "본문 문장입니다. 이 기사는 충분히 깁니다. " * 20 + "</p>"


@pytest.mark.parametrize(
    ("page", "author"),
    [
        pytest.param(
            '<div class="byline"><span class="writer">홍길동 기자</span> hong@news.example</div>'
            f"{_BODY}</article>"
            '<section id="comments"><div class="comment"><span class="author">댓글러123</span>'
            "<p>좋은 기사네요</p></div></section>",
            "홍길동",
            id="visible byline, a commenter marked as author",
        ),
        pytest.param(
            f"{_BODY}</article>"
            '<div class="comments"><div class="comment"><span class="author">닉네임</span>'
            "<p>댓글</p></div></div>"
            '<script type="application/ld+json">{"@type": "NewsArticle", '
            '"author": [{"@type": "Person", "name": "김기자"}]}</script>',
            "김기자",
            id="JSON-LD author",
        ),
        pytest.param(
            f"{_BODY}</article>"
            '<div id="reply-list"><div class="comment-author"><b>닉네임77</b></div>'
            "<p>첫 댓글입니다</p></div>",
            "",
            id="no author but a commenter",
        ),
    ],
)
def test_the_author_is_never_a_commenter(page: str, author: str) -> None:
    """Pages without an author meta tag took the first commenter's nickname as the author;
    the author now comes from JSON-LD, the meta tags or the visible byline, never from the
    comments."""
    from digest.sources.article import extract_article

    html = f'<html lang="ko"><head><title>기사</title></head><body><article><h1>기사</h1>{page}'
    article = extract_article(html + "</body></html>", "https://news.example/a/1")
    assert article is not None
    assert article.author == author


def test_a_teaser_completed_by_its_page_keeps_the_publishers_deck() -> None:
    """The deck (og:description) was on most article pages and was never used; a post
    completed by its page now keeps it as its description, over the feed's teaser."""
    from datetime import UTC, datetime

    from digest.models import Post
    from digest.sources.article import extract_article, merge_into

    deck = "정부가 내년부터 인공지능 기본법 시행령을 적용한다. 기업의 고지 의무가 핵심이다."
    page = (
        '<html lang="ko"><head><title>기사</title>'
        f'<meta property="og:description" content="{deck}"></head><body><article>'
        f"<h1>기사</h1>{_BODY}</article></body></html>"
    )
    article = extract_article(page, "https://news.example/a/1")
    assert article is not None
    teaser = Post(
        source="news",
        guid="1",
        url="https://news.example/a/1",
        title="기사",
        text="본문 문장입니다.",
        published=datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert merge_into(teaser, article).description == deck
