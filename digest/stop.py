"""A stop request that crosses threads and event loops (signals, a lost lock, a scheduler)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Stopped by a signal: the shell's convention, 128 + the signal's number.
SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}


class StopSignal:
    """A stop request that crosses threads: set by a signal handler in the main thread, seen by
    the send running in a worker thread's event loop (as the `stop` event of
    `run_deliveries`) and by the scheduler loop."""

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._lock = threading.Lock()
        self._loops: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.reason = ""  # why the first request came (a signal, a lost lock)

    def is_set(self) -> bool:
        return self._requested.is_set()

    def exit_code(self) -> int:
        """The exit code of a process that stopped for this request: 130 or 143 for a
        signal, 75 (try again later) for anything else (a lost lock)."""
        return SIGNAL_EXIT.get(self.reason.split(" ")[0], 75)

    def wait(self, timeout: float | None = None) -> bool:
        return self._requested.wait(timeout)

    def request(self, reason: str = "") -> None:
        with self._lock:
            if not self._requested.is_set():
                self.reason = reason
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
