"""The SMTP sender (aiosmtplib): a small pool of reused connections, timeouts on every call.

A 2xx reply is `sent`, 4xx `deferred`, 5xx `failed`. A dropped connection or a timeout means
the message's fate is unknown: the connection is discarded (never reused after a timeout),
the message is retried once on a fresh connection if it was not yet written (an idle
connection the server had closed) and otherwise left `deferred`, so a later run retries it
rather than dropping it; never sent twice in a row when the server may already have it.

A server that cannot take mail at all (no connection, a 421 greeting or reply) opens the
sender's circuit breaker: every `send` answers "unavailable" at once, without touching the
network, until a growing pause (1 s, 2 s, 4 s ... 30 s) is over and one connection may try
again. "Unavailable" is not the recipient's attempt: the delivery loop leaves the row pending
and waits (digest.send.delivery).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from pathlib import Path
from types import TracebackType

import aiosmtplib

from digest.compose.message import Envelope
from digest.config import SMTPConfig
from digest.errors import SMTPConnectError
from digest.send import Outcome

_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")
BREAKER_FIRST = 1.0  # seconds the breaker stays open after the first failure in a row
BREAKER_MAX = 30.0
_BAD_ADDRESS = re.compile(r"[\x00-\x20<>\x7f]")


class _NotSendable(Exception):
    """This envelope cannot go to this server as it is: failed, not retried."""


class _FateUnknown(Exception):
    """The connection failed after the message was written: the server may have taken it."""


def wire_data(message: bytes, *, crlf: bool = False) -> bytes:
    """The DATA payload for `message`: CRLF line ends, dot-stuffed, ended by CRLF.CRLF.

    What aiosmtplib's `data()` does with two regex passes over the whole message (about
    2 ms for a 60 KB digest, most of a send's CPU), done with one C byte replace. `crlf`
    says the message is known to end every line in CRLF (our own builds); otherwise bare
    CRs and LFs are looked for and fixed.
    """
    if not crlf:
        crlf_count = message.count(b"\r\n")
        if message.count(b"\n") != crlf_count or message.count(b"\r") != crlf_count:
            message = _LINE_ENDINGS.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def _reply(code: int, message: str) -> str:
    return f"{code} {message}".strip()


def _classify(code: int, message: str, stage: str = "") -> Outcome:
    if 200 <= code < 300:
        return Outcome("sent", _reply(code, message), stage)
    if 400 <= code < 500:
        return Outcome("deferred", _reply(code, message), stage)
    return Outcome("failed", _reply(code, message), stage)


def _stage(exc: aiosmtplib.SMTPResponseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return "mail"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return "data"
    return ""


def _drop(client: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None) -> None:
    """Close `client` and its socket now. aiosmtplib's `close()` (also called by `quit()` and
    on a 421 or a timeout) closes a TLS connection politely: the socket stays open until the
    server's close_notify arrives, and a loop that ends first (asyncio.run) leaves it open
    until the garbage collector finds it. So the transport kept from `_connect` is aborted
    (the socket closed on the loop's next turn), as smtplib closes after QUIT."""
    client.close()
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()


class SMTPSender:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "none",
        username: str = "",
        password: str | None = None,
        timeout: float = 30.0,
        concurrency: int = 2,
        ca_file: Path | None = None,
        fail_fast: bool = True,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.concurrency = concurrency
        # Certificates are always verified; a private relay's CA can be added, never skipped.
        self.tls_context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(concurrency)
        # Each open connection's transport, as connected (TLS included): see `_discard`.
        self._open: dict[aiosmtplib.SMTP, asyncio.BaseTransport | None] = {}
        # `__aenter__` raises when the server cannot be reached at all (a wrong host, nothing
        # listening), unless `fail_fast` is off; a busy server (4xx, timeout) never raises.
        self.fail_fast = fail_fast
        self._down_until = 0.0  # monotonic; the breaker is open before then
        self._down_reason = ""
        self._failures = 0  # unavailable answers in a row

    @classmethod
    def from_config(
        cls, smtp: SMTPConfig, host: str, port: int, *, fail_fast: bool = True
    ) -> SMTPSender:
        return cls(
            host,
            port,
            security=smtp.security,
            username=smtp.username,
            password=smtp.password(),
            timeout=smtp.timeout,
            concurrency=smtp.concurrency,
            ca_file=smtp.ca_file,
            fail_fast=fail_fast,
        )

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            use_tls=self.security == "tls",
            start_tls={"starttls": True, "starttls-optional": None}.get(self.security, False),
            tls_context=self.tls_context,
        )
        try:
            await client.connect()
            if self.username:
                await client.login(self.username, self.password or "")
            if client.is_ehlo_or_helo_needed:  # `_transaction` relies on a greeted session
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
        except (aiosmtplib.SMTPException, OSError) as exc:
            _drop(client, client.transport)
            error = SMTPConnectError(f"SMTP server {self.host}:{self.port}: cannot connect: {exc}")
            code = getattr(exc, "code", 0)
            error.transient = 400 <= code < 500 or isinstance(exc, TimeoutError)
            raise error from None
        self._open[client] = client.transport
        self._failures = 0
        return client

    def _trip(self, reason: str) -> Outcome:
        """Open the breaker after a failure to reach the server; the answer for this send."""
        self._failures += 1
        pause = min(BREAKER_FIRST * 2 ** (self._failures - 1), BREAKER_MAX)
        self._down_until = time.monotonic() + pause
        self._down_reason = reason
        return self._unavailable()

    def _unavailable(self) -> Outcome:
        left = max(self._down_until - time.monotonic(), 0.0)
        return Outcome("deferred", self._down_reason, "unavailable", retry_after=left)

    def _discard(self, client: aiosmtplib.SMTP) -> None:
        _drop(client, self._open.pop(client, None))

    async def __aenter__(self) -> SMTPSender:
        # Fail fast, before any delivery row changes, when the server is unreachable; a busy
        # one (a 421 greeting, a timeout) only opens the breaker: the send waits for it.
        try:
            self._idle.put_nowait(await self._connect())
        except SMTPConnectError as exc:
            if self.fail_fast and not exc.transient:
                raise
            self._trip(str(exc))
        return self

    async def _quit(self, client: aiosmtplib.SMTP) -> None:
        """Say QUIT (briefly) and drop the connection, whatever the server does."""
        try:
            if client.is_connected:
                await asyncio.wait_for(client.quit(), timeout=min(self.timeout, 5.0))
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            self._discard(client)

    async def release(self) -> None:
        """Close the idle connections (a later `send` opens new ones), so that other
        processes can use the server's connection budget meanwhile."""
        while not self._idle.empty():
            await self._quit(self._idle.get_nowait())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for client in list(self._open):
            await self._quit(client)

    async def send(self, envelope: Envelope) -> Outcome:
        async with self._slots:
            for attempt in (1, 2):
                if time.monotonic() < self._down_until:
                    return self._unavailable()
                try:
                    client = self._idle.get_nowait()
                except asyncio.QueueEmpty:
                    try:
                        client = await self._connect()
                    except SMTPConnectError as exc:
                        return self._trip(str(exc))
                try:
                    reply = await self._transaction(client, envelope)
                except _FateUnknown as exc:
                    # Never sent again at once: the server may have it. Deferred (a later
                    # try counts as an attempt), like any lost connection.
                    self._discard(client)
                    return Outcome("deferred", f"connection lost after the message was sent: {exc}")
                except _NotSendable as exc:
                    self._idle.put_nowait(client)  # still connected, and nothing was sent on it
                    return Outcome("failed", str(exc))
                except aiosmtplib.SMTPResponseException as exc:
                    if exc.code == 421:
                        # The server is closing the connection (shutting down, throttling):
                        # nothing was accepted, and it is not this recipient's attempt.
                        self._discard(client)
                        return self._trip(_reply(exc.code, exc.message))
                    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
                        await self._reset(client)
                        return _classify(exc.code, exc.message, "rcpt")
                    if not client.is_connected:
                        self._discard(client)
                    else:
                        await self._reset(client)
                    return _classify(exc.code, exc.message, _stage(exc))
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    # Fate unknown: drop this connection and retry once on a new one.
                    self._discard(client)
                    if attempt == 2:
                        return Outcome("deferred", f"connection lost: {exc}")
                    continue
                self._idle.put_nowait(client)
                return Outcome("sent", _reply(reply.code, reply.message) or "250")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _transaction(
        self, client: aiosmtplib.SMTP, envelope: Envelope
    ) -> aiosmtplib.SMTPResponse:
        """MAIL, RCPT, DATA for one recipient.

        Not `sendmail` nor `data`: both run regex passes over every 60 KB message (SIZE,
        line endings, dot-stuffing) that cost more CPU than everything else in a send. The
        payload is prepared by `wire_data` instead and written on the connection's protocol
        after the server's 354, with the same timeout and the same errors as `data()`.
        """
        if not client.is_connected:
            # The server closed this pooled connection while it sat idle (its timeout, or a
            # 421): what it offered is forgotten, so nothing below may be judged on it.
            raise aiosmtplib.SMTPServerDisconnected("the server closed the idle connection")
        for address in (envelope.sender, envelope.recipient):
            if _BAD_ADDRESS.search(address):
                raise _NotSendable(f"not sent: address has forbidden characters: {address!r}")
        try:
            sender, recipient = envelope.sender.encode(), envelope.recipient.encode()
        except UnicodeEncodeError:
            raise _NotSendable("not sent: an address is not valid Unicode") from None
        utf8 = not (envelope.sender.isascii() and envelope.recipient.isascii())
        if utf8 and not client.supports_extension("smtputf8"):
            raise _NotSendable("not sent: the address is not ASCII and the server has no SMTPUTF8")
        options = [b"SIZE=%d" % len(envelope.data)] if client.supports_extension("size") else []
        if utf8:
            options.append(b"SMTPUTF8")
        # MAIL and RCPT with the addresses checked above (no spaces, brackets or control
        # characters): aiosmtplib's `mail`/`rcpt` would parse each again with email.utils,
        # which costs more than the rest of the envelope.
        mail = await client.execute_command(b"MAIL", b"FROM:<" + sender + b">", *options)
        if mail.code != 250:
            raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, envelope.sender)
        rcpt = await client.execute_command(b"RCPT", b"TO:<" + recipient + b">")
        if rcpt.code not in (250, 251):
            raise aiosmtplib.SMTPRecipientRefused(rcpt.code, rcpt.message, envelope.recipient)
        payload = wire_data(envelope.data, crlf=envelope.crlf)
        start = await client.execute_command(b"DATA")
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        protocol = client.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        protocol.write(payload)
        try:
            reply = await protocol.read_response(timeout=self.timeout)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise _FateUnknown(str(exc) or type(exc).__name__) from None
        if reply.code != 250:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        return reply

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.rset()
            self._idle.put_nowait(client)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self._discard(client)
