"""A sender that writes each message into a Maildir folder (and the catcher's storage)."""

from __future__ import annotations

import mailbox
from pathlib import Path

from digest.compose.message import Envelope
from digest.send import Outcome


def open_maildir(path: Path) -> mailbox.Maildir:
    """The Maildir at `path`, with its tmp/new/cur folders created if missing."""
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(path, create=False)


class MaildirSender:
    def __init__(self, path: Path) -> None:
        self.box = open_maildir(path)

    async def __aenter__(self) -> MaildirSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, envelope: Envelope) -> Outcome:
        name = self.box.add(envelope.data)
        return Outcome("sent", f"250 stored as {name}")
