"""Structured logs: one line per event, `key=value` pairs (logfmt), always with `event=`.

    event=run_sent schedule=weekly period=2025-03-10T08:00 edition=20250309T230000Z-1a2b
        issue=12 sent=4 deferred=0 failed=0

Values with spaces or quotes are JSON-quoted, so every line splits the same way
(`journalctl -u digest -o cat | grep 'event=run_'`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("digest.schedule")


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        value = ",".join(str(v) for v in value)
    text = str(value)
    if not text or any(c in text for c in ' "=\\\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


def format_event(event: str, fields: dict[str, Any]) -> str:
    parts = [f"event={event}"]
    parts += [f"{k}={_value(v)}" for k, v in fields.items() if v is not None]
    return " ".join(parts)


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    if log.isEnabledFor(level):
        log.log(level, "%s", format_event(event, fields))


class StopSignal:
    """A stop request that crosses threads: set by a signal handler in the main thread, seen by
    the send running in a worker thread's event loop (as the `stop` event of
    `run_deliveries`) and by the scheduler loop."""

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._lock = threading.Lock()
        self._loops: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def is_set(self) -> bool:
        return self._requested.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._requested.wait(timeout)

    def request(self) -> None:
        with self._lock:
            self._requested.set()
            for loop, event in self._loops:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(event.set)

    @contextmanager
    def attached(self) -> Iterator[asyncio.Event]:
        """Inside a running event loop: an asyncio.Event set when a stop is requested."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._loops.append(entry)
            if self._requested.is_set():
                event.set()
        try:
            yield event
        finally:
            with self._lock:
                self._loops.remove(entry)
