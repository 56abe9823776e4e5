"""Shared fixtures: a real SMTP server (aiosmtpd) on 127.0.0.1 and a config in a temp folder."""

from __future__ import annotations

import contextlib
import email
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
        )
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
