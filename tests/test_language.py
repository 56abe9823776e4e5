"""Readers' language: the email's fixed words per subscriber (ko or en, else the site's), and
the editor's preview in the site's language. Sends go to a real aiosmtpd server through the
CLI; the messages that arrive are parsed."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.config import load_config
from digest.pipeline import plan_edition, summarize_post
from digest.store import Store, StoredSubscriber
from digest.web.preview import editor_app
from tests.browser.support import listening_socket, serving, web_config
from tests.conftest import SMTPServer, write_config

# Every test here touches the store: on SQLite, and on PostgreSQL when DIGEST_TEST_PG is set.
pytestmark = pytest.mark.parametrize("store_backend", ["sqlite", "postgresql"], indirect=True)

HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
SITE = "해봄의 아카이브"
POSTAL = "서울특별시 중구 세종대로 110"
EN_LONG_DATE = re.compile(
    r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), [A-Z][a-z]+ \d{1,2}, \d{4}"
)
EN_SHORT_DATE = re.compile(r"\b\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}\b")
KO_LONG_DATE = re.compile(r"\d{4}년 \d{1,2}월 \d{1,2}일 \([월화수목금토일]\)")


def cli(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def smtp_config(tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    return write_config(tmp_path, smtp=f'host = "127.0.0.1"\nport = {smtp_server.port}')


class _Text(HTMLParser):
    """The text of an email's HTML, without what sits in an element marked lang="ko" (a
    post's card: its title, author and summary are the post's, never translated)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0  # > 0 inside a lang="ko" element
        self.tags: list[bool] = []
        self.nodes: list[str] = []
        self.content: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "img", "meta", "link", "input", "hr"):
            return
        korean = dict(attrs).get("lang") == "ko" and tag != "html"
        self.tags.append(korean)
        self.depth += korean

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "img", "meta", "link", "input", "hr") or not self.tags:
            return
        self.depth -= self.tags.pop()

    def handle_data(self, data: str) -> None:
        if data.strip():
            (self.content if self.depth else self.nodes).append(flat(data))


def _fixed_words(markup: str, content: list[str]) -> list[str]:
    """Text nodes of the HTML body outside post cards, with `content` (post titles, the site's
    name and address, the subscriber's name) taken out."""
    body = markup[markup.index("<body") :]
    scan = _Text()
    scan.feed(body)
    out = []
    for node in scan.nodes:
        for value in sorted(content, key=len, reverse=True):
            node = node.replace(value, " ")
        out.append(flat(node))
    return out


def _received(server: SMTPServer) -> dict[str, tuple[str, str, str]]:
    """Per recipient: (subject, html, text) of the message that arrived."""
    got: dict[str, tuple[str, str, str]] = {}
    for item in server.handler.messages:
        msg = item.message
        html_part, text_part = msg.get_body(("html",)), msg.get_body(("plain",))
        assert html_part is not None and text_part is not None
        for rcpt in item.rcpt_tos:
            got[rcpt] = (str(msg["Subject"]), html_part.get_content(), text_part.get_content())
    return got


def test_an_english_reader_gets_english_fixed_words_and_a_korean_one_korean(
    smtp_config: Path, smtp_server: SMTPServer
) -> None:
    cli(smtp_config, "ingest")
    assert "issue #1: 4 message(s) sent" in cli(smtp_config, "send")
    got = _received(smtp_server)
    config = load_config(smtp_config)
    store = Store.from_config(config.store)
    try:
        posts = [p for p in (store.get_post(k) for k in _post_keys(store)) if p is not None]
        summaries = [s for p in posts for s in summarize_post(p, config, store).sentences]
    finally:
        store.close()
    content = [flat(p.title) for p in posts] + [flat(p.author) for p in posts if p.author]
    content += [flat(s) for s in summaries] + [SITE, POSTAL]

    # Alex Morgan (language = en, theme ai): English, except the posts and the site's name.
    subject, markup, text = got["alex.morgan@example.org"]
    assert subject.startswith(f"{SITE} digest #1 · ") and EN_LONG_DATE.search(subject)
    assert '<html lang="en"' in markup
    page = flat(html.unescape(re.sub(r"<[^>]+>", " ", markup)))
    assert "Hi Alex Morgan," in page and "Hi Alex Morgan," in text
    assert "님, 안녕하세요" not in page and "님, 안녕하세요" not in text
    assert EN_LONG_DATE.search(page) and EN_SHORT_DATE.search(page) and "min read" in page
    assert "Read more:" in page and "Issue 1" in page and "In this issue:" in page
    assert f"You are receiving this because alex.morgan@example.org subscribed to {SITE}." in page
    for word in ("Unsubscribe", "Manage preferences", "Archive", "AI"):
        assert word in page and word in text, word
    leftover = [w for w in _fixed_words(markup, [*content, "Alex Morgan"]) if HANGUL.search(w)]
    # The preheader lists the first titles, cut at 140 characters: a cut title is content too.
    leftover = [w for w in leftover if not w.startswith("In this issue:")]
    assert leftover == [], leftover
    plain = flat(text)
    for value in sorted(content, key=len, reverse=True):
        plain = plain.replace(value, " ")
    assert not HANGUL.search(plain), HANGUL.findall(plain)[:20]

    # 박준 (language = ko, the same theme): the Korean digest as before, no English words.
    subject, markup, text = got["jun.park@example.com"]
    assert subject.startswith(f"{SITE} 인공지능 #1 · ") or subject.startswith(f"{SITE} 다이제스트")
    assert KO_LONG_DATE.search(subject)
    assert '<html lang="ko"' in markup
    page = flat(html.unescape(re.sub(r"<[^>]+>", " ", markup)))
    assert "박준님, 안녕하세요." in page and "박준님, 안녕하세요." in text
    assert "구독 취소" in page and "구독 설정" in page and "제1호" in page
    for word in ("Hi ", "Unsubscribe", "Read more", "min read", "You are receiving"):
        assert word not in page and word not in text, word


