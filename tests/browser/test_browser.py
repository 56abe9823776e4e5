"""The web apps in a real browser: Debian's headless Chromium driven by Playwright.

Nothing downloads a browser: Playwright launches /usr/bin/chromium (installed by .ci/run).
The apps run under uvicorn on 127.0.0.1 in a thread; mail goes to the test SMTP server.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.config import load_config
from digest.store import Store, deliveries, digests
from digest.web.preview import build_previews, editor_app
from digest.web.site import subscriber_app
from tests.browser.support import CHROMIUM, cli, links, listening_socket, serving, web_config
from tests.conftest import SMTPServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (.ci/run)"
    ),
]


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    context = browser.new_context(locale="ko-KR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def _html_part(data: bytes) -> str:
    from tests.conftest import Received

    msg = Received("", [], data).message
    part = msg.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_preview_at_phone_width_shows_every_post_title(
    page: object, tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path, smtp_server)
    cli(path, "ingest")
    store = Store.from_config(load_config(path).store)
    try:
        previews = build_previews(load_config(path), store, now=datetime.now(UTC))
        view = previews.view("variant-all")
        assert view is not None and len(view.titles) >= 3
        with serving(editor_app(path, store)) as url:
            page.goto(f"{url}/")
            page.get_by_role("link", name="변형: 전체").click()
            expect(page.get_by_role("heading", name="변형: 전체")).to_be_visible()
            frame_box = page.locator("iframe.email")
            desktop = frame_box.bounding_box()
            page.get_by_text("휴대폰 (375 px)").click()
            expect(page.locator("div.frame")).to_have_css("width", "375px")
            phone = frame_box.bounding_box()
            assert desktop is not None and phone is not None
            assert 365 <= phone["width"] <= 375 < desktop["width"]  # 375 less the frame's border
            email = page.frame_locator("iframe.email")
            for title in view.titles:
                expect(email.get_by_role("heading", name=" ".join(title.split()))).to_be_visible()
            # Nothing in the frame is wider than the phone: no sideways scrolling.
            frame = page.frames[1]
            assert frame.evaluate("document.documentElement.scrollWidth") <= 375
            page.screenshot(path=str(tmp_path / "preview-phone.png"), full_page=True)
            expect(page.locator("#headers")).to_contain_text("List-Unsubscribe-Post")
    finally:
        store.close()


def _send_once(tmp_path: Path, smtp_server: SMTPServer, base_url: str, *args: str) -> Path:
    path = web_config(tmp_path, smtp_server, base_url=base_url)
    cli(path, "ingest")
    cli(path, "send", *args)
    return path


def test_unsubscribe_from_a_received_message(
    page: object, tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    path = _send_once(tmp_path, smtp_server, base)
    [message] = [m for m in smtp_server.handler.messages if m.rcpt_tos == ["jun.park@example.com"]]
    header = message.message["List-Unsubscribe"]
    link = re.search(r"<(http[^>]+)>", header)
    assert link is not None and link.group(1).startswith(f"{base}/u/")
    footer = [html.unescape(h) for h in links(_html_part(message.data)) if "/u/" in h]
    assert footer == [link.group(1)]

    config = load_config(path)
    store = Store.from_config(config.store)
    try:
        with serving(subscriber_app(config, store), sock):
            page.goto(link.group(1))
            expect(page.get_by_role("heading", name="구독 취소")).to_be_visible()
            assert store.suppressed() == {}  # opening the link changed nothing
            page.get_by_role("button", name="구독 취소하기").click()
            expect(page.get_by_role("status")).to_contain_text("구독이 취소되었습니다")
            assert store.suppressed() == {"jun.park@example.com": "unsubscribed"}
            active = {s.email for s in store.subscribers(active_only=True)}
            assert "jun.park@example.com" not in active and len(active) == 3
    finally:
        store.close()


def test_preferences_change_the_next_digest_variant(
    page: object, tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # First an economy digest: minji (who chose everything) gets it, with her footer links.
    path = _send_once(tmp_path, smtp_server, base, "--theme", "economy")
    [message] = [m for m in smtp_server.handler.messages if m.rcpt_tos == ["minji.kim@example.com"]]
    [prefs] = [html.unescape(h) for h in links(_html_part(message.data)) if "/p/" in h]
    config = load_config(path)
    store = Store.from_config(config.store)
    try:
        with serving(subscriber_app(config, store), sock):
            page.goto(prefs)
            expect(page.get_by_role("heading", name="구독 설정")).to_be_visible()
            page.get_by_label("인공지능").check()
            page.get_by_label("업무와 제품").check()
            page.get_by_role("button", name="저장").click()
            expect(page.get_by_role("status")).to_contain_text("저장되었습니다")
            expect(page.get_by_label("인공지능")).to_be_checked()
            expect(page.get_by_label("경제·투자")).not_to_be_checked()
    finally:
        store.close()

    smtp_server.handler.messages.clear()
    cli(path, "send")
    [mail] = [m for m in smtp_server.handler.messages if m.rcpt_tos == ["minji.kim@example.com"]]
    store = Store.from_config(config.store)
    try:
        with store.engine.connect() as conn:
            variant = conn.execute(
                sa.select(digests.c.variant)
                .select_from(deliveries.join(digests))
                .where(deliveries.c.email == "minji.kim@example.com", digests.c.theme.is_(None))
            ).scalar_one()
    finally:
        store.close()
    assert variant == "ai,work"
    body = _html_part(mail.data)
    assert "인공지능" in body and "경제·투자" not in body


# Every word of the element's text whose pieces sit on more than one line, unless the word
# is wider than the element itself (a URL may be cut; a word never is).
_SPLIT_WORDS = """
(root) => {
  const split = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const cell = node.parentElement.closest('td, th');
    if (!cell) continue;
    const re = /[^\\s·]+/g;  // a middle dot joins two words ("경제·투자"): a break after it is fine
    let m;
    while ((m = re.exec(node.data)) !== null) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      const wide = range.getBoundingClientRect().width > cell.clientWidth;
      if (tops.size > 1 && !wide) split.push(m[0]);
    }
  }
  return split;
}
"""


def test_preview_index_never_breaks_a_word(
    page: object, tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index table broke words mid-word ("인공/지능", "2/026년", "ev/erything") with a
    `word-break: break-all` rule; at any width a cell wraps between words only."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path, smtp_server)
    cli(path, "ingest")
    store = Store.from_config(load_config(path).store)
    try:
        with serving(editor_app(path, store)) as url:
            for width in (1280, 700, 420):
                page.set_viewport_size({"width": width, "height": 900})
                page.goto(f"{url}/")
                table = page.locator("table.headers")
                assert "인공지능" in table.inner_text() or "everything" in table.inner_text()
                split = table.evaluate(_SPLIT_WORDS)
                assert split == [], f"{width}px: words broken across lines: {split}"
    finally:
        store.close()
