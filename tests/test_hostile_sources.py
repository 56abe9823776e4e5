"""Hostile sources (issue 19): what a stranger's feed, page or folder must not make digest do.

Fetch only what the source may (http(s) on its own site, no local file, no internal address),
never crash the run (each source's failure is one line and the others go in), and stay within
memory and time bounds (a gzip bomb, a YAML alias bomb, a server that drips bytes, a 200,000
character word). A local HTTP server on 127.0.0.1 plays the stranger's site; another on
127.0.0.2 plays an internal host holding a secret.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from digest.cli import main
from digest.config import Config, SummaryConfig, parse_config
from digest.errors import SourceError
from digest.ingest import SourceReport, ingest_all
from digest.sources import fetch as fetch_module
from digest.sources.feed import read_feed
from digest.sources.fetch import Fetcher, Limits
from digest.sources.folder import read_folder
from digest.store import Store
from digest.summarize import summarize
from digest.text.sentences import split_spans

HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile"
SECRET = "SECRET-hunter2-SECRET"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def article(title: str, word: str = "") -> bytes:
    html = (HOSTILE / "article.html").read_text("utf-8")
    return html.replace("{{TITLE}}", title).replace("{{WORD}}", word).encode()


def rss(items: list[dict[str, str]], *, raw_title: str = "") -> bytes:
    """An RSS 2.0 feed; `raw_title` goes into the first item's title unescaped."""
    entries = []
    for index, item in enumerate(items):
        title = raw_title if index == 0 and raw_title else item.get("title", f"Post {index}")
        entries.append(
            f"<item><title>{title}</title><link>{item['link']}</link>"
            f"<guid>{item['link']}</guid><pubDate>Fri, 20 Nov 2026 0{index % 10}:00:00 +0000"
            f"</pubDate><description>{item.get('description', 'A short teaser.')}"
            "</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<link>http://example.invalid/</link>{''.join(entries)}</channel></rss>"
    ).encode()


def sitemap(urls: list[str], *, index: bool = False) -> bytes:
    tag, child = ("sitemapindex", "sitemap") if index else ("urlset", "url")
    body = "".join(f"<{child}><loc>{u}</loc></{child}>" for u in urls)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<{tag} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</{tag}>'
    ).encode()


GOOD_FEED = rss([{"link": "http://example.invalid/good", "title": "A good post"}])


# -- servers ----------------------------------------------------------------------------------

Route = tuple[int, dict[str, str], bytes] | Callable[[http.server.BaseHTTPRequestHandler], None]


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a dripping response must not hold the teardown
    base = ""
    routes: dict[str, Route]
    hits: Counter[str]
    stop: threading.Event


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.server.hits[path] += 1
        route = self.server.routes.get(path)
        if route is None:
            route = (404, {"Content-Type": "text/plain"}, b"not found")
        if callable(route):
            route(self)
            return
        status, headers, body = route
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _serve(host: str) -> Iterator[Server]:
    srv = Server((host, 0), Handler)
    srv.base = f"http://{host}:{srv.server_address[1]}"
    srv.routes, srv.hits, srv.stop = {}, Counter(), threading.Event()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def site() -> Iterator[Server]:
    """The stranger's site, on 127.0.0.1 (a loopback source: its own host is reachable)."""
    yield from _serve("127.0.0.1")


@pytest.fixture
def internal() -> Iterator[Server]:
    """An internal host with a secret page, on 127.0.0.2 (another host, also loopback)."""
    for srv in _serve("127.0.0.2"):
        srv.routes["/secret"] = (200, {"Content-Type": "text/html"}, _secret())
        yield srv


def _secret() -> bytes:
    return (HOSTILE / "secret.html").read_bytes()


def html_page(body: bytes) -> Route:
    return (200, {"Content-Type": "text/html; charset=utf-8"}, body)


def xml(body: bytes, content_type: str = "application/rss+xml") -> Route:
    return (200, {"Content-Type": content_type}, body)


def redirect(location: str, status: int = 302) -> Route:
    return (status, {"Location": location}, b"")


# -- running ----------------------------------------------------------------------------------

