"""`digest preview` in-process: the views of the next send, reload, test copies, .eml, --output."""

from __future__ import annotations

import asyncio
import email
import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.config import load_config
from digest.store import Store
from digest.web.preview import build_previews, check_html, editor_app
from tests.browser.support import cli, web_config
from tests.conftest import SMTPServer

EMPTY_THEME = """
[[themes]]
key = "gardening"
title = { ko = "정원 가꾸기", en = "Gardening" }
keywords = ["튤립구근심기"]
"""


class Preview:
    def __init__(self, path: Path, store: Store, **options: Any) -> None:
        self.path = path
        self.store = store
        self.app = editor_app(path, store, **options)

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1:8999"
            ) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def csrf(self, url: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.call("GET", url).text)
        assert found
        return found.group(1)


@pytest.fixture
def config(tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path, smtp_server, extra=EMPTY_THEME)
    cli(path, "ingest")
    return path


@pytest.fixture
def store(config: Path) -> Iterator[Store]:
    store = Store.from_config(load_config(config).store)
    yield store
    store.close()


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_index_lists_variants_themes_and_everything(config: Path, store: Store) -> None:
    preview = Preview(config, store, subscriber="jun.park@example.com")
    page = preview.call("GET", "/")
    assert page.status_code == 200, page.text
    for slug in (
        "subscriber",
        "variant-ai",
        "variant-all",
        "variant-economy+humanities",
        "theme-ai",
        "theme-gardening",
        "all",
    ):
        assert f'href="/v/{slug}"' in page.text, slug
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_a_view_shows_frame_text_headers_size_and_warnings(config: Path, store: Store) -> None:
    preview = Preview(config, store)
    previews = build_previews(load_config(config), store, now=_now())
    view = previews.view("theme-ai")
    assert view is not None and view.variant is not None and view.titles
    page = preview.call("GET", "/v/theme-ai")
    assert page.status_code == 200
    assert 'src="/v/theme-ai/email.html"' in page.text and 'id="w-phone"' in page.text
    for header in ("Subject", "From", "To", "List-Unsubscribe", "List-Unsubscribe-Post"):
        assert f"<th>{header}</th>" in page.text
    assert "https://news.example/digest/u/" in page.text
    assert "102 KB" in page.text
    frame = preview.call("GET", "/v/theme-ai/email.html")
    assert (
        frame.status_code == 200
        and "frame-ancestors 'self'" in frame.headers["content-security-policy"]
    )
    text = re.search(r'<pre class="text" id="text">(.*?)</pre>', page.text, re.S)
    assert text is not None
    shown = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", frame.text)).split())
    for title in view.titles:
        assert " ".join(title.split()) in shown
        assert " ".join(title.split())[:20] in " ".join(html.unescape(text.group(1)).split())
    assert "%%DIGEST" not in frame.text and "%%DIGEST" not in page.text


def test_empty_theme_and_insecure_links_are_warned(config: Path, store: Store) -> None:
    preview = Preview(config, store)
    empty = preview.call("GET", "/v/theme-gardening")
    assert empty.status_code == 200 and "empty: nothing new" in empty.text
    assert preview.call("GET", "/v/theme-gardening/email.html").status_code == 404
    # A plain-http base_url is said once, on the index, not as a "link is not https" on
    # every view (it read as noise); another site's http link is still flagged in its view.
    text = config.read_text("utf-8").replace(
        "https://news.example/digest", "http://news.example/digest"
    )
    config.write_text(text, "utf-8")
    page = preview.call("GET", "/v/theme-ai")
    assert "link is not https: http://news.example/digest/u/" not in page.text
    index = preview.call("GET", "/")
    assert "web.base_url is http://news.example/digest: plain http" in index.text
    assert index.text.count("web.base_url is") == 1


def test_check_html_finds_missing_alt_clipping_and_plain_http() -> None:
    markup = (
        '<img src="https://x.example/a.png"><img src="https://x.example/b.png" alt="">'
        '<img src="https://x.example/c.png" alt="ok"><a href="http://x.example/">x</a>'
        '<a href="https://x.example/">y</a><a href="mailto:a@x.example">z</a>'
        + "<p>"
        + "가" * 40_000
        + "</p>"
    )
    warnings = check_html(markup)
    assert any("Gmail clips" in w for w in warnings)
    assert "image without alt: https://x.example/a.png" in warnings
    assert "image with empty alt: https://x.example/b.png" in warnings
    assert "link is not https: http://x.example/" in warnings
    assert not any("c.png" in w or "mailto" in w for w in warnings)


def test_reload_rereads_config_and_templates(config: Path, store: Store) -> None:
    preview = Preview(config, store)
    assert "해봄의 아카이브" in preview.call("GET", "/v/all/email.html").text
    folder = config.parent / "mytemplates"
    folder.mkdir()
    builtin = Path(__file__).resolve().parent.parent / "templates" / "digest.mjml.j2"
    source = builtin.read_text("utf-8").replace(
        "{{ digest.intro }}", "{{ digest.intro }} 편집한 템플릿"
    )
    (folder / "digest.mjml.j2").write_text(source, "utf-8")
    text = config.read_text("utf-8").replace('name = "해봄의 아카이브"', 'name = "새 이름"', 1)
    config.write_text(text + '\n[templates]\nfolder = "mytemplates"\n', "utf-8")
    page = preview.call("GET", "/v/all/email.html").text
    assert "편집한 템플릿" in page and "새 이름" in page
    # A broken template is the editor's error, shown with its file and line, no trace.
    (folder / "digest.mjml.j2").write_text("{% if %}", "utf-8")
    broken = preview.call("GET", "/")
    assert broken.status_code == 500 and "digest.mjml.j2:1" in broken.text
    assert "Traceback" not in broken.text


