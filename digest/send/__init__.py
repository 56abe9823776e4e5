"""Outputs that deliver composed messages: SMTP, a Maildir folder, or memory (tests).

Every backend is an async context manager with `send(envelope) -> Outcome`; a failure for
one recipient is an Outcome, never an exception, so one bad address cannot sink the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from digest.compose.message import Envelope


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | deferred | failed
    reply: str  # the server's reply, or the reason
    # Where a refusal came: mail, rcpt, data; "unavailable" when the server could not take
    # any message (down, refusing connections, 421): not the recipient's attempt.
    stage: str = ""
    retry_after: float = 0.0  # unavailable: seconds before the server is worth trying again


class Sender(Protocol):
    async def __aenter__(self) -> Sender: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def send(self, envelope: Envelope) -> Outcome: ...


class MemorySender:
    """Keeps every message in a list: the fake beside the real senders."""

    def __init__(self) -> None:
        self.sent: list[Envelope] = []

    async def __aenter__(self) -> MemorySender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, envelope: Envelope) -> Outcome:
        self.sent.append(envelope)
        return Outcome("sent", "250 kept in memory")
