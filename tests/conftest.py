"""Shared fixtures: a real SMTP server (aiosmtpd) on 127.0.0.1 and a config in a temp folder.

The store: the tests of the modules in `BOTH_STORES` run twice, on SQLite and on a real
PostgreSQL server, each test in a schema of its own. The server is named by the environment
variable DIGEST_TEST_PG (a SQLAlchemy URL; `.ci/run` starts Debian's PostgreSQL and sets it).
Without it the PostgreSQL runs are skipped, unless DIGEST_TEST_PG_REQUIRED=1 (set by CI), which
makes a missing server an error.
"""

from __future__ import annotations

import contextlib
import email
import os
import secrets
import shutil
import socket
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

PG_URL = os.environ.get("DIGEST_TEST_PG", "")
BOTH_STORES = {
    "test_approval",
    "test_bounces",
    "test_claims",
    "test_clicks",
    "test_cli",
    "test_crashloop",
    "test_delivery",
    "test_dkim",
    "test_e2e",
    "test_faults",
    "test_ingest",
    "test_ingest_http",
    "test_locks",
    "test_migrations",
    "test_schedule",
    "test_signup",
    "test_signup_browser",
    "test_subscribers",
    "test_trust",
    "test_variants",
    "test_web",
    "test_web_preview",
    "test_browser",
}
# The store URL of the running test when it runs on PostgreSQL ("" on SQLite).
_STORE_URL = {"url": ""}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    if module in BOTH_STORES:
        metafunc.parametrize("store_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(autouse=True)
def store_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLite, or a fresh schema on the PostgreSQL server for this one test. Autouse, so it
    is set up before every fixture that writes a config or opens a store."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield "sqlite"
        return
    if not PG_URL:
        if os.environ.get("DIGEST_TEST_PG_REQUIRED") == "1":
            pytest.fail("DIGEST_TEST_PG is not set, and CI requires the PostgreSQL runs")
        pytest.skip("no PostgreSQL server: set DIGEST_TEST_PG (see .ci/run)")
    import sqlalchemy as sa

    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    _STORE_URL["url"] = url.render_as_string(hide_password=False)
    try:
        yield "postgresql"
    finally:
        _STORE_URL["url"] = ""
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def store_url() -> str:
    """The running test's PostgreSQL URL, or "" when it runs on SQLite."""
    return _STORE_URL["url"]


def open_test_store(folder: Path) -> Any:
    """A store for a test that makes its own: SQLite in `folder`, or the test's schema."""
    from digest.store import Store

    url = store_url()
    return Store.from_url(url) if url else Store.open(folder / "db.sqlite3")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class RecordingHandler:
    """Accepts every message; addresses in `reject` get a 550 at RCPT."""

    messages: list[Received] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.reject:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return "250 OK queued"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SMTPServer:
    host: str
    port: int
    handler: RecordingHandler


@contextlib.contextmanager
def running_smtp_server(
    handler: RecordingHandler | None = None, **options: Any
) -> Iterator[SMTPServer]:
    """A real aiosmtpd server on a free local port (`options` go to its Controller)."""
    handler = handler or RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False, **options)
    controller.start()
    try:
        yield SMTPServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    with running_smtp_server() as server:
        yield server


SUBSCRIBERS = """\
email,name,themes,language,status
minji.kim@example.com,김민지,,ko,active
jun.park@example.com,박준,ai,ko,active
seoyeon.lee@example.com,이서연,"economy,humanities",ko,active
alex.morgan@example.org,Alex Morgan,ai,en,active
paused.reader@example.com,정쉬는,,ko,paused
"""


def write_config(
    folder: Path,
    *,
    smtp: str = 'host = "embedded"\nmaildir = "var/mail"',
    feed: Path | None = None,
    extra: str = "",
) -> Path:
    """A config in `folder` like the sample one, with its own store, feed copy and list."""
    feed_copy = folder / "feed.atom"
    shutil.copy(feed or ROOT / "samples" / "haebom" / "feed.atom", feed_copy)
    (folder / "subscribers.csv").write_text(SUBSCRIBERS, encoding="utf-8")
    sample = (ROOT / "config.toml").read_text(encoding="utf-8")
    themes = sample[sample.index("[[themes]]") : sample.index("[[schedules]]")]
    path = folder / "config.toml"
    path.write_text(
        textwrap.dedent(
            """\
            [site]
            name = "해봄의 아카이브"
            url = "https://haebom.example"
            sender = "해봄의 아카이브 <digest@haebom.example>"
            timezone = "Asia/Seoul"
            language = "ko"
            postal_address = "서울특별시 중구 세종대로 110"

            [store]
            path = "var/digest.sqlite3"
            {store_url}

            [web]
            base_url = "https://news.example/digest"
            secret_env = "DIGEST_TEST_SECRET"

            [subscribers]
            files = ["subscribers.csv"]

            [[sources]]
            name = "haebom"
            url = "feed.atom"
            language = "ko"
            replay = true

            [smtp]
            """
        ).replace("{store_url}", f"url = {store_url()!r}".replace("'", '"') if store_url() else "")
        + smtp
        + "\n\n"
        + themes
        + extra,
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    return write_config(tmp_path)