def _post_keys(store: Store) -> list[str]:
    import sqlalchemy as sa

    from digest.store import digest_posts

    with store.engine.connect() as conn:
        return sorted({r[0] for r in conn.execute(sa.select(digest_posts.c.post_key))})


def test_readers_share_a_variant_per_themes_and_language(config_path: Path) -> None:
    cli(config_path, "ingest")
    config = load_config(config_path)
    store = Store.from_config(config.store)
    readers = [
        StoredSubscriber("a@example.com", "A", ("ai",), "ko", "active"),
        StoredSubscriber("b@example.com", "B", ("ai",), "", "active"),  # the site's: ko
        StoredSubscriber("c@example.com", "C", ("ai",), "fr", "active"),  # unknown: the site's
        StoredSubscriber("d@example.com", "D", ("ai",), "en", "active"),
        StoredSubscriber("e@example.com", "E", ("ai",), "en-GB", "active"),
        StoredSubscriber("f@example.com", "F", (), "en", "active"),
    ]
    try:
        edition = plan_edition(config, store, now=datetime.now(UTC), recipients=readers)
    finally:
        store.close()
    by_reader = {
        sub.email: (v.key, v.language, v.digest.id)
        for v in edition.variants
        for sub in v.recipients
    }
    assert {e: k[:2] for e, k in by_reader.items()} == {
        "a@example.com": ("ai", "ko"),
        "b@example.com": ("ai", "ko"),
        "c@example.com": ("ai", "ko"),
        "d@example.com": ("ai", "en"),
        "e@example.com": ("ai", "en"),
        "f@example.com": ("", "en"),
    }
    assert len(edition.variants) == 3
    # The site's language keeps the plain id; the other language's copy is marked.
    assert by_reader["a@example.com"][2] == f"{edition.id}-ai"
    assert by_reader["d@example.com"][2] == f"{edition.id}-ai_en"
    # The packed readers keep each reader's own language value.
    english = next(v for v in edition.variants if v.key == "ai" and v.language == "en")
    assert [s.language for s in english.recipients] == ["en", "en-GB"]
    assert english.rendered.subject.startswith(f"{SITE} digest #")
    korean = next(v for v in edition.variants if v.key == "ai" and v.language == "ko")
    assert korean.rendered.subject.startswith(f"{SITE} 다이제스트 #")
    assert [s.title for s in english.digest.sections] == ["AI"]
    assert [s.title for s in korean.digest.sections] == ["인공지능"]


def test_a_language_tag_with_a_region_is_read_and_a_bad_one_names_file_and_line(
    config_path: Path,
) -> None:
    listing = config_path.parent / "more.csv"
    listing.write_text(
        "email,name,themes,language,status\n"
        "us@example.com,US,,en-US,active\n"
        "kr@example.com,KR,,ko_KR,active\n"
        "fr@example.com,FR,,fr,active\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["--config", str(config_path), "subscribers", "import", str(listing)]
    )
    assert result.exit_code != 0
    assert f"{listing}:4: language must be ko or en (or empty: the site's), not 'fr'" in (
        result.output
    )
    cli(config_path, "subscribers", "import", "--skip-invalid", str(listing))
    shown = cli(config_path, "subscribers", "show", "us@example.com")
    assert re.search(r"language:\s+en\b", shown), shown
    shown = cli(config_path, "subscribers", "show", "kr@example.com")
    assert re.search(r"language:\s+ko\b", shown), shown


# -- the preview ----------------------------------------------------------------------------


def _get(app: object, url: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get(url)

    return asyncio.run(go())


@pytest.fixture
def preview_config(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Store]]:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path, smtp_server)
    cli(path, "ingest")
    store = Store.from_config(load_config(path).store)
    yield path, store
    store.close()


