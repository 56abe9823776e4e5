"""Counted clicks (`[tracking] clicks`): a real send to aiosmtpd with the links rewritten in
both parts, followed through `digest serve` in-process (httpx's ASGI transport), counted per
edition and post and shown by `digest status`; bad tokens never redirect; off by default.
The open pixel (`[tracking] opens`) appears only when asked for and counts per edition."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from html import escape as html_escape
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from digest.cli import main
from digest.config import Config, load_config
from digest.errors import ConfigError
from digest.pipeline import preview_digest
from digest.store import Store, WebStore
from digest.tokens import load_secret, make_token
from digest.tracking import click_token, open_pixel, read_click_token
from digest.web.site import subscriber_app
from tests.browser.support import cli, web_config
from tests.conftest import ROOT, SMTPServer, write_config

BASE = "https://news.example/digest"
CLICKS_ON = "\n[tracking]\nclicks = true\n"
FEED = (ROOT / "samples" / "haebom" / "feed.atom").read_text("utf-8")


@dataclass
class Sent:
    path: Path
    config: Config
    store: WebStore
    secret: bytes
    messages: list[EmailMessage]

    def call(self, method: str, url: str) -> httpx.Response:
        app = subscriber_app(self.config, self.store)

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="https://news.example"
            ) as client:
                return await client.request(method, url)

        return asyncio.run(go())

    def status(self, *args: str) -> str:
        result = CliRunner().invoke(main, ["--config", str(self.path), "status", *args])
        assert result.exit_code == 0, result.output
        return result.output


def _send(tmp_path: Path, smtp_server: SMTPServer, extra: str) -> Iterator[Sent]:
    path = web_config(tmp_path, smtp_server, extra=extra)
    cli(path, "ingest")
    assert "4 message(s) sent" in cli(path, "send")
    config = load_config(path)
    store = WebStore(Store.from_config(config.store).engine)
    try:
        messages = [m.message for m in smtp_server.handler.messages]
        yield Sent(path, config, store, load_secret(config), messages)
    finally:
        store.close()


@pytest.fixture
def sent(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sent]:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    yield from _send(tmp_path, smtp_server, CLICKS_ON)


@pytest.fixture
def sent_opens(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sent]:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    yield from _send(tmp_path, smtp_server, "\n[tracking]\nopens = true\n")


@pytest.fixture
def sent_plain(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sent]:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    yield from _send(tmp_path, smtp_server, "")


def _parts(message: EmailMessage) -> tuple[str, str]:
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


def _hrefs(markup: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', markup)]


def _click_links(text: str) -> list[str]:
    return re.findall(rf"{re.escape(BASE)}/c/[A-Za-z0-9_.-]+", text)


def _feed_links() -> set[str]:
    return set(re.findall(r'<link[^>]*href="(https://haebom\.example/[^"]+)"', FEED))


def _post_of(store: Store, token_url: str, secret: bytes) -> tuple[str, str]:
    """(title, URL) of the post a counted link names."""
    target = read_click_token(secret, token_url.rsplit("/", 1)[1])
    assert target is not None
    post = store.get_post(target.post_key)
    assert post is not None
    return post.title, post.url


def _counter_rows(store: Store) -> list[tuple[str, str, int]]:
    """Every row of the clicks table: what the store keeps, all of it."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT edition, post_key, clicks FROM clicks")).all()
    return [(str(e), str(k), int(n)) for e, k, n in rows]


def _clicks_shown(status: str, title: str) -> int:
    """The clicks `digest status` shows for the post `title`."""
    found = re.findall(rf"^ +(\d+) {re.escape(title[:40])}", status, re.MULTILINE)
    assert len(found) == 1, status
    return int(found[0])