HEAD = (
    '[site]\nname = "T"\nurl = "https://t.example"\nsender = "T <t@t.example>"\n'
    '[store]\npath = "db.sqlite3"\n'
)


def toml_source(**fields: Any) -> str:
    lines = ["[[sources]]"] + [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def cli_ingest(tmp_path: Path, *sources: dict[str, Any]) -> Result:
    config = tmp_path / "config.toml"
    config.write_text(HEAD + "".join(toml_source(**s) for s in sources), "utf-8")
    return CliRunner().invoke(main, ["--config", str(config), "ingest"])


def stored(tmp_path: Path) -> list[Any]:
    store = Store.open(tmp_path / "db.sqlite3")
    try:
        return store.posts_since(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    finally:
        store.close()


def assert_no_secret(tmp_path: Path) -> None:
    for post in stored(tmp_path):
        for value in (post.title, post.text, post.description, post.url, post.guid):
            assert SECRET not in value, (post.key, value[:200])


def assert_run_survived(result: Result, bad: str, reason: str) -> None:
    """The run ended normally, `bad` failed with one line naming `reason`, `good` came in."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 0, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith(f"error: source {bad!r}: ") and reason in errors[0], errors[0]
    assert f"{bad}: failed" in result.output
    assert "good: 1 new" in result.output, result.output


def make_config(tmp_path: Path, sources: list[dict[str, Any]]) -> Config:
    data = {
        "site": {"name": "Test", "url": "https://example.com", "sender": "T <t@example.com>"},
        "store": {"path": "db.sqlite3"},
        "sources": sources,
    }
    return parse_config(data, tmp_path / "config.toml")


def allow(config: Config, name: str, hosts: tuple[str, ...]) -> Config:
    """`allow_hosts` on one source. The config file does not take the key yet (it is another
    module's to add); the fetch rule reads it with getattr, so it is set on the object here."""
    for source in config.sources:
        if source.name == name:
            object.__setattr__(source, "allow_hosts", hosts)
    return config


def run(config: Config, tmp_path: Path) -> dict[str, SourceReport]:
    store = Store.open(tmp_path / "db.sqlite3")
    try:
        fetcher = Fetcher(backoff=0.01)
        reports = asyncio.run(ingest_all(config, store, NOW, fetcher=fetcher))
    finally:
        store.close()
    return {r.name: r for r in reports}


# -- 1. fetching what it must not -------------------------------------------------------------


def test_sitemap_listing_local_files_reads_none_of_them(tmp_path: Path, site: Server) -> None:
    secret = tmp_path / "secret.html"
    secret.write_bytes(_secret())
    site.routes["/article"] = html_page(article("An ordinary article"))
    listed = [f"file://{secret}", str(secret), f"{site.base}/article"]
    site.routes["/sitemap.xml"] = xml(sitemap(listed), "application/xml")
    result = cli_ingest(tmp_path, {"name": "p", "kind": "page", "url": f"{site.base}/sitemap.xml"})
    assert result.exit_code == 0, result.output
    assert "p: 1 new" in result.output, result.output
    assert_no_secret(tmp_path)
    # the file:// entry is refused; the bare path is relative to the sitemap's URL (a 404)
    assert "unsupported URL scheme in 'file://" in result.output, result.output


def test_sitemap_index_pointing_at_a_local_sitemap_is_refused(tmp_path: Path, site: Server) -> None:
    secret = tmp_path / "secret.html"
    secret.write_bytes(_secret())
    local_map = tmp_path / "local-sitemap.xml"
    local_map.write_bytes(sitemap([f"file://{secret}"]))
    site.routes["/article"] = html_page(article("An ordinary article"))
    site.routes["/remote-sitemap.xml"] = xml(sitemap([f"{site.base}/article"]), "application/xml")
    index = sitemap([f"file://{local_map}", f"{site.base}/remote-sitemap.xml"], index=True)
    site.routes["/index.xml"] = xml(index, "application/xml")
    result = cli_ingest(tmp_path, {"name": "p", "kind": "page", "url": f"{site.base}/index.xml"})
    assert result.exit_code == 0, result.output
    assert "p: 1 new" in result.output, result.output
    assert "unsupported URL scheme" in result.output
    assert_no_secret(tmp_path)


def test_sitemap_entry_on_another_host_is_not_fetched(
    tmp_path: Path, site: Server, internal: Server
) -> None:
    site.routes["/article"] = html_page(article("An ordinary article"))
    listed = [f"{internal.base}/secret", f"{site.base}/article"]
    site.routes["/sitemap.xml"] = xml(sitemap(listed), "application/xml")
    result = cli_ingest(tmp_path, {"name": "p", "kind": "page", "url": f"{site.base}/sitemap.xml"})
    assert "p: 1 new" in result.output, result.output
    assert "not on the source's own site" in result.output
    assert internal.hits["/secret"] == 0
    assert_no_secret(tmp_path)


def test_teaser_link_to_another_host_is_not_fetched(
    tmp_path: Path, site: Server, internal: Server
) -> None:
    links = [f"{internal.base}/secret", f"http://localhost:{internal.server_address[1]}/secret"]
    site.routes["/feed.xml"] = xml(rss([{"link": link} for link in links]))
    for full_text in ("auto", "always"):
        result = cli_ingest(
            tmp_path, {"name": "f", "url": f"{site.base}/feed.xml", "full_text": full_text}
        )
        assert result.exit_code == 0, result.output
    assert internal.hits["/secret"] == 0
    assert_no_secret(tmp_path)
    assert "not on the source's own site" in result.output  # "always" says why it did not


def test_redirect_to_another_host_is_refused_at_every_hop(
    tmp_path: Path, site: Server, internal: Server
) -> None:
    # the feed itself, an article page and a sitemap entry each redirect (after one hop on
    # the site) to the internal host
    site.routes["/hop"] = redirect(f"{internal.base}/secret")
    site.routes["/feed.xml"] = redirect("/hop", 301)
    site.routes["/teasers.xml"] = xml(rss([{"link": f"{site.base}/hop"}]))
    site.routes["/sitemap.xml"] = xml(sitemap([f"{site.base}/hop"]), "application/xml")
    sources = [
        {"name": "feed", "url": f"{site.base}/feed.xml"},
        {"name": "teasers", "url": f"{site.base}/teasers.xml", "full_text": "always"},
        {"name": "page", "kind": "page", "url": f"{site.base}/sitemap.xml"},
    ]
    reports = run(make_config(tmp_path, sources), tmp_path)
    assert internal.hits["/secret"] == 0
    assert site.hits["/hop"] == 3
    assert reports["feed"].failed and "not on the source's own site" in reports["feed"].error
    assert "a redirect's target" in reports["feed"].error
    assert not reports["teasers"].failed and reports["teasers"].new == 1
    assert "not on the source's own site" in reports["teasers"].problems[0]
    assert reports["page"].failed and "not on the source's own site" in reports["page"].error
    assert_no_secret(tmp_path)


def test_allow_hosts_adds_a_host(tmp_path: Path, site: Server, internal: Server) -> None:
    internal.routes["/article"] = html_page(article("An article on a partner host"))
    site.routes["/feed.xml"] = xml(rss([{"link": f"{internal.base}/article"}]))
    sources = [{"name": "f", "url": f"{site.base}/feed.xml", "full_text": "always"}]
    config = allow(make_config(tmp_path, sources), "f", ("127.0.0.2",))
    report = run(config, tmp_path)["f"]
    assert (report.new, report.problems) == (1, ())
    assert internal.hits["/article"] == 1
    assert "first paragraph of an ordinary article" in stored(tmp_path)[0].text


def test_loopback_is_refused_for_a_source_that_is_not_on_loopback(
    tmp_path: Path, internal: Server
) -> None:
    # A feed file on disk is on no network: even a host its allow_hosts names may not be on
    # a loopback (or private, or link-local) address.
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([{"link": f"{internal.base}/secret"}]))
    sources = [{"name": "f", "url": str(feed), "full_text": "always"}]
    config = allow(make_config(tmp_path, sources), "f", ("127.0.0.2",))
    report = run(config, tmp_path)["f"]
    assert report.new == 1 and len(report.problems) == 1
    assert "loopback address (127.0.0.2)" in report.problems[0]
    assert internal.hits["/secret"] == 0
    assert_no_secret(tmp_path)


def test_link_local_and_private_addresses_are_refused_even_when_allowed_by_name(
    tmp_path: Path, site: Server
) -> None:
    # The source is on loopback, so loopback is allowed, but not another kind of address.
    site.routes["/meta"] = redirect("http://169.254.169.254/latest/meta-data/")
    site.routes["/lan"] = redirect("http://10.0.0.1/admin")
    site.routes["/feed.xml"] = xml(
        rss([{"link": f"{site.base}/meta"}, {"link": f"{site.base}/lan"}])
    )
    sources = [{"name": "f", "url": f"{site.base}/feed.xml", "full_text": "always"}]
    config = allow(make_config(tmp_path, sources), "f", ("169.254.169.254", "10.0.0.1"))
    started = time.monotonic()
    report = run(config, tmp_path)["f"]
    assert time.monotonic() - started < 5  # refused before any connection is tried
    problems = " | ".join(report.problems)
    assert "link-local address (169.254.169.254)" in problems, problems
    assert "private address (10.0.0.1)" in problems, problems


def test_an_address_that_changes_after_the_check_is_refused_when_connecting(
    internal: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: the name looked public when checked and points inward when connecting.
    async def looked_public(*args: object) -> None:
        return None

    monkeypatch.setattr(fetch_module, "_check_addresses", looked_public)
    site = fetch_module.Site("https://news.example/feed.xml", ("localhost",))
    url = f"http://localhost:{internal.server_address[1]}/secret"

    async def go() -> None:
        async with Fetcher() as fetcher:
            await fetcher.get("s", url, Limits(timeout=5, retries=0), site=site)

    with pytest.raises(SourceError, match="refused a connection to localhost: a loopback"):
        asyncio.run(go())
    assert internal.hits["/secret"] == 0


def test_site_rule() -> None:
    blog = fetch_module.Site("https://blog.example.com/feed.xml")
    assert blog.allows_host("blog.example.com") and blog.allows_host("www.example.com")
    assert blog.allows_host("example.com")
    assert not blog.allows_host("example.org") and not blog.allows_host("evil-example.com")
    assert not fetch_module.Site("https://alice.github.io/feed").allows_host("bob.github.io")
    assert not fetch_module.Site("https://a.example.co.uk/").allows_host("b.other.co.uk")
    assert fetch_module.Site("https://a.example.co.uk/").allows_host("b.example.co.uk")
    assert not fetch_module.Site("http://127.0.0.1:8000/").allows_host("127.0.0.2")
    assert not fetch_module.Site("http://localhost/").allows_host("other.localhost")
    extra = fetch_module.Site("https://example.com/", ("CDN.Example.NET", "*.partner.org"))
    assert extra.allows_host("cdn.example.net") and extra.allows_host("img.cdn.example.net")
    assert extra.allows_host("a.partner.org") and not extra.allows_host("example.net")
    local = fetch_module.Site("/srv/feeds/feed.xml")
    assert local.refusal("/srv/feeds/feed.xml") == ""
    assert "unsupported URL scheme" in local.refusal("/etc/passwd")
    assert "unsupported URL scheme" in local.refusal("file:///etc/passwd")
    assert "not on the source's own site" in local.refusal("https://example.com/")
    assert "unsupported URL scheme" in blog.refusal("ftp://blog.example.com/x")
    assert "unsupported URL scheme" in blog.refusal("gopher://blog.example.com/x")


# -- 2. one bad source never sinks the run ----------------------------------------------------


def _deep_json() -> bytes:
    depth = 100_000
    return (
        '{"version": "https://jsonfeed.org/version/1.1", "title": "deep", "items": ['
        + "[" * depth
        + "]" * depth
        + "]}"
    ).encode()


def _surrogate_json() -> bytes:
    item = {
        "id": "1",
        "url": "http://example.invalid/1",
        "title": "Lone surrogate: \\ud800 here",
        "content_text": "Text with a lone low surrogate \\udfff and a pair \\ud83d\\ude00.",
        "date_published": "2026-11-20T00:00:00Z",
        "tags": ["tag\\udc00"],
    }
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "s", "items": []})
    # json.dumps would escape the backslashes: the escapes go in by hand
    raw = json.dumps(item).replace("\\\\u", "\\u")
    return body.replace('"items": []', f'"items": [{raw}]').encode()


def _charref_xml() -> bytes:
    return rss(
        [{"link": "http://example.invalid/1", "description": "text &#xD800; and &#55296;"}],
        raw_title="Char refs &#xD800;&#xDC00; &#x110000; &#99999999999; end",
    )


@pytest.mark.parametrize(
    ("case", "route", "reason"),
    [
        ("deep-json", xml(_deep_json(), "application/feed+json"), "nested too deeply"),
        ("javascript-redirect", redirect("javascript:alert(document.cookie)"), "redirect"),
        ("data-redirect", redirect("data:text/html,<p>x</p>"), "redirect"),
        ("file-redirect", redirect("file:///etc/passwd"), "unsupported URL scheme"),
        ("bad-host-redirect", redirect("http://[::1/x"), "redirect"),
    ],
)
def test_a_source_that_breaks_is_one_line_and_the_others_go_in(
    tmp_path: Path, site: Server, case: str, route: Route, reason: str
) -> None:
    site.routes["/bad"] = route
    site.routes["/good.xml"] = xml(GOOD_FEED)
    result = cli_ingest(
        tmp_path,
        {"name": case, "url": f"{site.base}/bad", "full_text": "never"},
        {"name": "good", "url": f"{site.base}/good.xml", "full_text": "never"},
    )
    assert_run_survived(result, case, reason)


@pytest.mark.parametrize(
    ("case", "route", "content_type"),
    [
        ("json-surrogates", _surrogate_json(), "application/feed+json"),
        ("xml-charrefs", _charref_xml(), "application/rss+xml"),
    ],
)
def test_lone_surrogates_are_replaced_and_stored(
    tmp_path: Path, site: Server, case: str, route: bytes, content_type: str
) -> None:
    site.routes["/bad"] = xml(route, content_type)
    site.routes["/good.xml"] = xml(GOOD_FEED)
    result = cli_ingest(
        tmp_path,
        {"name": case, "url": f"{site.base}/bad", "full_text": "never"},
        {"name": "good", "url": f"{site.base}/good.xml", "full_text": "never"},
    )
    assert "Traceback" not in result.output and result.exit_code == 0, result.output
    assert f"{case}: 1 new" in result.output and "good: 1 new" in result.output, result.output
    post = next(p for p in stored(tmp_path) if p.source == case)
    for value in (post.title, post.text, post.description, *post.tags):
        value.encode("utf-8")  # no lone surrogate is left
    assert "\ufffd" in post.title
    if case == "json-surrogates":
        assert "\U0001f600" in post.text and post.tags == ("tag\ufffd",)


def test_deep_json_ld_in_an_article_page_is_one_problem(tmp_path: Path, site: Server) -> None:
    page = article("Deep JSON-LD").replace(
        b"</head>",
        b'<script type="application/ld+json">' + b"[" * 100_000 + b"]" * 100_000 + b"</script>"
        b"</head>",
    )
    site.routes["/a"] = html_page(page)
    site.routes["/feed.xml"] = xml(rss([{"link": f"{site.base}/a"}]))
    report = run(make_config(tmp_path, [{"name": "f", "url": f"{site.base}/feed.xml"}]), tmp_path)
    assert not report["f"].failed and report["f"].new == 1, report["f"]


def _folder_with(tmp_path: Path, name: str, text: str) -> Any:
    folder = tmp_path / "posts"
    folder.mkdir()
    (folder / name).write_text(text, "utf-8")
    (folder / "2026-11-20-fine.md").write_text("---\ntitle: Fine\n---\nAn ordinary post.\n")
    config = make_config(tmp_path, [{"name": "f", "kind": "folder", "url": str(folder)}])
    started = time.monotonic()
    result = read_folder(config.sources[0])
    assert time.monotonic() - started < 5
    assert [p.title for p in result.posts] == ["Fine"]
    assert len(result.problems) == 1 and "\n" not in result.problems[0], result.problems
    assert name in result.problems[0]
    return result.problems[0]


def test_front_matter_alias_bomb_is_one_problem_for_that_post(tmp_path: Path) -> None:
    levels = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcde", "bcdef", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    bomb = "---\ntitle: Bomb\n" + "\n".join(levels) + "\ntags: *f\nauthor: *f\n---\nBody.\n"
    assert len(bomb) < 600
    problem = _folder_with(tmp_path, "2026-11-20-bomb.md", bomb)
    assert "aliases" in problem, problem


def test_front_matter_nested_thousands_deep_is_one_problem_for_that_post(tmp_path: Path) -> None:
    deep = "---\ntitle: Deep\ntags: " + "[" * 50_000 + "]" * 50_000 + "\n---\nBody.\n"
    problem = _folder_with(tmp_path, "2026-11-20-deep.md", deep)
    assert "nested too deeply" in problem, problem


# -- 3. resource exhaustion -------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _gzip_bomb(decoded: int = 200 * 1024 * 1024) -> bytes:
    """`decoded` zero bytes, gzip-encoded twice (a few hundred bytes on the wire)."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1024 * 1024)
    once = b"".join(inner.compress(block) for _ in range(decoded // len(block))) + inner.flush()
    outer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return outer.compress(once) + outer.flush()


_BOMB_RUN = """
import json, sys, time
from click.testing import CliRunner
import digest.ingest, digest.sources.feed  # noqa: F401 - imported before the baseline
from digest.cli import main

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
# A first ingest of another good feed loads what preparing a post needs (the summarizer,
# the language models) before the baseline: the measure is the bomb's alone.
warm = CliRunner().invoke(main, ["--config", sys.argv[2], "ingest"])
assert warm.exit_code == 0 and "warm: 1 new" in warm.output, warm.output
before = hwm()
started = time.monotonic()
result = CliRunner().invoke(main, ["--config", sys.argv[1], "ingest"])
print(json.dumps({"before": before, "after": hwm(), "seconds": time.monotonic() - started,
                  "output": result.output, "exit": result.exit_code}))
"""


@pytest.mark.slow
def test_gzip_bomb_stops_at_the_size_limit_on_decoded_bytes(tmp_path: Path, site: Server) -> None:
    bomb = _gzip_bomb()
    assert len(bomb) < 4096
    site.routes["/bomb.xml"] = (
        200,
        {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip, gzip"},
        bomb,
    )
    site.routes["/good.xml"] = xml(GOOD_FEED)
    config = tmp_path / "config.toml"
    sources = [
        {"name": "bomb", "url": f"{site.base}/bomb.xml", "max_bytes": 1_000_000, "retries": 0},
        {"name": "good", "url": f"{site.base}/good.xml", "full_text": "never"},
    ]
    config.write_text(HEAD + "".join(toml_source(**s) for s in sources), "utf-8")
    site.routes["/warm.xml"] = xml(
        rss([{"link": "http://example.invalid/warm", "title": "A first good post"}])
    )
    warm = tmp_path / "warm.toml"
    warm_source = {"name": "warm", "url": f"{site.base}/warm.xml", "full_text": "never"}
    warm.write_text(HEAD + toml_source(**warm_source), "utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _BOMB_RUN, str(config), str(warm)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error: source 'bomb':" in out["output"], out["output"]
    assert "larger than 1000000 bytes" in out["output"], out["output"]
    assert "good: 1 new" in out["output"], out["output"]
    grown = (out["after"] - out["before"]) / 1024 / 1024
    assert grown < 50, f"peak RSS grew by {grown:.0f} MB"
    assert out["seconds"] < 10, out


def test_double_gzip_within_the_limit_is_decoded(tmp_path: Path, site: Server) -> None:
    feed = rss([{"link": "http://example.invalid/z", "title": "Zipped twice"}])
    twice = zlib.compressobj(6, zlib.DEFLATED, 31)
    inner = zlib.compressobj(6, zlib.DEFLATED, 31)
    once = inner.compress(feed) + inner.flush()
    site.routes["/z.xml"] = (
        200,
        {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip, gzip"},
        twice.compress(once) + twice.flush(),
    )
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    site.routes["/d.xml"] = (
        200,
        {"Content-Type": "application/rss+xml", "Content-Encoding": "deflate"},
        raw_deflate.compress(feed) + raw_deflate.flush(),
    )
    sources = [
        {"name": "z", "url": f"{site.base}/z.xml", "full_text": "never"},
        {"name": "d", "url": f"{site.base}/d.xml", "full_text": "never"},
    ]
    reports = run(make_config(tmp_path, sources), tmp_path)
    assert (reports["z"].new, reports["d"].new) == (1, 1), reports


def _drip(server: Server) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def handle(handler: http.server.BaseHTTPRequestHandler) -> None:
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html; charset=utf-8")
            handler.end_headers()
            for _ in range(1200):  # a byte every 0.1 s, for two minutes
                if server.stop.wait(0.1):
                    return
                handler.wfile.write(b" ")
        except (BrokenPipeError, ConnectionResetError):
            pass

    return handle


def test_a_dripping_page_is_cut_at_the_timeout(site: Server) -> None:
    site.routes["/drip"] = _drip(site)

    async def go() -> None:
        async with Fetcher(backoff=0.01) as fetcher:
            await fetcher.get("s", f"{site.base}/drip", Limits(timeout=1, retries=2))

    started = time.monotonic()
    with pytest.raises(SourceError, match="no complete response within 1s"):
        asyncio.run(go())
    assert time.monotonic() - started < 2.5  # one deadline: a drip is not retried
    assert site.hits["/drip"] == 1


@pytest.mark.slow
def test_ten_dripping_article_pages_are_bounded_by_the_timeout(
    tmp_path: Path, site: Server
) -> None:
    for i in range(10):
        site.routes[f"/drip/{i}"] = _drip(site)
    site.routes["/teasers.xml"] = xml(rss([{"link": f"{site.base}/drip/{i}"} for i in range(10)]))
    started = time.monotonic()
    result = cli_ingest(tmp_path, {"name": "t", "url": f"{site.base}/teasers.xml", "timeout": 1})
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "t: 10 new" in result.output, result.output  # the teasers are kept
    assert result.output.count("timed out") == 10, result.output
    # ten pages, two at a time, one second each: five seconds, not ten retried minutes
    assert elapsed < 15, f"{elapsed:.1f}s"


# -- 4. a 200,000-character word --------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_200000_character_word_is_read_in_linear_time() -> None:
    word = "a" * 200_000
    feed = rss(
        [{"link": "http://example.invalid/w", "description": f"&lt;p&gt;Intro. {word}&lt;/p&gt;"}]
    )
    config = make_config(Path("/nonexistent"), [{"name": "w", "url": "http://example.invalid/"}])
    started = time.monotonic()
    result = read_feed(config.sources[0], feed)
    assert time.monotonic() - started < 5
    assert word in result.posts[0].text


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "filler",
    [
        pytest.param("." * 200_000, id="200k dots"),
        pytest.param("가" * 200_000, id="200k-syllable Hangul word"),
        pytest.param("a. " * 20_000, id="60k of 'a. a. a.'"),
        pytest.param("오늘은 날씨가 좋습니다. " * 15_000, id="200k of Korean sentences, one line"),
    ],
)
def test_hostile_bodies_are_summarized_in_bounded_time(filler: str) -> None:
    """Both splitters cost more than linear time on long blocks (Kiwi took 8 s on 20,000
    Hangul syllables without a space, pysbd minutes on long runs of dots): the splitter feeds
    them bounded pieces, and a run with no whitespace is never summary material."""
    lead = "디지털 전환이 빨라지고 있다. 기업들은 인공지능 도입을 서두르고 있다."
    text = f"{lead} {filler} 전문가들은 신중한 접근을 권한다."
    config = SummaryConfig()
    summarize(lead, title="디지털 전환", config=config)  # Kiwi's load is not the text's cost
    started = time.monotonic()
    summary = summarize(text, title="디지털 전환", config=config)
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"{elapsed:.1f}s"
    assert summary.sentences
    assert all(len(s) < 2_000 for s in summary.sentences), [len(s) for s in summary.sentences]
    spans = split_spans(text)
    assert "".join(text[s.start : s.end] for s in spans).replace(" ", "") == text.replace(" ", "")