def test_the_preview_speaks_the_site_language(preview_config: tuple[Path, Store]) -> None:
    path, store = preview_config
    app = editor_app(path, store)
    index = _get(app, "/")
    assert index.status_code == 200, index.text
    assert '<html lang="ko">' in index.text
    assert "<h1>다음 발송</h1>" in index.text and "The next send" not in index.text
    # Alex Morgan reads English: their variant is a view of its own, marked with its language.
    assert '<a href="/v/variant-ai">변형: 인공지능</a>' in index.text
    assert '<a href="/v/variant-ai-en">변형: 인공지능 (영어)</a>' in index.text
    assert '<a href="/v/all-en">전체 (영어)</a>' in index.text
    view = _get(app, "/v/variant-ai-en")
    assert view.status_code == 200 and '<html lang="ko">' in view.text
    assert "테스트 메일 보내기" in view.text and "Send test copy" not in view.text
    assert "Subject" in view.text and " digest #" in html.unescape(view.text)
    frame = _get(app, "/v/variant-ai-en/email.html")
    assert '<html lang="en"' in frame.text and "Hi Alex Morgan," in frame.text
    missing = _get(app, "/v/nothing-here")
    assert missing.status_code == 404 and "그런 보기가 없습니다" in missing.text

    text = path.read_text("utf-8").replace('language = "ko"\npostal', 'language = "en"\npostal')
    assert text != path.read_text("utf-8")
    path.write_text(text, "utf-8")
    index = _get(app, "/")
    assert index.status_code == 200, index.text
    assert '<html lang="en">' in index.text and "<h1>The next send</h1>" in index.text
    assert not HANGUL.search(
        re.sub(r"<td>.*?</td>|<title>.*?</title>|<header.*?</header>", "", index.text, flags=re.S)
    )
    assert '<a href="/v/variant-ai-ko">variant: AI (Korean)</a>' in index.text
    assert '<a href="/v/variant-ai">variant: AI</a>' in index.text


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_the_korean_preview_in_chromium(preview_config: tuple[Path, Store]) -> None:
    from playwright.sync_api import expect, sync_playwright

    path, store = preview_config
    with (
        serving(editor_app(path, store), listening_socket()) as url,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"], headless=True
        )
        try:
            page = browser.new_page(locale="en-US")
            page.goto(f"{url}/")
            assert page.evaluate("document.documentElement.lang") == "ko"
            expect(page.get_by_role("heading", name="다음 발송")).to_be_visible()
            page.get_by_role("link", name="변형: 인공지능 (영어)").click()
            expect(page.get_by_role("heading", name="변형: 인공지능 (영어)")).to_be_visible()
            expect(page.get_by_role("button", name="테스트 메일 보내기")).to_be_visible()
            page.get_by_text("휴대폰 (375 px)").click()
            expect(page.locator("div.frame")).to_have_css("width", "375px")
            email = page.frame_locator("iframe.email")
            expect(email.locator("html")).to_have_attribute("lang", "en")
            expect(email.get_by_text("Hi Alex Morgan,")).to_be_visible()
            expect(email.get_by_role("link", name="Unsubscribe")).to_be_visible()
        finally:
            browser.close()


# -- the subscriber pages --------------------------------------------------------------------


def test_pages_from_a_readers_email_speak_their_language_and_the_archive_the_sites(
    smtp_config: Path, smtp_server: SMTPServer
) -> None:
    from digest.store import WebStore
    from digest.tokens import load_secret, make_token
    from digest.web.archive import public_digests
    from digest.web.site import subscriber_app

    cli(smtp_config, "ingest")
    cli(smtp_config, "send")
    config = load_config(smtp_config)
    store = Store.from_config(config.store)
    try:
        app = subscriber_app(config, store)
        secret = load_secret(config)
        got = _received(smtp_server)
        # The links in Alex Morgan's email lead to English pages.
        alex = got["alex.morgan@example.org"][1]
        preferences = re.search(r'href="https://news\.example/digest(/p/[^"]+)"', alex)
        unsubscribe = re.search(r'href="https://news\.example/digest(/u/[^"]+)"', alex)
        assert preferences is not None and unsubscribe is not None
        page = _get(app, preferences.group(1))
        assert page.status_code == 200 and '<html lang="en">' in page.text
        assert "<h1>Preferences</h1>" in page.text and "Economy and investment" in page.text
        page = _get(app, unsubscribe.group(1))
        assert page.status_code == 200 and '<html lang="en">' in page.text
        assert "Unsubscribe alex.morgan@example.org?" in page.text
        # 박준's stay Korean.
        page = _get(app, "/p/" + make_token(secret, "preferences", "jun.park@example.com"))
        assert '<html lang="ko">' in page.text and "<h1>구독 설정</h1>" in page.text
        # The public archive is the site's: the Korean copy of the ai digest, in Korean.
        index = _get(app, "/archive")
        assert '<html lang="ko">' in index.text
        [ai] = public_digests(WebStore(store.engine).archived_digests(), "ai")
        copy = _get(app, f"/archive/d/{ai.id}")
        assert '<html lang="ko"' in copy.text and "구독자 주소로 구독 신청하신" in copy.text
    finally:
        store.close()
