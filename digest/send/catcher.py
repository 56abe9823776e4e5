"""The built-in local mail catcher: a real SMTP server (aiosmtpd) on 127.0.0.1.

Started when the config says `host = "embedded"`; every message it accepts is stored in the
configured Maildir, where a person can open it (`new/` holds one RFC 5322 file per message).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope as ServerEnvelope
from aiosmtpd.smtp import Session

from digest.config import Config
from digest.send.maildir import open_maildir


class _MaildirHandler:
    def __init__(self, path: Path) -> None:
        self.box = open_maildir(path)
        self.received = 0

    async def handle_DATA(
        self, server: SMTPServer, session: Session, envelope: ServerEnvelope
    ) -> str:
        data = envelope.original_content or b""
        if isinstance(data, str):
            data = data.encode()
        recipients = ", ".join(envelope.rcpt_tos)
        header = f"X-Digest-Catcher-To: {recipients}\r\n".encode()
        self.box.add(header + data)
        self.received += 1
        return "250 OK stored"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MailCatcher:
    """`with MailCatcher(maildir) as catcher:` serves on catcher.host:catcher.port."""

    def __init__(self, maildir: Path, port: int = 0) -> None:
        self.maildir = maildir
        self.host = "127.0.0.1"
        self.port = port or _free_port()
        self.handler = _MaildirHandler(maildir)
        self._controller: Controller | None = None

    def __enter__(self) -> MailCatcher:
        controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            decode_data=False,
            data_size_limit=50 * 1024 * 1024,
        )
        controller.start()
        self._controller = controller
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> int:
        return self.handler.received

    def __repr__(self) -> str:  # pragma: no cover
        return f"MailCatcher({self.host}:{self.port} -> {self.maildir})"


@contextmanager
def smtp_endpoint(config: Config) -> Iterator[tuple[str, int]]:
    """The SMTP host and port to use; starts the embedded mail catcher when configured."""
    if not config.smtp.embedded:
        yield config.smtp.host, config.smtp.port
        return
    with MailCatcher(config.smtp.maildir, config.smtp.port) as catcher:
        yield catcher.host, catcher.port
