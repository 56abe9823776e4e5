"""`digest serve` in-process (httpx's ASGI transport): one-click unsubscribe, the confirmation
page, preferences, the archive and feeds, bad tokens, wrong methods and the security defaults."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.config import Config, load_config
from digest.pipeline import plan_edition
from digest.store import Store, StoredSubscriber, WebStore
from digest.tokens import load_secret, make_token
from digest.web.site import subscriber_app
from tests.browser.support import cli, web_config
from tests.conftest import SMTPServer

JUN = "jun.park@example.com"
MINJI = "minji.kim@example.com"
ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass
class Site:
    config: Config
    store: WebStore
    secret: bytes
    path: Path

    def token(self, purpose: str, email: str) -> str:
        return make_token(self.secret, purpose, email)

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        app = subscriber_app(self.config, self.store)

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="https://news.example"
            ) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def csrf(self, url: str) -> str:
        page = self.call("GET", url).text
        marker = 'name="csrf" value="'
        return page[page.index(marker) + len(marker) :].split('"', 1)[0]

    def active(self) -> set[str]:
        return {s.email for s in self.store.subscribers(active_only=True)}


def open_site(path: Path) -> Iterator[Site]:
    config = load_config(path)
    store = WebStore(Store.from_config(config.store).engine)
    try:
        yield Site(config, store, load_secret(config), path)
    finally:
        store.close()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    yield from open_site(web_config(tmp_path))


@pytest.fixture
def sent_site(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    """After one real send: the archive has an edition."""
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path, smtp_server)
    cli(path, "ingest")
    assert "4 message(s) sent" in cli(path, "send")
    yield from open_site(path)


# -- unsubscribe ------------------------------------------------------------------------------


def test_get_only_asks_for_confirmation(site: Site) -> None:
    response = site.call("GET", f"/u/{site.token('unsubscribe', JUN)}")
    assert response.status_code == 200
    assert JUN in response.text and 'method="post"' in response.text
    assert 'name="csrf"' in response.text
    assert JUN in site.active()  # a link scanner's GET unsubscribes nobody
    head = site.call("HEAD", f"/u/{site.token('unsubscribe', JUN)}")
    assert head.status_code == 200 and JUN in site.active()


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_at_once(site: Site, encoding: str) -> None:
    url = f"/u/{site.token('unsubscribe', JUN)}"
    body = {"List-Unsubscribe": "One-Click"}
    if encoding == "urlencoded":
        response = site.call("POST", url, data=body)
    else:
        response = site.call("POST", url, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200 and "location" not in response.headers
    assert site.store.suppressed() == {JUN: "unsubscribed"}
    assert JUN not in site.active()
    # Durable: re-importing the list does not bring the address back, and no plan includes it.
    site.store.upsert_subscribers([StoredSubscriber(JUN, "박준", ("ai",), "ko", "active")])
    assert JUN not in site.active()
    edition = plan_edition(site.config, site.store, now=_now())
    assert JUN not in {s.email for v in edition.variants for s in v.recipients}


def test_confirmation_button_unsubscribes_with_a_valid_form_token(site: Site) -> None:
    url = f"/u/{site.token('unsubscribe', JUN)}"
    assert site.call("POST", url, data={"csrf": "1.forged"}).status_code == 403
    assert site.call("POST", url, data={}).status_code == 403
    assert JUN in site.active()
    token = site.csrf(url)
    cross = site.call("POST", url, data={"csrf": token}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403 and JUN in site.active()
    other = f"/u/{site.token('unsubscribe', MINJI)}"  # a form token is bound to its page
    assert site.call("POST", other, data={"csrf": token}).status_code == 403
    done = site.call("POST", url, data={"csrf": token}, headers={"Origin": "https://news.example"})
    assert done.status_code == 200 and JUN in done.text
    assert site.store.suppression(JUN) == "unsubscribed"
    again = site.call("GET", url)
    assert again.status_code == 200 and "/p/" in again.text  # "already": offers preferences


def _tampered(token: str) -> str:
    head, mac = token.split(".")
    return f"{head}.{('A' if mac[0] != 'A' else 'B')}{mac[1:]}"


def test_bad_tokens_get_a_4xx_page_and_change_nothing(site: Site) -> None:
    jun_mac = site.token("unsubscribe", JUN).split(".")[1]
    minji_head = site.token("unsubscribe", MINJI).split(".")[0]
    bad = [
        "nonsense",
        "a.b",
        _tampered(site.token("unsubscribe", JUN)),
        site.token("preferences", JUN),  # right address, other purpose
        f"{minji_head}.{jun_mac}",  # one address's MAC on another address
        make_token(b"another-secret", "unsubscribe", JUN),
        "x" * 5000,
    ]
    for token in bad:
        for method, kwargs in [
            ("GET", {}),
            ("POST", {"data": {"List-Unsubscribe": "One-Click"}}),
        ]:
            response = site.call(method, f"/u/{token}", **kwargs)
            assert response.status_code == 404, (token, method)
            assert "<html" in response.text and "Traceback" not in response.text
        if token != site.token("preferences", JUN):
            assert site.call("GET", f"/p/{token}").status_code == 404
    wrong_purpose = site.call("GET", f"/p/{site.token('unsubscribe', JUN)}")
    assert wrong_purpose.status_code == 404
    assert site.store.suppressed() == {}
    assert site.active() == {JUN, MINJI, "seoyeon.lee@example.com", "alex.morgan@example.org"}


def test_wrong_methods_get_405(site: Site) -> None:
    token = site.token("unsubscribe", JUN)
    for method, url in [
        ("PUT", f"/u/{token}"),
        ("DELETE", f"/u/{token}"),
        ("PATCH", f"/p/{site.token('preferences', JUN)}"),
        ("POST", "/archive"),
        ("POST", "/archive/feed.atom"),
        ("POST", "/"),
        ("POST", "/unsubscribe"),
    ]:
        response = site.call(method, url)
        assert response.status_code == 405, (method, url)
        assert "GET" in response.headers["allow"]
    assert site.store.suppressed() == {}


# -- preferences ------------------------------------------------------------------------------


def test_preferences_are_saved_at_once(site: Site) -> None:
    url = f"/p/{site.token('preferences', MINJI)}"
    page = site.call("GET", url)
    assert page.status_code == 200
    assert 'value="ai"' in page.text and "인공지능" in page.text and 'value="paused"' in page.text
    token = site.csrf(url)
    saved = site.call(
        "POST",
        url,
        data={"csrf": token, "action": "save", "theme": ["work", "ai"], "status": "active"},
    )
    assert saved.status_code == 200 and "저장되었습니다" in saved.text
    sub = site.store.subscriber(MINJI)
    assert sub is not None and sub.themes == ("ai", "work") and sub.status == "active"
    edition = plan_edition(site.config, site.store, now=_now())
    keys = {s.email: v.key for v in edition.variants for s in v.recipients}
    assert keys.get(MINJI, "ai,work") == "ai,work"

    paused = site.call("POST", url, data={"csrf": token, "action": "save", "status": "paused"})
    assert paused.status_code == 200
    sub = site.store.subscriber(MINJI)
    assert sub is not None and sub.status == "paused" and sub.themes == ()
    assert MINJI not in site.active()


def test_preferences_reject_bad_input_and_forged_forms(site: Site) -> None:
    url = f"/p/{site.token('preferences', JUN)}"
    token = site.csrf(url)
    before = site.store.subscriber(JUN)
    for data in [
        {"csrf": token, "action": "save", "theme": "nosuch"},
        {"csrf": token, "action": "save", "status": "deleted"},
        {"csrf": token, "action": "explode"},
    ]:
        assert site.call("POST", url, data=data).status_code == 400
    assert site.call("POST", url, data={"action": "leave"}).status_code == 403
    assert site.call("POST", url, data={"csrf": token + "0", "action": "leave"}).status_code == 403
    assert site.store.subscriber(JUN) == before and site.store.suppressed() == {}
    unknown = site.call("GET", f"/p/{site.token('preferences', 'nobody@example.com')}")
    assert unknown.status_code == 404


def test_leave_and_subscribe_again_from_preferences(site: Site) -> None:
    url = f"/p/{site.token('preferences', JUN)}"
    left = site.call("POST", url, data={"csrf": site.csrf(url), "action": "leave"})
    assert left.status_code == 200 and site.store.suppression(JUN) == "unsubscribed"
    page = site.call("GET", url)
    assert "resubscribe" in page.text and 'value="save"' not in page.text
    save = site.call("POST", url, data={"csrf": site.csrf(url), "action": "save", "theme": "ai"})
    assert save.status_code == 409 and JUN not in site.active()  # leaving is not undone by a save
    back = site.call("POST", url, data={"csrf": site.csrf(url), "action": "resubscribe"})
    assert back.status_code == 200 and JUN in site.active()
    token = site.csrf(url)
    site.store.suppress(JUN, "bounced")  # a bounce is not the subscriber's to lift
    again = site.call("POST", url, data={"csrf": token, "action": "resubscribe"})
    assert again.status_code == 409 and JUN not in site.active()


# -- archive ----------------------------------------------------------------------------------


def test_archive_shows_public_copies_without_personal_links(sent_site: Site) -> None:
    site = sent_site
    index = site.call("GET", "/archive")
    assert index.status_code == 200 and "/archive/d/" in index.text
    archived = site.store.archived_digests()
    assert {d.variant for d in archived} == {"", "ai", "economy,humanities"}
    for digest in archived:
        page = site.call("GET", f"/archive/d/{digest.id}")
        assert page.status_code == 200
        assert "default-src 'none'" in page.headers["content-security-policy"]
        text = site.call("GET", f"/archive/d/{digest.id}.txt").text
        for body in (page.text, text):
            assert "%%DIGEST" not in body
            assert "/u/" not in body and "/p/" not in body  # no one's token
            assert "@example.com" not in body and "@example.org" not in body
            assert "https://news.example/digest/unsubscribe" in body
            assert "https://news.example/digest/preferences" in body
        # A neutral stand-in for the address that reads as a sentence, not a placeholder.
        assert "(구독자 주소)" not in page.text and "(구독자 주소)" not in text
        if digest.id.endswith("_en"):  # Alex Morgan's copy, in English (tests/test_language.py)
            assert "because a reader subscribed to" in page.text
        else:
            assert "구독자 주소로 구독 신청하신" in page.text
        # And a way back: the archive page links to the archive first.
        assert 'href="https://news.example/digest/archive">' in page.text
    ai = site.call("GET", "/archive/t/ai")
    [ai_digest] = [d for d in archived if d.variant == "ai" and not d.id.endswith("_en")]
    assert ai.status_code == 200 and f"/archive/d/{ai_digest.id}" in ai.text
    economy = site.call("GET", "/archive/t/economy").text
    assert "/archive/d/" in economy  # the economy+humanities variant is economy's public copy
    assert site.call("GET", "/archive/t/nosuch").status_code == 404
    assert site.call("GET", "/archive/d/nosuch").status_code == 404
    assert site.call("GET", "/archive/d/..%2F..%2Fetc").status_code == 404


def test_atom_feeds_list_past_digests(sent_site: Site) -> None:
    site = sent_site
    response = site.call("GET", "/archive/feed.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 3
    for entry in entries:
        link = entry.find(f"{ATOM}link")
        assert link is not None and link.get("href", "").startswith(
            "https://news.example/digest/archive/d/"
        )
        content = entry.findtext(f"{ATOM}content") or ""
        assert "해봄의 아카이브" in content and "%%DIGEST" not in content
    themed = ET.fromstring(site.call("GET", "/archive/t/ai/feed.atom").content)
    assert len(themed.findall(f"{ATOM}entry")) == 1
    assert site.call("GET", "/archive/t/nosuch/feed.atom").status_code == 404


def test_empty_archive(site: Site) -> None:
    page = site.call("GET", "/archive")
    assert page.status_code == 200 and "아직 보낸 다이제스트가 없습니다" in page.text
    feed = ET.fromstring(site.call("GET", "/archive/feed.atom").content)
    assert feed.findall(f"{ATOM}entry") == []


def test_token_less_pages(site: Site) -> None:
    for url in ("/", "/unsubscribe", "/preferences", "/static/site.css"):
        assert site.call("GET", url).status_code == 200, url
    assert "받은 메일" in site.call("GET", "/unsubscribe").text


# -- security defaults ------------------------------------------------------------------------


def test_security_headers(site: Site) -> None:
    response = site.call("GET", f"/p/{site.token('preferences', JUN)}")
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src" not in headers["content-security-policy"]  # default-src 'none' covers it
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"  # tokens never leak elsewhere
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    missing = site.call("GET", "/nothing-here")
    assert missing.status_code == 404 and "nosniff" in missing.headers["x-content-type-options"]


def test_request_bodies_are_limited(site: Site) -> None:
    url = f"/u/{site.token('unsubscribe', JUN)}"
    big = "x" * (site.config.web.max_body_bytes + 1)
    response = site.call("POST", url, data={"List-Unsubscribe": "One-Click", "pad": big})
    assert response.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"List-Unsubscribe=One-Click&pad="
        for _ in range(64):
            yield b"x" * 1024

    streamed = site.call(
        "POST",
        url,
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
    assert site.store.suppressed() == {}


def test_errors_show_no_stack_trace(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: WebStore) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(WebStore, "archived_digests", boom)
    response = site.call("GET", "/archive")
    assert response.status_code == 500
    assert "secret internal detail" not in response.text and "Traceback" not in response.text
    garbled = site.call(
        "POST",
        f"/u/{site.token('unsubscribe', JUN)}",
        content=b"--x\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert garbled.status_code in (400, 403) and JUN in site.active()


def test_no_open_redirects(site: Site) -> None:
    for url in (
        "//evil.example/",
        "/archive?next=https://evil.example",
        f"/p/{site.token('preferences', JUN)}?next=https://evil.example",
    ):
        response = site.call("GET", url)
        assert response.status_code in (200, 404)
        assert "location" not in response.headers


def _now() -> datetime:
    return datetime.now(UTC)
