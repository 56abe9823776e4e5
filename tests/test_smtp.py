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
from tests.conftest import SMTPServer, free_port, running_smtp_server

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


def test_non_ascii_address_needs_smtputf8_and_never_sinks_the_connection() -> None:
    """Without SMTPUTF8 such a recipient fails (not a bounce, so nothing is suppressed) and
    the next message still goes out on the same connection; so does a malformed address."""

    async def run(server: SMTPServer) -> list[tuple[str, str, str]]:
        async with SMTPSender(server.host, server.port, concurrency=1) as sender:
            out = [
                await sender.send(envelope("민지@example.com")),
                await sender.send(envelope("bad <x>@example.com")),
                await sender.send(envelope("ok@example.com")),
            ]
            assert len(sender._open) == 1
        return [(o.status, o.reply, o.stage) for o in out]

    with running_smtp_server(enable_SMTPUTF8=False) as server:
        utf8, bad, ok = asyncio.run(run(server))
    assert utf8[0] == "failed" and "SMTPUTF8" in utf8[1] and utf8[2] == ""
    assert bad[0] == "failed" and "forbidden characters" in bad[1] and bad[2] == ""
    assert ok[0] == "sent"
    assert [m.rcpt_tos for m in server.handler.messages] == [["ok@example.com"]]


def test_non_ascii_address_goes_out_with_smtputf8(smtp_server: SMTPServer) -> None:
    async def run() -> str:
        async with SMTPSender(smtp_server.host, smtp_server.port, concurrency=1) as sender:
            return (await sender.send(envelope("민지@example.com"))).status

    assert asyncio.run(run()) == "sent"
    assert [m.rcpt_tos for m in smtp_server.handler.messages] == [["민지@example.com"]]


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    """aiosmtpd times idle sessions out (421, then hangs up), as Postfix does: the next
    messages, non-ASCII addresses included, go out on a fresh connection."""

    async def run(server: SMTPServer) -> list[str]:
        async with SMTPSender(server.host, server.port, concurrency=1) as sender:
            out = [await sender.send(envelope("ok@example.com"))]
            await asyncio.sleep(1.5)  # the server closes the pooled connection
            for rcpt in ("민지@example.com", "jimin@example.com"):
                out.append(await sender.send(envelope(rcpt)))
        return [o.status for o in out]

    with running_smtp_server(timeout=0.5) as server:
        assert asyncio.run(run(server)) == ["sent", "sent", "sent"]
    assert len(server.handler.messages) == 3
