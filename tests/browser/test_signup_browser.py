"""Sign-up in a real browser (Debian's Chromium through Playwright): the form on the site, and
the snippet embedded in another site's page, each followed to the confirmation mail, its link
and the button, against `digest serve`'s app under uvicorn and a real SMTP server."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from digest.config import load_config
from digest.store import Store, WebStore
from tests.browser.support import CHROMIUM, cli, listening_socket, serving, web_config
from tests.conftest import Received, SMTPServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (.ci/run)"
    ),
]
NEW = "haneul.kim@example.com"


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    context = browser.new_context(locale="ko-KR", viewport={"width": 390, "height": 844})
    page = context.new_page()
    yield page
    context.close()


def _mail_to(server: SMTPServer, address: str, count: int) -> Received:
    """The `count`th message to `address`, waiting for it (it is sent after the response)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [m for m in server.handler.messages if m.rcpt_tos == [address]]
        if len(found) >= count:
            return found[count - 1]
        time.sleep(0.05)
    raise AssertionError(f"no message {count} to {address}")


def _link(mail: Received) -> str:
    found = re.search(r"http://\S+/subscribe/confirm\?t=\S+", mail.message.get_content())
    assert found
    return found[0]


def _confirm_in_browser(page: object, link: str) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(link)
    expect(page.get_by_role("heading", name="구독 확인")).to_be_visible()
    page.get_by_role("button", name="구독 확인").click()
    expect(page.get_by_role("status")).to_contain_text("구독되었습니다")


def test_sign_up_on_the_site(
    page: object, tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    path = web_config(tmp_path, smtp_server, base_url=base, extra="\n[signup]\nenabled = true\n")
    config = load_config(path)
    store = WebStore(Store.from_config(config.store).engine)
    try:
        from digest.web.site import subscriber_app

        with serving(subscriber_app(config, store), sock):
            page.goto(f"{base}/subscribe")
            expect(page.get_by_role("heading", name="구독 신청")).to_be_visible()
            expect(page.get_by_label("이 칸은 비워 두세요")).to_be_hidden()  # the honeypot
            page.get_by_label("메일 주소").fill(NEW)
            page.get_by_label("이름 (선택)").fill("김하늘")
            page.get_by_label("인공지능").check()
            page.get_by_label("정책·규제").check()
            page.get_by_role("button", name="구독 신청").click()
            expect(page.get_by_role("heading", name="메일함을 확인해 주세요")).to_be_visible()
            # No horizontal scrolling at phone width.
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            confirmation = _mail_to(smtp_server, NEW, 1)
            assert store.subscriber(NEW) is None
            _confirm_in_browser(page, _link(confirmation))
            sub = store.subscriber(NEW)
            assert sub is not None and (sub.name, sub.themes) == ("김하늘", ("ai", "policy"))
            assert "환영합니다" in _mail_to(smtp_server, NEW, 2).message.get_content()
    finally:
        store.close()


def test_snippet_on_another_site(
    page: object, tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    path = web_config(tmp_path, smtp_server, base_url=base, extra="\n[signup]\nenabled = true\n")
    snippet = cli(path, "signup-snippet", "--themes", "economy")

    async def blog(request: Request) -> HTMLResponse:
        return HTMLResponse(
            f"<!doctype html><html lang=ko><meta charset=utf-8><title>blog</title>"
            f"<h1>다른 블로그</h1>{snippet}</html>"
        )

    config = load_config(path)
    store = WebStore(Store.from_config(config.store).engine)
    try:
        from digest.web.site import subscriber_app

        other = Starlette(routes=[Route("/", blog)])
        with serving(subscriber_app(config, store), sock), serving(other) as blog_url:
            assert blog_url != base  # another origin (another port)
            page.goto(f"{blog_url}/")
            page.get_by_label("메일 주소").fill(NEW)
            page.get_by_label("경제·투자").check()
            page.get_by_role("button", name="구독 신청").click()
            expect(page.get_by_role("heading", name="메일함을 확인해 주세요")).to_be_visible()
            assert page.url == f"{base}/subscribe"
            _confirm_in_browser(page, _link(_mail_to(smtp_server, NEW, 1)))
            sub = store.subscriber(NEW)
            assert sub is not None and sub.themes == ("economy",)
    finally:
        store.close()
