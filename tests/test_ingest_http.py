"""Ingest over real HTTP: a local server (127.0.0.1, port 0) serves the Korean source fixtures
in every shape, and the tests check what lands in a real SQLite store."""

from __future__ import annotations

import asyncio
import hashlib
import html
import http.server
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.config import Config, parse_config
from digest.ingest import SourceReport, ingest_all
from digest.sources.fetch import Fetcher
from digest.store import Store

from .conftest import open_test_store

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FIRST = "tag:haebom.example,2024:posts/post-01-martial-law-we-have-power"
TYPES = {
    ".xml": "application/rss+xml",
    ".rdf": "application/rdf+xml",
    ".json": "application/feed+json",
}


class Server(http.server.ThreadingHTTPServer):
    base = ""
    hits: Counter[str]
    headers_seen: dict[str, dict[str, str]]
    overrides: dict[str, bytes]
    fail: dict[str, int]  # path -> how many more times to answer 503
    release: threading.Event


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        srv = self.server
        path = self.path.split("?")[0]
        srv.hits[path] += 1
        srv.headers_seen[path] = dict(self.headers)
        if path == "/slow":
            srv.release.wait(3)  # far past the test's 0.5 s timeout; released at teardown
            return self._send(200, b"<rss/>", "text/xml")
        if path in ("/loop-a", "/loop-b"):
            target = "/loop-b" if path == "/loop-a" else "/loop-a"
            return self._send(302, b"", "text/plain", Location=target)
        if path == "/moved":
            return self._send(301, b"", "text/plain", Location="/rss2.xml")
        if path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()  # no Content-Length: the limit must hold while streaming
            try:
                for _ in range(200):
                    self.wfile.write(b"<!-- padding -->" * 4096)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return None
        if path == "/error":
            return self._send(500, b"oops", "text/plain")
        if srv.fail.get(path, 0) > 0:
            srv.fail[path] -= 1
            return self._send(503, b"busy", "text/plain", Retry_After="0")
        if path in srv.overrides:
            body = srv.overrides[path]
        else:
            file = FIXTURES / path.lstrip("/")
            if not file.is_file() or ".." in path:
                return self._send(404, b"not found", "text/plain")
            body = file.read_bytes()
        body = body.replace(b"{{BASE}}", srv.base.encode())
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return None
        suffix = Path(path).suffix
        if path.endswith("undeclared.xml"):
            content_type = "text/xml"  # no charset anywhere: CP949 must be recognized
        elif suffix == ".html":
            # the EUC-KR article declares its charset only in <meta>
            charset = "" if "post-04" in path else "; charset=utf-8"
            content_type = f"text/html{charset}"
        else:
            content_type = TYPES.get(suffix, "application/octet-stream")
        return self._send(200, body, content_type, ETag=etag)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0), Handler)
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    srv.hits, srv.headers_seen, srv.overrides, srv.fail = Counter(), {}, {}, {}
    srv.release = threading.Event()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_test_store(tmp_path)
    yield s
    s.close()


def make_config(tmp_path: Path, sources: list[dict[str, Any]], **top: Any) -> Config:
    data = {
        "site": {"name": "Test", "url": "https://example.com", "sender": "T <t@example.com>"},
        "store": {"path": "db.sqlite3"},
        "sources": sources,
        **top,
    }
    return parse_config(data, tmp_path / "config.toml")


def run(config: Config, store: Store, now: datetime = NOW) -> dict[str, SourceReport]:
    fetcher = Fetcher(backoff=0.01)  # retries without real waiting
    return {r.name: r for r in asyncio.run(ingest_all(config, store, now, fetcher=fetcher))}


