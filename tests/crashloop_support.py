"""Helpers for tests/test_crashloop.py, and the two programs it runs in other processes:

python tests/crashloop_support.py serve LOG
    An SMTP server (aiosmtpd) on 127.0.0.1, port 0; prints its port, then for every
    accepted message appends one JSON line per recipient to LOG (recipient, Message-ID
    and the post URLs of the text/plain part), flushed and fsynced BEFORE it answers
    250. LOG is the ground truth of what was delivered.

python tests/crashloop_support.py run-digest PROGRESS digest-args...
    `digest ...` (the real CLI, `digest.cli.main`) with phase markers: one line per
    event (`<time> ingest-start`, `plan-end`, `record-start`, `send-start`, ...) is
    appended to PROGRESS as it happens, so whoever kills the process knows which phase
    the kill hit. Nothing else is changed; a hook whose function no longer exists is
    left out and listed in the `hooks` line.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POST_URL = re.compile(r"https://crash\.example/posts/[a-z0-9-]+")

# -- the SMTP server ---------------------------------------------------------------------------


def post_urls(data: bytes) -> tuple[str | None, list[str]]:
    """(Message-ID, post URLs in order) of a message, read from its text/plain part."""
    import email
    from email import policy

    msg = email.message_from_bytes(data, policy=policy.compat32)
    text = ""
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                text += payload.decode(part.get_content_charset() or "utf-8", "replace")
    mid = msg.get("Message-ID")
    return (mid.strip() if mid else None), POST_URL.findall(text)


def serve(log_path: str) -> None:
    import asyncio

    from aiosmtpd.smtp import SMTP

    log = open(log_path, "ab")  # noqa: SIM115 (open for the life of the process)
    state = {"written": 0, "synced": 0}
    current: list[asyncio.Future[None]] = []  # the fsync under way, if any

    def start_sync() -> None:
        target = state["written"]

        def done(_: asyncio.Future[None]) -> None:
            state["synced"] = max(state["synced"], target)
            current.clear()

        future = asyncio.get_running_loop().run_in_executor(None, os.fsync, log.fileno())
        future.add_done_callback(done)
        current.append(future)

    async def durable(lines: bytes) -> None:
        """Append `lines` and return once they are on disk. Concurrent callers share one
        fsync (group commit, in a thread), so the event loop keeps serving the others."""
        log.write(lines)
        log.flush()
        state["written"] += 1
        mine = state["written"]
        while state["synced"] < mine:
            if not current:
                start_sync()
            future = current[0]
            if future.done():
                await asyncio.sleep(0)  # its callback has yet to record what it made durable
            else:
                await asyncio.shield(future)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            mid, urls = post_urls(envelope.content)
            lines = "".join(
                json.dumps({"rcpt": rcpt, "mid": mid, "urls": urls}) + "\n"
                for rcpt in envelope.rcpt_tos
            )
            await durable(lines.encode())  # on disk before the client can hear 250
            return "250 2.0.0 OK: queued"

    handler = Handler()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink.crash.example", decode_data=False),
            host="127.0.0.1",
            port=0,
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- the digest process, with phase markers ----------------------------------------------------

PHASES = ("ingest", "plan", "record", "send")


def run_digest(progress_path: str, args: list[str]) -> None:
    progress = open(progress_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def mark(event: str) -> None:
        progress.write(f"{time.time():.6f} {event}\n")
        progress.flush()  # in the kernel at once: a kill -9 cannot lose it

    mark("start")
    import importlib

    hooked: list[str] = []

    def wrap(module_name: str, attr: str, phase: str, owner: str | None = None) -> None:
        """Mark `phase`-start/-end around module_name.attr (or a method of class `owner`)."""
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return
        holder: Any = getattr(module, owner, None) if owner else module
        original = getattr(holder, attr, None) if holder is not None else None
        if original is None:
            return
        import inspect

        if inspect.iscoroutinefunction(original):

            async def async_wrapper(*a: Any, **k: Any) -> Any:
                mark(f"{phase}-start")
                try:
                    return await original(*a, **k)
                finally:
                    mark(f"{phase}-end")

            replacement: Callable[..., Any] = async_wrapper
        else:

            def wrapper(*a: Any, **k: Any) -> Any:
                mark(f"{phase}-start")
                try:
                    return original(*a, **k)
                finally:
                    mark(f"{phase}-end")

            replacement = wrapper
        setattr(holder, attr, replacement)
        # Modules that imported the function by name at import time see the wrapper too.
        if owner is None:
            for other in list(sys.modules.values()):
                if other is not module and getattr(other, attr, None) is original:
                    setattr(other, attr, replacement)
        hooked.append(f"{module_name}.{owner + '.' if owner else ''}{attr}")

    import digest.cli

    wrap("digest.ingest", "ingest_all", "ingest")
    wrap("digest.pipeline", "plan_edition", "plan")
    wrap("digest.outbox", "record_edition", "record")
    wrap("digest.outbox", "record_editions", "record")
    wrap("digest.store", "record_editions", "record", owner="Store")
    wrap("digest.store", "record_digest", "record", owner="Store")
    wrap("digest.send.workers", "deliver_in_workers", "send")
    mark("hooks " + ",".join(hooked))
    code: Any = 0
    try:
        digest.cli.main(args, prog_name="digest")
    except SystemExit as exc:
        code = exc.code
    mark(f"exit {code}")
    sys.exit(code)


@dataclass
class Progress:
    """What PROGRESS says about a digest process: the phase it was in when it stopped."""

    events: list[tuple[float, str]] = field(default_factory=list)
    hooks: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, path: Path) -> Progress:
        found = cls()
        if not path.exists():
            return found
        for line in path.read_text(encoding="utf-8").splitlines():
            stamp, _, event = line.partition(" ")
            if not event:
                continue  # a line cut by the kill
            if event.startswith("hooks "):
                found.hooks = {h for h in event[6:].split(",") if h}
            found.events.append((float(stamp), event))
        return found

    def names(self) -> list[str]:
        return [e for _, e in self.events]

    def depth(self) -> dict[str, int]:
        open_spans = dict.fromkeys(PHASES, 0)
        for _, event in self.events:
            phase, _, edge = event.rpartition("-")
            if phase in open_spans:
                open_spans[phase] += 1 if edge == "start" else -1
        return open_spans

    @property
    def phase(self) -> str:
        """startup, ingest, plan, record, send, or exited: the phase of the last event, the
        innermost open span winning (a record of a variant inside the record of an edition);
        between two spans, the phase that just ended (`plan` from its end until recording
        starts). After `send-end`, still `send`, but nothing is in flight any more."""
        current = "startup"
        stack: list[str] = []
        for _, event in self.events:
            if event.startswith("exit"):
                return "exited"
            phase, _, edge = event.rpartition("-")
            if phase not in PHASES:
                continue
            if edge == "start":
                stack.append(phase)
                current = phase
            else:
                if phase in stack:
                    stack.reverse()
                    stack.remove(phase)
                    stack.reverse()
                current = stack[-1] if stack else ("plan" if phase == "ingest" else phase)
        return current

    @property
    def sending(self) -> bool:
        """True while delivery workers may hold messages in flight."""
        return self.depth()["send"] > 0

    def started(self, phase: str) -> float | None:
        for stamp, event in self.events:
            if event == f"{phase}-start":
                return stamp
        return None

    def span(self, phase: str) -> float | None:
        """Seconds from the first start of `phase` to its last end, if both were written."""
        start = self.started(phase)
        ends = [s for s, e in self.events if e == f"{phase}-end"]
        return ends[-1] - start if start is not None and ends else None


# -- processes ---------------------------------------------------------------------------------


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group `pgid`."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry))
    return alive


def main() -> None:
    command, *rest = sys.argv[1:]
    if command == "serve":
        serve(rest[0])
    elif command == "run-digest":
        run_digest(rest[0], rest[1:])
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
