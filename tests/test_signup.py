"""Sign-up with double opt-in (`/subscribe`), through the ASGI app (httpx) and a real aiosmtpd
server: the form, the confirmation mail and its link, the welcome mail, expired and tampered
links, the honeypot, the limits per IP and per address, suppressed and unsubscribed addresses,
and the snippet for other sites."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette

from digest.cli import main
from digest.config import Config, load_config
from digest.errors import ConfigError
from digest.store import Store, WebStore
from digest.tokens import SignupClaim, load_secret, make_signup_token, make_token
from digest.web.signup import RateLimiter
from digest.web.site import subscriber_app
from tests.browser.support import web_config
from tests.conftest import Received, SMTPServer

NEW = "haneul.kim@example.com"
JUN = "jun.park@example.com"
IP = "198.51.100.7"
SIGNUP = "\n[signup]\nenabled = true\n"


@dataclass
class Site:
    config: Config
    store: WebStore
    secret: bytes
    smtp: SMTPServer
    path: Path
    app: Starlette = field(init=False)

    def __post_init__(self) -> None:
        self.app = subscriber_app(self.config, self.store)

    def call(self, method: str, url: str, *, ip: str = IP, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(
                app=self.app, raise_app_exceptions=False, client=(ip, 40000)
            )
            async with httpx.AsyncClient(
                transport=transport, base_url="https://news.example"
            ) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def sign_up(self, email: str, *, ip: str = IP, **fields: Any) -> httpx.Response:
        return self.call("POST", "/subscribe", ip=ip, data={"email": email, **fields})

    @property
    def mails(self) -> list[Received]:
        return self.smtp.handler.messages

    def confirm(self, link: str) -> httpx.Response:
        """Follow a confirmation link as a reader does: open it, press the button."""
        parts = urlsplit(link)
        local = parts.path.removeprefix("/digest") + "?" + parts.query
        page = self.call("GET", local)
        assert page.status_code == 200, page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        token = re.search(r'name="t" value="([^"]+)"', page.text)
        assert csrf and token
        return self.call(
            "POST",
            "/subscribe/confirm",
            data={"csrf": html.unescape(csrf[1]), "t": html.unescape(token[1])},
            headers={"Origin": "https://news.example"},
        )

    def token(self, email: str, themes: tuple[str, ...] = (), issued: float | None = None) -> str:
        when = int(time.time() if issued is None else issued)
        return make_signup_token(self.secret, SignupClaim(email, "", themes, when))


def open_site(path: Path, smtp: SMTPServer) -> Iterator[Site]:
    config = load_config(path)
    store = WebStore(Store.from_config(config.store).engine)
    try:
        yield Site(config, store, load_secret(config), smtp, path)
    finally:
        store.close()


@pytest.fixture
def site(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    yield from open_site(web_config(tmp_path, smtp_server, extra=SIGNUP), smtp_server)


def decoded(value: str) -> str:
    return str(make_header(decode_header(value)))


def raw_headers(mail: Received) -> bytes:
    return mail.data.split(b"\r\n\r\n", 1)[0]


def link_in(mail: Received) -> str:
    body = mail.message.get_content()
    found = re.search(r"https://news\.example/digest/subscribe/confirm\?t=\S+", body)
    assert found, body
    return found[0]


# -- the whole way ----------------------------------------------------------------------------


def test_sign_up_confirm_and_welcome_in_korean(site: Site) -> None:
    form = site.call("GET", "/subscribe")
    assert form.status_code == 200
    assert 'name="email"' in form.text and 'value="economy"' in form.text
    assert "인공지능" in form.text and 'name="website"' in form.text
    assert re.search(r"<p hidden>", form.text)  # the honeypot is not shown to people

    answer = site.sign_up(NEW, name="김하늘", theme=["economy", "ai"])
    assert answer.status_code == 200 and "메일함을 확인해 주세요" in answer.text
    assert site.store.subscriber(NEW) is None  # nothing stored before the confirmation

    assert len(site.mails) == 1
    mail = site.mails[0]
    assert mail.rcpt_tos == [NEW]
    head = raw_headers(mail)
    assert head.isascii() and b"Subject: =?utf-8?" in head  # RFC 2047, not raw UTF-8
    msg = mail.message
    assert decoded(msg["Subject"]) == "[해봄의 아카이브] 구독 확인: 아래 링크를 눌러 주세요"
    assert decoded(msg["From"]) == "해봄의 아카이브 <digest@haebom.example>"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Message-ID"]
    body = msg.get_content()
    assert "인공지능, 경제·투자" in body and "48시간" in body and "김하늘" not in body

    link = link_in(mail)
    page = site.call(
        "GET", urlsplit(link).path.removeprefix("/digest") + "?" + urlsplit(link).query
    )
    assert page.status_code == 200 and NEW in page.text and "구독 확인" in page.text
    assert site.store.subscriber(NEW) is None  # opening the link (a mail scanner) is not enough

    done = site.confirm(link)
    assert done.status_code == 200 and "구독되었습니다" in done.text
    sub = site.store.subscriber(NEW)
    assert sub is not None
    assert (sub.name, sub.themes, sub.status) == ("김하늘", ("ai", "economy"), "active")
    assert NEW in {s.email for s in site.store.subscribers(active_only=True)}

    assert len(site.mails) == 2
    welcome = site.mails[1]
    assert welcome.rcpt_tos == [NEW]
    assert raw_headers(welcome).isascii()
    wmsg = welcome.message
    assert decoded(wmsg["Subject"]) == "[해봄의 아카이브] 구독해 주셔서 감사합니다"
    assert decoded(wmsg["To"]) == f"김하늘 <{NEW}>"
    unsubscribe = f"https://news.example/digest/u/{make_token(site.secret, 'unsubscribe', NEW)}"
    assert wmsg["List-Unsubscribe"].startswith(f"<{unsubscribe}>")
    assert wmsg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    wbody = wmsg.get_content()
    assert "김하늘님, 환영합니다." in wbody and unsubscribe in wbody and "/p/" in wbody

    again = site.confirm(link)  # a second click: fine, and no second welcome
    assert again.status_code == 200 and "이미 구독 중입니다" in again.text
    assert len(site.mails) == 2
    assert site.store.subscriber(NEW) == sub


def test_english_site_sends_english_mails(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path, smtp_server, extra=SIGNUP)
    path.write_text(
        path.read_text("utf-8").replace('language = "ko"\npostal', 'language = "en"\npostal'),
        "utf-8",
    )
    for site in open_site(path, smtp_server):
        assert "Email address" in site.call("GET", "/subscribe").text
        assert "Check your inbox" in site.sign_up(NEW, theme="ai").text
        msg = site.mails[0].message
        assert decoded(msg["Subject"]) == "[해봄의 아카이브] Please confirm your subscription"
        assert "Themes: AI" in msg.get_content()
        assert "You are subscribed" in site.confirm(link_in(site.mails[0])).text
        assert "Welcome" in decoded(site.mails[1].message["Subject"])


def test_sign_up_is_off_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    config = load_config(web_config(tmp_path))
    store = WebStore(Store.from_config(config.store).engine)
    try:
        app = subscriber_app(config, store)

        async def go() -> list[int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://x.example") as c:
                return [
                    (await c.get("/subscribe")).status_code,
                    (await c.post("/subscribe", data={"email": NEW})).status_code,
                ]

        assert asyncio.run(go()) == [404, 404]
    finally:
        store.close()


# -- links that do not work -------------------------------------------------------------------


def test_expired_and_tampered_links_subscribe_nobody(site: Site) -> None:
    site.sign_up(NEW)
    good = parse_qs(urlsplit(link_in(site.mails[0])).query)["t"][0]
    head, mac = good.split(".")
    old = site.token(NEW, issued=time.time() - 49 * 3600)
    future = site.token(NEW, issued=time.time() + 3600)
    cases = {
        old: 410,
        future: 410,
        f"{head}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}": 404,
        f"{site.token('x@example.com').split('.')[0]}.{mac}": 404,  # another address, this MAC
        make_signup_token(b"another-secret", SignupClaim(NEW, "", (), int(time.time()))): 404,
        make_token(site.secret, "unsubscribe", NEW): 404,  # another kind of link
        site.token(NEW, themes=("no-such-theme",)): 404,
        "x" * 5000: 404,
        "": 404,
    }
    page = site.call("GET", f"/subscribe/confirm?t={good}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    for token, status in cases.items():
        got = site.call("GET", "/subscribe/confirm", params={"t": token})
        assert got.status_code == status, token
        posted = site.call(
            "POST", "/subscribe/confirm", data={"csrf": html.unescape(csrf[1]), "t": token}
        )
        assert posted.status_code == status, token
        assert "Traceback" not in posted.text
    assert "만료" in site.call("GET", "/subscribe/confirm", params={"t": old}).text
    # A forged form token, or one from another site's page, confirms nothing either.
    assert (
        site.call("POST", "/subscribe/confirm", data={"csrf": "1.x", "t": good}).status_code == 403
    )
    cross = site.call(
        "POST",
        "/subscribe/confirm",
        data={"csrf": html.unescape(csrf[1]), "t": good},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert site.store.subscriber(NEW) is None and site.store.subscriber("x@example.com") is None
    assert len(site.mails) == 1


# -- abuse ------------------------------------------------------------------------------------


def test_filled_honeypot_gets_the_same_answer_and_nothing_is_sent(site: Site) -> None:
    normal = site.sign_up(NEW)
    trapped = site.sign_up("bot.target@example.com", website="http://spam.example")
    assert trapped.status_code == normal.status_code == 200
    assert trapped.text == normal.text
    assert [m.rcpt_tos for m in site.mails] == [[NEW]]


def test_limit_per_address_sends_no_more_and_says_nothing(site: Site) -> None:
    answers = [site.sign_up(NEW, ip=f"203.0.113.{i}").text for i in range(5)]
    answers.append(site.sign_up(NEW.upper(), ip="203.0.113.50").text)  # same address, any case
    assert len(set(answers)) == 1
    assert len(site.mails) == 3  # signup.per_address = 3 (the default)
    assert len(site.sign_up("other@example.com", ip="203.0.113.9").text) > 0
    assert len(site.mails) == 4


def test_limit_per_ip(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path, smtp_server, extra=SIGNUP + "per_ip = 3\n")
    for site in open_site(path, smtp_server):
        for i in range(3):
            assert site.sign_up(f"reader{i}@example.com").status_code == 200
        blocked = site.sign_up("reader9@example.com")
        assert blocked.status_code == 429 and "요청이 너무 많습니다" in blocked.text
        assert blocked.headers["retry-after"] == "3600"
        assert site.sign_up("reader8@example.com", website="x").status_code == 429
        assert site.sign_up("reader7@example.com", ip="192.0.2.1").status_code == 200
        assert sorted(m.rcpt_tos[0] for m in site.mails) == [
            "reader0@example.com",
            "reader1@example.com",
            "reader2@example.com",
            "reader7@example.com",
        ]


def test_rate_limiter_window_and_memory_bound() -> None:
    limiter = RateLimiter(limit=2, window=60, max_keys=3)
    assert [limiter.hit("a", t) for t in (0, 1, 2)] == [True, True, False]
    assert limiter.hit("a", 60.5)  # the first hit has left the window
    assert not limiter.hit("a", 60.9)  # the second is still in it
    for key in "bcdef":
        limiter.hit(key, 70)
    assert len(limiter) == 3  # bounded: the keys seen least recently are forgotten
    assert limiter.hit("a", 70)


# -- suppressed and unsubscribed addresses ----------------------------------------------------


def test_suppressed_address_gets_no_mail_and_cannot_be_confirmed(site: Site) -> None:
    bounced = "bounced.reader@example.com"
    site.store.suppress(bounced, "bounced", "550 no such user")
    site.store.suppress("Complained@Example.com", "complained")
    fresh = site.sign_up(NEW)
    for address in (bounced, "complained@example.com"):
        answer = site.sign_up(address, theme="ai")
        assert answer.status_code == 200 and answer.text == fresh.text  # nothing given away
    assert [m.rcpt_tos for m in site.mails] == [[NEW]]
    # Even a valid link (made before the bounce, say) never lifts a bounce.
    page = site.call("GET", "/subscribe/confirm", params={"t": site.token(bounced)})
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    refused = site.call(
        "POST",
        "/subscribe/confirm",
        data={"csrf": html.unescape(csrf[1]), "t": site.token(bounced)},
    )
    assert refused.status_code == 409
    assert site.store.suppression(bounced) == "bounced"
    assert bounced not in {s.email for s in site.store.subscribers(active_only=True)}
    assert len(site.mails) == 1


def test_unsubscribed_reader_comes_back_only_through_their_inbox(site: Site) -> None:
    old_link = site.token(JUN, themes=("ai",), issued=time.time() - 3600)
    site.store.suppress(JUN, "unsubscribed", "web")
    answer = site.sign_up(JUN, theme="work")
    assert answer.text == site.sign_up(NEW).text
    assert site.store.suppression(JUN) == "unsubscribed"  # the form itself lifts nothing
    assert JUN not in {s.email for s in site.store.subscribers(active_only=True)}
    # A link made before the unsubscribe does not undo it.
    page = site.call("GET", "/subscribe/confirm", params={"t": old_link})
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    stale = site.call(
        "POST", "/subscribe/confirm", data={"csrf": html.unescape(csrf[1]), "t": old_link}
    )
    assert stale.status_code == 409 and site.store.suppression(JUN) == "unsubscribed"
    # The confirmation the form sent to JUN's own inbox does.
    mail = next(m for m in site.mails if m.rcpt_tos == [JUN])
    assert site.confirm(link_in(mail)).status_code == 200
    assert site.store.suppression(JUN) is None
    sub = site.store.subscriber(JUN)
    assert sub is not None and (sub.themes, sub.status) == (("work",), "active")
    assert sub.name == "박준"  # a sign-up without a name keeps the one the list gave
    assert [m.rcpt_tos for m in site.mails][-1] == [JUN]  # welcomed back
    assert decoded(site.mails[-1].message["Subject"]).endswith("구독해 주셔서 감사합니다")


def test_bad_form_input(site: Site) -> None:
    bad = site.sign_up("not an address")
    assert bad.status_code == 400 and "메일 주소를 확인해 주세요" in bad.text
    assert 'value="not an address"' in bad.text
    assert site.sign_up(NEW, theme="no-such-theme").status_code == 400
    assert site.call("POST", "/subscribe", data={}).status_code == 400
    injected = site.sign_up("a@example.com\r\nBcc: victim@example.com")
    assert injected.status_code == 400
    assert site.mails == []


def test_names_lose_control_characters(site: Site) -> None:
    site.sign_up(NEW, name="김\x00하늘\r\nBcc: victim@example.com\x7f")
    assert site.confirm(link_in(site.mails[0])).status_code == 200
    sub = site.store.subscriber(NEW)
    assert sub is not None and sub.name == "김 하늘 Bcc: victim@example.com"
    welcome = site.mails[1]
    assert welcome.rcpt_tos == [NEW] and b"\r\nBcc:" not in raw_headers(welcome)
    assert welcome.message["Bcc"] is None


# -- where the mails go -----------------------------------------------------------------------


def test_mail_server_down_still_answers_the_same(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path, smtp_server, extra=SIGNUP + "window_minutes = 1\n")
    text = path.read_text("utf-8").replace(f"port = {smtp_server.port}", f"port = {free_port()}")
    path.write_text(text, "utf-8")
    for site in open_site(path, smtp_server):
        answer = site.sign_up(NEW)
        assert answer.status_code == 200 and "메일함을 확인해 주세요" in answer.text
        assert site.mails == [] and site.store.subscriber(NEW) is None
        assert "sign-up confirmation mail not sent" in caplog.text


def test_embedded_catcher_keeps_the_mails_in_its_maildir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mailbox

    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path, extra=SIGNUP)
    config = load_config(path)
    store = WebStore(Store.from_config(config.store).engine)
    try:
        app = subscriber_app(config, store)

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://x.example") as c:
                home = await c.get("/")
                assert 'href="/digest/subscribe"' in home.text  # the home page links the form
                return await c.post("/subscribe", data={"email": NEW, "theme": "ai"})

        assert asyncio.run(go()).status_code == 200
        [(_key, msg)] = mailbox.Maildir(config.smtp.maildir, create=False).items()
        assert msg["To"] == NEW and "=?utf-8?" in msg["Subject"]
        assert decoded(msg["Subject"]).startswith("[해봄의 아카이브] 구독 확인")
    finally:
        store.close()


# -- the snippet for other sites --------------------------------------------------------------


def test_snippet_form_posts_from_another_site(site: Site) -> None:
    result = CliRunner().invoke(main, ["--config", str(site.path), "signup-snippet"])
    assert result.exit_code == 0, result.output
    snippet = result.stdout
    action = re.search(r'<form method="post" action="([^"]+)"', snippet)
    assert action and action[1] == "https://news.example/digest/subscribe"
    assert re.findall(r'name="theme" value="([^"]+)"', snippet) == [
        t.key for t in site.config.themes
    ]
    assert "<label hidden>" in snippet and 'name="website"' in snippet
    assert "<script" not in snippet and "style=" not in snippet
    names = set(re.findall(r'name="([^"]+)"', snippet))
    assert names == {"email", "theme", "website"}
    # What a browser on https://blog.example posts (cross-site: no CSRF token, foreign Origin).
    answer = site.call(
        "POST",
        "/subscribe",
        data={"email": NEW, "theme": "policy", "website": ""},
        headers={"Origin": "https://blog.example", "Referer": "https://blog.example/about"},
    )
    assert answer.status_code == 200 and [m.rcpt_tos for m in site.mails] == [[NEW]]
    assert site.confirm(link_in(site.mails[0])).status_code == 200
    sub = site.store.subscriber(NEW)
    assert sub is not None and sub.themes == ("policy",)

    some = CliRunner().invoke(
        main, ["--config", str(site.path), "signup-snippet", "--themes", "ai,work"]
    )
    assert some.exit_code == 0, some.output
    assert re.findall(r'name="theme" value="([^"]+)"', some.stdout) == ["ai", "work"]
    unknown = CliRunner().invoke(
        main, ["--config", str(site.path), "signup-snippet", "--themes", "nope"]
    )
    assert unknown.exit_code == 2 and "unknown theme 'nope'" in unknown.output


# -- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("per_ip = 0\n", "'signup.per_ip' must be between 1 and"),
        ("confirm_hours = 0.0\n", "'signup.confirm_hours' must be between"),
        ('enabled = "yes"\n', "'signup.enabled' must be true or false"),
        ("per_adress = 2\n", "unknown key 'signup.per_adress'"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[site]\nname = "T"\nurl = "https://t.example"\nsender = "T <d@t.example>"\n'
        f"[signup]\n{extra}",
        "utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_two_clicks_at_once_make_one_subscriber(site: Site) -> None:
    """Two confirmations of one new address at the same moment (a double click, a scanner and
    the reader): one adds the row, the other finds it; neither fails."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime
    from threading import Barrier

    issued = datetime.now(UTC).replace(microsecond=0)
    for i in range(8):
        email = f"twice{i}@example.com"
        barrier = Barrier(2)

        def click(email: str = email, barrier: Barrier = barrier) -> str:
            barrier.wait()
            return site.store.confirm_signup(email, "", ["ai"], issued)

        with ThreadPoolExecutor(2) as pool:
            results = sorted(f.result() for f in [pool.submit(click), pool.submit(click)])
        assert results == ["already", "new"], email
        assert [s.email for s in site.store.subscribers() if s.email == email] == [email]


def test_snippet_warns_when_sign_up_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    path = web_config(tmp_path)
    result = CliRunner().invoke(main, ["--config", str(path), "signup-snippet", "--themes", ""])
    assert result.exit_code == 0, result.output
    assert "signup.enabled is off" in result.stderr
    assert 'action="https://news.example/digest/subscribe"' in result.stdout
    assert 'name="theme"' not in result.stdout  # --themes "": no choice, every new post