def test_send_a_test_copy_and_download_the_eml(
    config: Path, store: Store, smtp_server: SMTPServer
) -> None:
    preview = Preview(config, store)
    eml = preview.call("GET", "/v/theme-ai/message.eml")
    assert eml.status_code == 200 and eml.headers["content-type"] == "message/rfc822"
    assert "attachment" in eml.headers["content-disposition"]
    msg = parse(eml.content)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_body(("html",)) is not None and msg.get_body(("plain",)) is not None

    token = preview.csrf("/v/theme-ai")
    bad = preview.call("POST", "/v/theme-ai/send", data={"csrf": "1.x", "to": "ed@example.net"})
    assert bad.status_code == 403
    cross = preview.call(
        "POST",
        "/v/theme-ai/send",
        data={"csrf": token, "to": "ed@example.net"},
        headers={"Origin": "http://evil.example"},
    )
    assert cross.status_code == 403
    invalid = preview.call("POST", "/v/theme-ai/send", data={"csrf": token, "to": "not-an-address"})
    assert invalid.status_code == 400
    assert smtp_server.handler.messages == []

    sent = preview.call("POST", "/v/theme-ai/send", data={"csrf": token, "to": "ed@example.net"})
    assert sent.status_code == 200 and "ed@example.net 주소로 보낸 테스트 메일: sent" in sent.text
    [received] = smtp_server.handler.messages
    assert received.rcpt_tos == ["ed@example.net"]
    assert received.message["Subject"] == msg["Subject"]
    assert store.delivery_counts() == {}  # a test copy records nothing
    assert preview.call("GET", "/v/theme-ai/send").status_code == 405
    assert preview.call("POST", "/v/theme-ai").status_code == 405


def test_unknown_views_hosts_and_subscribers(config: Path, store: Store) -> None:
    preview = Preview(config, store)
    assert preview.call("GET", "/v/nosuch").status_code == 404
    assert preview.call("GET", "/v/nosuch/message.eml").status_code == 404
    rebound = preview.call("GET", "/", headers={"Host": "evil.example"})
    assert rebound.status_code == 400  # DNS rebinding: only 127.0.0.1/localhost are served
    unknown = Preview(config, store, subscriber="nobody@example.com").call("GET", "/")
    assert unknown.status_code == 500 and "nobody@example.com: not a subscriber" in unknown.text


def test_preview_output_html_and_eml(config: Path, tmp_path: Path) -> None:
    html_file = tmp_path / "jun.html"
    out = cli(config, "preview", "--subscriber", "jun.park@example.com", "--output", str(html_file))
    assert "wrote" in out
    page = html_file.read_text("utf-8")
    assert page.startswith("<!doctype html>") and "박준님" in page and "%%DIGEST" not in page
    eml_file = tmp_path / "ai.eml"
    cli(config, "preview", "--theme", "ai", "--output", str(eml_file))
    msg = parse(eml_file.read_bytes())
    assert "인공지능" in msg["Subject"] and msg["List-Unsubscribe"]
    result = CliRunner().invoke(
        main,
        ["--config", str(config), "preview", "--subscriber", "x@example.com", "--output", "x.html"],
    )
    assert result.exit_code == 1 and "x@example.com: not a subscriber" in result.output
    empty = CliRunner().invoke(
        main, ["--config", str(config), "preview", "--theme", "gardening", "--output", "x.html"]
    )
    assert empty.exit_code == 1 and "nothing new to preview" in empty.output


def test_serve_and_preview_are_commands() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0 and "--port" in result.output
    result = CliRunner().invoke(main, ["preview", "--help"])
    assert "--subscriber" in result.output and ".eml" in result.output


def _now() -> datetime:
    return datetime.now(UTC)


def test_base_url_problems() -> None:
    from digest.config import WebConfig, base_url_problem

    assert base_url_problem(WebConfig("https://news.example/digest")) is None
    for local in (
        "http://127.0.0.1:8025",
        "https://localhost/x",
        "https://10.0.0.5",
        "https://box",
    ):
        problem = base_url_problem(WebConfig(local))
        assert problem is not None and "only this machine or network" in problem, local
    plain = base_url_problem(WebConfig("http://news.example"))
    assert plain is not None and "plain http" in plain


def test_an_empty_preview_says_why_and_what_to_do(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before any ingest every view was empty with no hint, and after the first send every
    view listed 0 posts: the index now says what to run."""
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path, smtp_server)
    store = Store.from_config(load_config(path).store)
    try:
        fresh = Preview(path, store).call("GET", "/").text
        assert "no posts yet: `digest ingest` reads the sources" in html.unescape(fresh)
        cli(path, "run")
        # After the first issue the regular digest has nothing new (theme views may still
        # have posts for a themed send): the note names the issue that took the posts.
        from digest.web.preview import why_empty

        note = why_empty(load_config(path), store)
        assert note.startswith("nothing new since issue #1 (")
        assert "`digest preview --edition latest` shows it" in note
    finally:
        store.close()
