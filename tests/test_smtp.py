"""The SMTP sender against a real aiosmtpd server."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from digest.compose.message import Envelope
from digest.errors import SMTPConnectError
from digest.send.smtp import SMTPSender, wire_data
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


def _aiosmtplib_payload(message: bytes) -> bytes:
    """What aiosmtplib's own `data()` puts on the wire for `message`."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message)) + b".\r\n"


def test_wire_data_matches_aiosmtplib_on_every_kind_of_line_end_and_leading_dot() -> None:
    alphabet = [b"\r", b"\n", b".", b"a", b"\r\n"]
    cases = [b"".join(p) for n in range(5) for p in itertools.product(alphabet, repeat=n)]
    rng = random.Random(7)
    cases += [b"".join(rng.choice(alphabet) for _ in range(rng.randrange(200))) for _ in range(500)]
    for case in cases:
        assert wire_data(case) == _aiosmtplib_payload(case), case


def test_leading_dots_and_stray_line_ends_arrive_intact(smtp_server: SMTPServer) -> None:
    body = b".starts with a dot\r\n.\r\n..two\r\nbare lf\nbare cr\rend"
    data = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: dots\r\n\r\n" + body

    async def run() -> None:
        async with SMTPSender(smtp_server.host, smtp_server.port, concurrency=1) as sender:
            outcome = await sender.send(Envelope("a@example.com", "b@example.com", "<d>", data))
            assert outcome.status == "sent", outcome

    asyncio.run(run())
    (received,) = smtp_server.handler.messages
    expected = b".starts with a dot\r\n.\r\n..two\r\nbare lf\r\nbare cr\r\nend\r\n"
    assert received.data.split(b"\r\n\r\n", 1)[1] == expected