def all_posts(store: Store) -> list[Any]:
    return store.posts_since(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def assert_clean_korean(text: str) -> None:
    assert "\ufffd" not in text
    for mojibake in ("ì", "ë", "í", "ê", "Ã"):  # UTF-8 read as Latin-1 / CP1252
        assert mojibake not in text
    assert not any(ord(c) < 32 and c != "\n" for c in text)


# -- feeds in every format --------------------------------------------------------------------


def test_every_feed_format_lands_in_the_store(tmp_path: Path, server: Server, store: Store) -> None:
    names = ["rss2.xml", "rss091.xml", "rss1.rdf", "atom.xml", "feed.json"]
    names += ["euckr.xml", "euckr-undeclared.xml"]
    sources = [{"name": n, "url": f"{server.base}/{n}", "full_text": "never"} for n in names]
    reports = run(make_config(tmp_path, sources), store)
    counts = {name: (r.new, r.failed) for name, r in reports.items()}
    assert counts == {
        "rss2.xml": (4, False),
        "rss091.xml": (3, False),
        "rss1.rdf": (3, False),
        "atom.xml": (3, False),
        "feed.json": (3, False),
        "euckr.xml": (3, False),
        "euckr-undeclared.xml": (3, False),
    }
    posts = all_posts(store)
    atom_xml = (FIXTURES / "atom.xml").read_text(encoding="utf-8")
    subheadings = re.findall(r"&lt;h2&gt;(.*?)&lt;/h2&gt;", atom_xml)
    found_headings = 0
    for post in posts:
        # Three paragraphs each; atom.xml (the sample feed's markup) has subheadings too, each
        # a block of its own.
        blocks = post.text.split("\n\n")
        headings = [b for b in blocks if b in subheadings] if post.source == "atom.xml" else []
        assert post.title and len(blocks) - len(headings) == 3
        found_headings += len(headings)
        assert_clean_korean(post.title + post.text)
    assert found_headings == len(subheadings) == 3
    by_source = {(p.source, p.guid): p for p in posts}
    rss = by_source[("rss2.xml", FIRST)]
    assert rss.title == "계엄, 우리에겐 힘이 있지"
    assert rss.published == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    assert rss.author == "Haebom" and rss.tags == ("사회", "정치", "인문학")
    assert rss.image == f"{server.base}/img/post-01-martial-law-we-have-power.jpg"  # enclosure
    second = by_source[
        ("rss2.xml", "tag:haebom.example,2024:posts/post-02-expertise-and-responsibility")
    ]
    assert second.image and second.image.endswith("-thumb.jpg")  # media:thumbnail
    atom = by_source[("atom.xml", FIRST)]
    assert (atom.image, atom.image_alt) == (f"{server.base}/img/atom.jpg", "대표 이미지")  # <img>
    json_post = by_source[("feed.json", FIRST)]
    assert json_post.tags == ("사회", "정치", "인문학") and json_post.author == "Haebom"
    assert json_post.image == "https://haebom.example/img/json.jpg"
    # RSS 0.91 items carry no guid and no date: identity is the link, the date first sight
    old = by_source[
        ("rss091.xml", "https://haebom.example/posts/post-01-martial-law-we-have-power")
    ]
    assert old.published == NOW
    rdf = by_source[("rss1.rdf", "https://haebom.example/posts/post-01-martial-law-we-have-power")]
    assert rdf.tags == ("사회",) and rdf.published == datetime(2026, 11, 20, tzinfo=UTC)
    # the EUC-KR feeds, declared or not, store the very same text as the UTF-8 one
    for name in ("euckr.xml", "euckr-undeclared.xml"):
        euc = by_source[(name, FIRST)]
        assert (euc.title, euc.text) == (rss.title, rss.text)
    assert server.headers_seen["/rss2.xml"]["User-Agent"].startswith("digest/")


def test_feed_with_a_broken_item(tmp_path: Path, server: Server, store: Store) -> None:
    config = make_config(tmp_path, [{"name": "b", "url": f"{server.base}/broken-item.xml"}])
    report = run(config, store)["b"]
    assert (report.new, report.failed) == (3, False)
    assert report.problems == ("source 'b': entry 2: no title and no text; skipped",)
    post = store.get_post(f"b:{FIRST}")
    assert post is not None and post.title == "계엄, 우리에겐 힘이 있지"  # \x0c removed


# -- full text --------------------------------------------------------------------------------


def test_teaser_feed_is_completed_from_article_pages(
    tmp_path: Path, server: Server, store: Store
) -> None:
    config = make_config(tmp_path, [{"name": "t", "url": f"{server.base}/teaser.xml"}])
    report = run(config, store)["t"]
    assert (report.new, report.failed, report.problems) == (4, False, ())
    teaser_feed = html.unescape((FIXTURES / "teaser.xml").read_text("utf-8"))
    for post in all_posts(store):
        assert len(post.text) > 400 and post.text.count("\n\n") >= 2, post.title
        assert_clean_korean(post.text)
        for junk in ("공유", "사진=", "@", "무단전재", "trackPage", "많이 본 글", "기자", "로그인"):
            assert junk not in post.text, (junk, post.title)
        assert post.author == "Haebom"  # the feed's dc:creator, not the page's byline
        assert post.description and post.description in teaser_feed  # the teaser is kept
        assert post.image and post.image.endswith("-og.jpg")  # the page's image
        assert post.tags  # the feed's categories
    first = store.get_post(f"t:{FIRST}")
    assert first is not None and first.published == datetime(2026, 11, 20, tzinfo=UTC)
    assert first.text.startswith("개인적으로 교류하는 분 중에 May라는 분이 있다.")
    # post-04 is served as EUC-KR, declared only in its <meta>
    euc = next(p for p in all_posts(store) if "post-04" in p.guid)
    assert euc.text.startswith("개인적으로 인공지능 서비스 강의 시장과")

    # Second run: the feed answers 304 and no article page is fetched again.
    pages = sum(n for path, n in server.hits.items() if path.startswith("/articles/"))
    again = run(config, store)["t"]
    assert again.not_modified and (again.new, again.updated) == (0, 0)
    assert sum(n for p, n in server.hits.items() if p.startswith("/articles/")) == pages
    assert server.headers_seen["/teaser.xml"].get("If-None-Match")

    # The feed changes (another ETag) but its entries do not: the stored articles are reused.
    server.overrides["/teaser.xml"] = (FIXTURES / "teaser.xml").read_bytes() + b"\n"
    third = run(config, store)["t"]
    assert (third.new, third.updated, third.unchanged) == (0, 0, 4)
    assert sum(n for p, n in server.hits.items() if p.startswith("/articles/")) == pages


def test_missing_article_page_keeps_the_teaser_and_is_retried(
    tmp_path: Path, server: Server, store: Store
) -> None:
    feed = (FIXTURES / "teaser.xml").read_bytes()
    server.overrides["/teaser.xml"] = feed.replace(b"post-02-expertise", b"post-02-missing")
    config = make_config(tmp_path, [{"name": "t", "url": f"{server.base}/teaser.xml"}])
    report = run(config, store)["t"]
    assert report.new == 4 and len(report.problems) == 1
    assert "404" in report.problems[0] and "post-02-missing" in report.problems[0]
    # no validators were kept, so the next run asks again instead of getting a 304
    again = run(config, store)["t"]
    assert not again.not_modified and "If-None-Match" not in server.headers_seen["/teaser.xml"]


# -- conditional GET, failures, identity ------------------------------------------------------


def test_unchanged_feed_costs_a_304(tmp_path: Path, server: Server, store: Store) -> None:
    config = make_config(tmp_path, [{"name": "r", "url": f"{server.base}/rss2.xml"}])
    assert run(config, store)["r"].new == 4
    report = run(config, store)["r"]
    assert report.not_modified and not report.failed
    assert (report.new, report.updated, report.unchanged) == (0, 0, 0)
    assert server.headers_seen["/rss2.xml"]["If-None-Match"].startswith('"')
    assert store.count_posts() == 4


def test_failing_sources_are_reported_and_the_others_go_on(
    tmp_path: Path, server: Server, store: Store
) -> None:
    invalid = tmp_path / "invalid.xml"
    invalid.write_bytes(b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>x')
    b = server.base
    sources = [
        {"name": "missing", "url": f"{b}/nope.xml"},
        {"name": "error", "url": f"{b}/error", "retries": 1},
        {"name": "slow", "url": f"{b}/slow", "timeout": 0.5, "retries": 0},
        {"name": "loop", "url": f"{b}/loop-a"},
        {"name": "huge", "url": f"{b}/huge", "max_bytes": 65536},
        {"name": "dns", "url": "http://no-such-host.invalid/feed.xml", "timeout": 2},
        {"name": "invalid", "url": str(invalid)},
        {"name": "good", "url": f"{b}/moved"},
    ]
    started = time.monotonic()
    reports = run(make_config(tmp_path, sources), store)
    assert time.monotonic() - started < 10
    expected = {
        "missing": "HTTP 404",
        "error": "HTTP 500",
        "slow": "timed out",
        "loop": "redirects",
        "huge": "larger than 65536 bytes",
        "dns": "cannot connect",
        "invalid": "not a valid feed",
    }
    for name, reason in expected.items():
        assert reports[name].failed, name
        assert reports[name].error.startswith(f"source {name!r}:"), reports[name].error
        assert reason in reports[name].error, reports[name].error
    assert server.hits["/error"] == 2  # one retry after the 500
    assert not reports["good"].failed and reports["good"].new == 4  # followed the 301
    assert store.count_posts() == 4


def test_retries_a_503_then_reads_the_feed(tmp_path: Path, server: Server, store: Store) -> None:
    server.fail["/rss2.xml"] = 2
    config = make_config(tmp_path, [{"name": "r", "url": f"{server.base}/rss2.xml"}])
    report = run(config, store)["r"]
    assert (report.new, report.failed) == (4, False)
    assert server.hits["/rss2.xml"] == 3


def test_a_failing_feed_never_makes_old_posts_look_new(
    tmp_path: Path, server: Server, store: Store
) -> None:
    config = make_config(tmp_path, [{"name": "r", "url": f"{server.base}/rss2.xml", "retries": 0}])
    assert run(config, store)["r"].new == 4
    before = {p.key: (p.published, p.text) for p in all_posts(store)}
    server.fail["/rss2.xml"] = 1
    failed = run(config, store, NOW + timedelta(days=1))["r"]
    assert failed.failed and "HTTP 503" in failed.error
    server.overrides["/rss2.xml"] = (FIXTURES / "rss2.xml").read_bytes() + b" "  # new ETag
    back = run(config, store, NOW + timedelta(days=2))["r"]
    assert (back.new, back.updated, back.unchanged) == (0, 0, 4)
    assert {p.key: (p.published, p.text) for p in all_posts(store)} == before


def test_edited_post_is_updated_in_place(tmp_path: Path, server: Server, store: Store) -> None:
    config = make_config(tmp_path, [{"name": "r", "url": f"{server.base}/rss2.xml"}])
    run(config, store)
    original = store.get_post(f"r:{FIRST}")
    assert original is not None
    edited = (FIXTURES / "rss2.xml").read_text("utf-8").replace("May라는 분", "June이라는 분")
    server.overrides["/rss2.xml"] = edited.encode()
    report = run(config, store, NOW + timedelta(days=1))["r"]
    assert (report.new, report.updated, report.unchanged) == (0, 1, 3)
    post = store.get_post(f"r:{FIRST}")
    assert post is not None and "June이라는 분" in post.text
    assert post.published == original.published


def test_identity_falls_back_to_link_then_content_hash(
    tmp_path: Path, server: Server, store: Store
) -> None:
    feed = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
<item><title>링크만 있는 글</title><link>https://x.example/a</link>
<pubDate>Fri, 20 Nov 2026 00:00:00 +0000</pubDate><description>본문 하나.</description></item>
<item><title>아무것도 없는 글</title>
<pubDate>Fri, 20 Nov 2026 00:00:00 +0000</pubDate><description>본문 둘.</description></item>
</channel></rss>"""
    server.overrides["/ids.xml"] = feed.encode()
    config = make_config(
        tmp_path, [{"name": "i", "url": f"{server.base}/ids.xml", "full_text": "never"}]
    )
    assert run(config, store)["i"].new == 2
    guids = {p.title: p.guid for p in all_posts(store)}
    assert guids["링크만 있는 글"] == "https://x.example/a"
    hashed = guids["아무것도 없는 글"]
    assert len(hashed) == 64 and all(c in "0123456789abcdef" for c in hashed)
    server.overrides["/ids.xml"] = feed.encode() + b"\n"
    assert run(config, store)["i"].unchanged == 2


def test_first_ingest_can_mark_old_posts_as_seen(
    tmp_path: Path, server: Server, store: Store
) -> None:
    sources = [{"name": "r", "url": f"{server.base}/rss2.xml", "mark_old_seen": True}]
    config = make_config(tmp_path, sources, selection={"lookback_days": 3})
    # posts of 2026-11-20 00:00, 11-19 13:40, 11-17 22:50 and 11-16 03:20 (UTC); a first
    # ingest at 11-22 20:00 with a 3-day lookback keeps only the newest
    report = run(config, store, datetime(2026, 11, 22, 20, 0, tzinfo=UTC))["r"]
    assert (report.new, report.seen) == (1, 3)
    assert store.count_posts() == 1
    # later ingests: the seen posts stay seen (unchanged), never new
    server.overrides["/rss2.xml"] = (FIXTURES / "rss2.xml").read_bytes() + b" "
    again = run(config, store, NOW + timedelta(days=30))["r"]
    assert (again.new, again.updated, again.unchanged, again.seen) == (0, 0, 4, 0)


def test_without_mark_old_seen_everything_is_stored(
    tmp_path: Path, server: Server, store: Store
) -> None:
    config = make_config(tmp_path, [{"name": "r", "url": f"{server.base}/rss2.xml"}])
    report = run(config, store, NOW + timedelta(days=365))["r"]
    assert (report.new, report.seen) == (4, 0)


# -- pages and folders ------------------------------------------------------------------------


@pytest.mark.parametrize("listing", ["listing.html", "sitemap.xml"])
def test_page_source_follows_article_links(
    tmp_path: Path, server: Server, store: Store, listing: str
) -> None:
    config = make_config(
        tmp_path, [{"name": "p", "kind": "page", "url": f"{server.base}/{listing}"}]
    )
    report = run(config, store)["p"]
    assert (report.new, report.failed, report.problems) == (4, False, ())
    for path in ("/tags/ai", "/about", "/login", "/"):
        assert server.hits[path] == 0, path  # navigation is not followed
    post = store.get_post(f"p:{server.base}/articles/post-01-martial-law-we-have-power.html")
    assert post is not None  # identity: the canonical link
    assert post.title == "계엄, 우리에겐 힘이 있지"
    assert post.published == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # article:published_time
    assert post.author == "Haebom" and post.tags == ("사회", "정치", "인문학")
    assert post.text.startswith("개인적으로 교류하는 분 중에") and "공유" not in post.text
    for p in all_posts(store):
        assert_clean_korean(p.title + p.text)
    again = run(config, store)["p"]
    assert again.not_modified and store.count_posts() == 4


def test_folder_source(tmp_path: Path, store: Store) -> None:
    config = make_config(
        tmp_path, [{"name": "f", "kind": "folder", "url": str(FIXTURES / "folder")}]
    )
    report = run(config, store)["f"]
    assert (report.new, report.failed, report.problems) == (3, False, ())  # draft, _drafts out
    posts = {p.title: p for p in all_posts(store)}
    md = posts["계엄, 우리에겐 힘이 있지"]
    assert md.guid == "https://haebom.example/posts/post-01-martial-law-we-have-power"
    assert md.published == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    assert md.tags == ("사회", "정치", "인문학") and md.author == "Haebom"
    assert md.text.count("\n\n") == 2 and md.description.startswith("개인적으로")
    toml = posts["전문가와 비전문가 구분 짓는 것: 책임감"]
    assert toml.guid == "notes/post-02-expertise-and-responsibility.md"
    assert toml.tags == ("업무", "사회", "인문학")
    page = posts["인공지능 탑재 PC, 생산성을 높이는 도구인가?"]
    assert page.guid == "tag:haebom.example,2024:posts/post-03-ai-pc-productivity"
    assert "공유하기" not in page.text and page.tags == ("인공지능", "생산성", "제품")
    assert run(config, store)["f"].unchanged == 3


# -- the command ------------------------------------------------------------------------------


def test_ingest_command_prints_a_row_per_source_and_fails_only_if_all_fail(
    tmp_path: Path, server: Server
) -> None:
    config = tmp_path / "config.toml"
    head = (
        '[site]\nname = "T"\nurl = "https://t.example"\nsender = "T <t@t.example>"\n'
        '[store]\npath = "db.sqlite3"\n'
    )
    good = f'[[sources]]\nname = "good"\nurl = "{server.base}/rss2.xml"\n'
    bad = f'[[sources]]\nname = "bad"\nurl = "{server.base}/nope.xml"\n'
    config.write_text(head + good + bad, "utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "ingest"])
    assert result.exit_code == 0, result.output
    assert "good: 4 new, 0 updated, 0 unchanged" in result.output
    assert "bad: failed" in result.output
    assert "error: source 'bad':" in result.output and "404" in result.output
    assert "total: 4 new, 0 updated, 0 unchanged, 1 failed of 2 sources" in result.output
    result = CliRunner().invoke(main, ["--config", str(config), "ingest"])
    assert "good: 0 new, 0 updated, 0 unchanged (not modified)" in result.output

    config.write_text(head + bad, "utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "ingest"])
    assert result.exit_code == 1
    assert "every source failed" in result.output


HOME_PAGE = b"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>blog</title>
<link rel="alternate" type="application/rss+xml" title="Comments" href="/comments.xml">
<link rel="alternate" type="application/rss+xml" title="Posts" href="rss2.xml">
</head><body><h1>blog</h1></body></html>"""


def test_a_home_page_given_as_the_feed_reads_the_feed_it_announces(
    tmp_path: Path, server: Server, store: Store
) -> None:
    """A blog's home page as `url` failed with "not a valid feed: syntax error"; it now
    follows <link rel="alternate"> (posts before comments) and says so; a page that
    announces none is one clear error."""
    server.overrides["/home"] = HOME_PAGE
    server.overrides["/plain"] = b"<!doctype html><html><head></head><body>hi</body></html>"
    sources = [
        {"name": "home", "url": f"{server.base}/home", "full_text": "never"},
        {"name": "plain", "url": f"{server.base}/plain", "full_text": "never"},
    ]
    reports = run(make_config(tmp_path, sources), store)
    assert (reports["home"].new, reports["home"].failed) == (4, False)
    assert any("is a web page; read the feed it announces" in p for p in reports["home"].problems)
    assert server.hits["/rss2.xml"] == 1 and server.hits["/comments.xml"] == 0
    assert reports["plain"].failed
    assert "announces no feed" in (reports["plain"].error or "")


def _news_page(title: str, *, head: str = "", body: str = "") -> bytes:
    text = body or "<p>" + f"{title} 기사 본문입니다. 충분히 긴 문장이 이어집니다. " * 15 + "</p>"
    return (
        f'<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>{title}</title>'
        f"{head}</head><body><article><h1>{title}</h1>{text}</article></body></html>"
    ).encode()


def test_a_page_source_keeps_articles_only(tmp_path: Path, server: Server, store: Store) -> None:
    """The front page of a news site links to articles, author pages, section fronts and an
    undated "회사소개": only the articles are stored, the others are skipped with the reason."""
    dated = '<meta property="article:published_time" content="2026-11-30T09:00:00+09:00">'
    links = ["/news/1", "/news/2", "/user/7", "/section/economy", "/about"]
    server.overrides["/front"] = (
        '<!doctype html><html lang="ko"><head><title>뉴스</title></head><body><ul>'
        + "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
        + "</ul></body></html>"
    ).encode()
    server.overrides["/news/1"] = _news_page(
        "금리 동결", head='<meta property="og:type" content="article">' + dated
    )
    server.overrides["/news/2"] = _news_page(
        "반도체 수출",
        head='<script type="application/ld+json">{"@type": "NewsArticle", '
        '"datePublished": "2026-11-30T10:00:00+09:00"}</script>',
    )
    server.overrides["/user/7"] = _news_page(
        "홍길동", head='<meta property="og:type" content="profile">' + dated
    )
    server.overrides["/section/economy"] = _news_page(
        "경제", body="<ul><li><a href='/news/1'>금리 동결</a></li></ul>"
    )
    server.overrides["/about"] = _news_page("회사소개")  # long, but no date and no metadata
    source = {"name": "front", "url": f"{server.base}/front", "kind": "page", "full_text": "never"}
    reports = run(make_config(tmp_path, [source]), store)
    report = reports["front"]
    assert (report.new, report.failed) == (2, False), report
    assert sorted(p.title for p in all_posts(store)) == ["금리 동결", "반도체 수출"]
    assert report.problems == (), report.problems  # skipping a non-article is no problem
    skipped = "\n".join(report.skipped)
    assert "/user/7: not an article (a og:type profile page)" in skipped
    assert "/section/economy: not an article (no article text)" in skipped
    # "/about" is not even followed (the listing keeps links that look like articles); a
    # sitemap lists it, and it is skipped as undated.
    server.overrides["/sitemap.xml"] = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{server.base}/about</loc></url><url><loc>{server.base}/news/1</loc></url>"
        "</urlset>"
    ).encode()
    sitemap = {"name": "map", "url": f"{server.base}/sitemap.xml", "kind": "page"}
    mapped = run(make_config(tmp_path, [sitemap]), store)["map"]
    assert not mapped.failed, mapped
    assert any("/about: not an article (no publication date" in s for s in mapped.skipped)
    assert sorted(p.title for p in all_posts(store)) == ["금리 동결", "반도체 수출"]