def test_links_are_counted_redirects_in_both_parts(sent: Sent) -> None:
    edition = sent.store.latest_edition()
    assert edition is not None
    carried = {row.post_key for row in sent.store.edition_clicks(edition)}
    assert carried
    for message in sent.messages:
        html, text = _parts(message)
        hrefs = _hrefs(html)
        counted = [h for h in hrefs if h.startswith(f"{BASE}/c/")]
        # Every post link goes through /c/: no post URL is left in either part.
        assert counted, hrefs
        assert not _feed_links() & set(hrefs)
        assert not any(link in text for link in _feed_links())
        assert set(_click_links(text)) == set(counted)
        # Title and "read more" of one post: the same link; one link per post carried.
        targets = {read_click_token(sent.secret, h.rsplit("/", 1)[1]) for h in counted}
        assert None not in targets
        assert {t.edition for t in targets if t} == {edition}
        assert {t.post_key for t in targets if t} <= carried
        # The reader's own links are never rewritten, and no link carries the address.
        email = str(message["To"].addresses[0].addr_spec)
        assert f"{BASE}/u/{make_token(sent.secret, 'unsubscribe', email)}" in hrefs
        assert f"{BASE}/p/{make_token(sent.secret, 'preferences', email)}" in hrefs
        assert not any(email in h or email in t.post_key for h in counted for t in targets if t)
    # Clicks on, opens off: no pixel, no image from our server at all.
    for message in sent.messages:
        images = re.findall(r'<img[^>]*src="([^"]*)"', _parts(message)[0])
        assert not any(src.startswith(BASE) for src in images)
    # Every reader gets the same link for the same post: nothing in it names the reader.
    by_post: dict[str, set[str]] = {}
    for message in sent.messages:
        for href in _hrefs(_parts(message)[0]):
            if href.startswith(f"{BASE}/c/"):
                target = read_click_token(sent.secret, href.rsplit("/", 1)[1])
                assert target is not None
                by_post.setdefault(target.post_key, set()).add(href)
    assert all(len(links) == 1 for links in by_post.values())


def test_a_click_redirects_to_the_post_and_is_counted_in_status(sent: Sent) -> None:
    html, _text = _parts(sent.messages[0])
    link = next(h for h in _hrefs(html) if h.startswith(f"{BASE}/c/"))
    title, url = _post_of(sent.store, link, sent.secret)
    path = link.removeprefix(BASE)
    assert _clicks_shown(sent.status(), title) == 0

    response = sent.call("GET", path)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location == url and location in _feed_links()  # the post's own URL, as fed
    assert _clicks_shown(sent.status(), title) == 1
    # All the store keeps of it: the edition, the post, a number.
    target = read_click_token(sent.secret, link.rsplit("/", 1)[1])
    assert target is not None
    assert _counter_rows(sent.store) == [(target.edition, target.post_key, 1)]

    # A HEAD (a link checker, a mail scanner) is answered, never counted.
    head = sent.call("HEAD", path)
    assert head.status_code == 302 and head.headers["location"] == location
    sent.call("GET", path)
    out = sent.status()
    assert "clicks (2 in all;" in out
    assert "clicks of the latest issues: #1 2\n" in out
    assert _clicks_shown(out, title) == 2
    # The other posts of the edition are listed, with none.
    others = [r for r in sent.store.edition_clicks(sent.store.latest_edition() or "")]
    assert len(others) > 1
    assert all(_clicks_shown(out, r.title) == 0 for r in others if r.title != title)


