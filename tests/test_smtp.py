"""The SMTP sender against a real aiosmtpd server."""

from __future__ import annotations

import asyncio

import pytest

from digest.compose.message import Envelope
from digest.errors import SMTPConnectError
from digest.send.smtp import SMTPSender
from tests.conftest import SMTPServer, free_port

DATA = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nbody\r\n"


def envelope(rcpt: str) -> Envelope:
    return Envelope("digest@example.com", rcpt, f"<{rcpt}>", DATA)


def test_sends_reuses_connections_and_classifies_replies(smtp_server: SMTPServer) -> None:
    smtp_server.handler.reject.add("gone@example.com")

    async def run() -> list[str]:
        async with SMTPSender(smtp_server.host, smtp_server.port, concurrency=2) as sender:
            outcomes = await asyncio.gather(
                *(sender.send(envelope(f"r{i}@example.com")) for i in range(10)),
                sender.send(envelope("gone@example.com")),
            )
            assert len(sender._open) <= 2  # connections are reused, never more than asked
        return [o.status for o in outcomes]

    statuses = asyncio.run(run())
    assert statuses == ["sent"] * 10 + ["failed"]
    assert len(smtp_server.handler.messages) == 10


def test_unreachable_server_fails_fast() -> None:
    port = free_port()

    async def run() -> None:
        async with SMTPSender("127.0.0.1", port, timeout=3):
            pass

    with pytest.raises(SMTPConnectError, match=f"127.0.0.1:{port}"):
        asyncio.run(run())