def test_the_past_issue_preview_shows_its_clicks(sent: Sent, tmp_path: Path) -> None:
    html, _text = _parts(sent.messages[0])
    link = next(h for h in _hrefs(html) if h.startswith(f"{BASE}/c/"))
    title, _url = _post_of(sent.store, link, sent.secret)
    for _ in range(3):
        assert sent.call("GET", link.removeprefix(BASE)).status_code == 302
    out = tmp_path / "issue.html"
    result = CliRunner().invoke(
        main,
        ["--config", str(sent.path), "preview", "--edition", "latest", "--output", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "clicks (3 in all;" in result.output
    assert _clicks_shown(result.output, title) == 3
    # The issue itself is shown as it went out: the counted links, no counts inside it.
    page = out.read_text("utf-8")
    assert link.replace("&", "&amp;") in page and "clicks" not in page


def _tampered(token: str) -> list[str]:
    payload, _dot, mac = token.partition(".")
    flipped = ("A" if payload[5] != "A" else "B").join((payload[:5], payload[6:]))
    return [
        f"{flipped}.{mac}",
        f"{payload}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        payload,
        f"{payload}.",
        f".{mac}",
        "not-a-token",
        "%ED%95%9C.%ED%95%9C",
        "A" * 5000,
    ]


def test_tampered_and_forged_tokens_never_redirect(sent: Sent) -> None:
    html, _text = _parts(sent.messages[0])
    link = next(h for h in _hrefs(html) if h.startswith(f"{BASE}/c/"))
    token = link.rsplit("/", 1)[1]
    for bad in _tampered(token):
        response = sent.call("GET", f"/c/{bad}")
        assert response.status_code in (400, 404), bad
        assert "location" not in response.headers
    # Signed with another secret (another installation's link, a guessed one): refused too.
    edition = sent.store.latest_edition() or ""
    key = next(iter(sent.store.edition_clicks(edition))).post_key
    forged = click_token(b"another secret entirely", edition, key)
    response = sent.call("GET", f"/c/{forged}")
    assert response.status_code == 404 and "location" not in response.headers
    # An unsubscribe token is not a click token.
    unsub = make_token(sent.secret, "unsubscribe", "jun.park@example.com")
    assert sent.call("GET", f"/c/{unsub}").status_code == 404
    # Nor is an open-pixel token, nor a click token a pixel's.
    pixel = open_pixel(BASE, sent.secret, edition).removeprefix(BASE)
    as_click = pixel.replace("/o/", "/c/").removesuffix(".gif")
    response = sent.call("GET", as_click)
    assert response.status_code == 404 and "location" not in response.headers
    assert sent.call("GET", f"/o/{token}.gif").status_code == 404
    assert "clicks (0 in all;" in sent.status()


def test_a_token_can_only_name_a_stored_post(sent: Sent) -> None:
    """A valid signature on a key that is no post gives a 404, never a redirect; a post's
    link from an edition that never went out (a preview, a test copy) still leads to the
    post but counts nowhere."""
    edition = sent.store.latest_edition() or ""
    missing = click_token(sent.secret, edition, "haebom:https://evil.example/")
    response = sent.call("GET", f"/c/{missing}")
    assert response.status_code == 404 and "location" not in response.headers
    key = next(iter(sent.store.edition_clicks(edition))).post_key
    preview = click_token(sent.secret, "20991231T000000Z-beef", key)
    response = sent.call("GET", f"/c/{preview}")
    assert response.status_code == 302
    assert sum(row.clicks for row in sent.store.edition_clicks(edition)) == 0
    assert _counter_rows(sent.store) == []


def test_the_preview_carries_the_links_a_send_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path, extra=CLICKS_ON)
    cli(path, "ingest")
    config = load_config(path)
    store = Store.from_config(config.store)
    try:
        composed = preview_digest(config, store, now=datetime.now(UTC))
    finally:
        store.close()
    assert composed is not None
    _digest, rendered = composed
    assert _click_links(rendered.text)
    assert any(h.startswith(f"{BASE}/c/") for h in _hrefs(rendered.html))
    assert not _feed_links() & set(_hrefs(rendered.html))


def test_clicks_are_off_by_default_links_unchanged_and_no_pixel(sent_plain: Sent) -> None:
    assert sent_plain.config.tracking.clicks is False
    for message in sent_plain.messages:
        html, text = _parts(message)
        hrefs = _hrefs(html)
        assert not any("/c/" in h for h in hrefs)
        assert not _click_links(text)
        posts = set(hrefs) & _feed_links()
        assert posts and all(p in text for p in posts)
        # No pixel: the only images are the posts' own, none from our server.
        images = re.findall(r'<img[^>]*src="([^"]*)"', html)
        assert not any(src.startswith(BASE) or "news.example" in src for src in images)
    assert "clicks" not in sent_plain.status()
    # A link minted while clicks were on still leads to its post, and is not counted.
    edition = sent_plain.store.latest_edition() or ""
    key = next(iter(sent_plain.store.edition_clicks(edition))).post_key
    response = sent_plain.call("GET", f"/c/{click_token(sent_plain.secret, edition, key)}")
    assert response.status_code == 302
    assert _counter_rows(sent_plain.store) == []


def test_concurrent_clicks_are_all_counted(sent: Sent) -> None:
    edition = sent.store.latest_edition() or ""
    keys = [row.post_key for row in sent.store.edition_clicks(edition)][:2]
    errors: list[BaseException] = []

    def click(key: str) -> None:
        try:
            for _ in range(15):
                assert sent.store.follow_click(edition, key) is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(keys[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    counts = {row.post_key: row.clicks for row in sent.store.edition_clicks(edition)}
    assert counts[keys[0]] == 45 and counts[keys[1]] == 45
    assert sorted(_counter_rows(sent.store)) == sorted((edition, k, 45) for k in keys)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('clicks = "yes"', "'tracking.clicks' must be true or false"),
        ("click = true", "unknown key 'tracking.click'"),
    ],
)
def test_tracking_config_errors_name_key_and_file(
    tmp_path: Path, table: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = write_config(tmp_path, extra=f"\n[tracking]\n{table}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_an_open_pixel_only_when_asked_for_counted_per_edition(sent_opens: Sent) -> None:
    pixels = set()
    for message in sent_opens.messages:
        html, text = _parts(message)
        ours = [s for s in re.findall(r'<img[^>]*src="([^"]*)"', html) if s.startswith(BASE)]
        assert len(ours) == 1 and ours[0].startswith(f"{BASE}/o/")
        assert "/o/" not in text
        pixels.update(ours)
        # Opens alone leave the post links alone.
        assert not any("/c/" in h for h in _hrefs(html))
    assert len(pixels) == 1  # the same for every reader: it cannot tell them apart
    path = pixels.pop().removeprefix(BASE)
    assert "opens 0 " in sent_opens.status()
    response = sent_opens.call("GET", path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    assert "no-store" in response.headers["cache-control"]  # every open reaches the server
    assert sent_opens.call("HEAD", path).status_code == 200
    assert "opens 1 " in sent_opens.status()
    # A tampered pixel counts nothing; the public copy in the archive carries no pixel.
    assert sent_opens.call("GET", path.replace(".", "x.", 1)).status_code == 404
    archived = sent_opens.store.archived_digests()[0]
    page = sent_opens.call("GET", f"/archive/d/{archived.id}").text
    assert archived.edition == sent_opens.store.latest_edition()
    assert "/o/" not in page and "<img" not in page
    # The pixel of an edition never recorded (a preview, a test copy) counts nowhere.
    unsent = open_pixel(BASE, sent_opens.secret, "20991231T000000Z-beef").removeprefix(BASE)
    assert sent_opens.call("GET", unsent).status_code == 200
    assert sent_opens.store.edition_opens("20991231T000000Z-beef") == 0
    assert "opens 1 " in sent_opens.status()


def _preview_index(sent: Sent) -> str:
    from digest.web.preview import editor_app

    app = editor_app(sent.path, sent.store)

    async def go() -> str:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.get("/")
            assert response.status_code == 200, response.text
            return response.text

    return asyncio.run(go())


def test_the_preview_index_shows_the_latest_issues_clicks(sent: Sent) -> None:
    """`digest preview` (the editor's app) lists the latest issue's posts with their clicks
    and the latest issues' totals, in the site's language."""
    html, _text = _parts(sent.messages[0])
    link = next(h for h in _hrefs(html) if h.startswith(f"{BASE}/c/"))
    title, _url = _post_of(sent.store, link, sent.secret)
    for _ in range(2):
        assert sent.call("GET", link.removeprefix(BASE)).status_code == 302
    page = _preview_index(sent)
    assert '<h2 id="clicks">클릭: 1호</h2>' in page
    row = re.search(rf">{re.escape(html_escape(title))}</a></td><td>(\d+)</td>", page)
    assert row and row.group(1) == "2", page[page.find('id="clicks"') :][:2000]
    assert "최근 호의 클릭 합계: 1호 2" in page


def test_the_preview_index_shows_no_clicks_when_none_are_counted(sent_plain: Sent) -> None:
    assert 'id="clicks"' not in _preview_index(sent_plain)
