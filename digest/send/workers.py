"""Delivery in worker processes.

`digest send` plans in the main process, which holds the Korean analyzer (about 500 MB), and
records the edition; the messages then go out from `delivery.processes` fresh worker
processes that import only the outbox (about 50 MB each) and split the recipients by a
stored shard number. So memory stays flat whatever the list's size, and a send can use more
than one core: a message costs about 1 ms of CPU (2 ms with DKIM's RSA), so one process
alone stays well under what the wire allows.

Workers die with their parent (PR_SET_PDEATHSIG on Linux): after a `kill -9` of `digest send`
nothing keeps sending behind a later `--resume`. A stop (a signal, a lost lock, a failed
worker) lets the workers finish the messages in flight for up to `stop_timeout(config)`
seconds; then they are killed, and what they held stays pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Any

from digest.config import Config
from digest.errors import DeliveryError, DigestError, StoreError
from digest.send.delivery import DeliveryReport, resumable
from digest.store import Store

PR_SET_PDEATHSIG = 1


# In a worker: the parent's stop flag (a multiprocessing Event), or None.
_STOP: Any = None


def _init_worker(parent: int, stop_flag: Any) -> None:
    global _STOP
    _STOP = stop_flag
    # Ctrl-C reaches the whole process group; the parent turns it into a stop request, so
    # a worker finishes the messages in flight instead of dying between DATA and its record.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _peak_rss_kb() -> int:
    """This process's peak resident set since it started (VmHWM), 0 where /proc is absent."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


async def _watch_stop(stop: asyncio.Event) -> None:
    """Set `stop` when the parent asks the workers to stop: they finish the messages in
    flight and leave the rest pending, as a stopped send in one process does."""
    while not _STOP.is_set():
        await asyncio.sleep(0.2)
    stop.set()


def _work(
    config: Config, edition_id: str, host: str, port: int, shard: tuple[int, int]
) -> tuple[dict[str, int], list[tuple[str, str]], str, str, int]:
    from digest.outbox import MessageFactory, deliver_recorded
    from digest.send.smtp import SMTPSender

    store = Store.from_config(config.store)
    factory = MessageFactory(config)

    async def run() -> DeliveryReport:
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch_stop(stop))
        try:
            # Never fail fast here: the parent reached the server; a busy or restarting one
            # opens the breaker and the rows wait, pending.
            sender = SMTPSender.from_config(config.smtp, host, port, fail_fast=False)
            async with sender:
                return await deliver_recorded(
                    edition_id, factory, sender, store, shard=shard, stop=stop
                )
        finally:
            watcher.cancel()

    try:
        report = asyncio.run(run())
    finally:
        store.close()
    return (
        report.counts,
        report.failures[:200],
        report.limited,
        report.unavailable,
        _peak_rss_kb(),
    )


def stop_timeout(config: Config) -> float:
    """How long a stopping send waits for the messages in flight: one SMTP exchange."""
    return max(30.0, 2 * config.smtp.timeout + 10)


def deliver_in_workers(
    config: Config,
    edition_id: str,
    host: str,
    port: int,
    *,
    store: Store,
    on_progress: Callable[[DeliveryReport], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Deliver a recorded edition from `delivery.processes` worker processes. When `stop()`
    turns true (polled twice a second), when this thread is interrupted (Ctrl-C) or when a
    worker fails, the workers finish the messages in flight and leave the rest pending for
    a resume."""
    processes = config.delivery.processes
    # `smtp.concurrency` is the total number of connections, shared by the workers.
    per_worker = max(1, config.smtp.concurrency // processes)
    config = replace(config, smtp=replace(config.smtp, concurrency=per_worker))
    context = multiprocessing.get_context("spawn")
    stop_flag = context.Event()
    started = store.delivery_counts(edition_id)
    report = DeliveryReport()
    deadline: float | None = None  # monotonic: kill the workers after this
    pool = ProcessPoolExecutor(
        max_workers=processes,
        mp_context=context,
        initializer=_init_worker,
        initargs=(os.getpid(), stop_flag),
    )
    try:
        futures = [
            pool.submit(_work, config, edition_id, host, port, (i, processes))
            for i in range(processes)
        ]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5)
            if on_progress:
                on_progress(_progress(store, edition_id, started, report.started))
            failed = any(f.exception() is not None for f in done)
            if deadline is None and (failed or (stop is not None and stop())):
                stop_flag.set()  # the others finish what they hold and stop
                deadline = time.monotonic() + stop_timeout(config)
            if deadline is not None and pending and time.monotonic() > deadline:
                _kill(pool)  # their messages in flight stay pending: resumable
                break
    except BaseException as exc:
        stop_flag.set()  # interrupted: the workers settle their messages in flight
        _kill_after(pool, stop_timeout(config))
        if isinstance(exc, StoreError):
            raise resumable(exc) from None  # the progress read failed: resumable, exit 75
        raise
    pool.shutdown(wait=deadline is None or not pending, cancel_futures=True)
    for future in futures:
        if not future.done():
            continue  # killed after the stop timeout
        try:
            counts, failures, limited, unavailable, rss_kb = future.result()
        except DigestError:
            raise
        except BrokenProcessPool:
            if deadline is not None:
                continue  # killed after the stop timeout: its rows stay pending
            raise DeliveryError("a delivery worker died; its rows stay pending") from None
        except Exception as exc:  # a worker crashed: its rows stay resumable
            raise DeliveryError(f"a delivery worker failed: {exc!r}") from None
        for status, n in counts.items():
            report.counts[status] = report.counts.get(status, 0) + n
        report.failures.extend(failures)
        report.limited = report.limited or limited
        report.unavailable = report.unavailable or unavailable
        report.worker_peak_rss_kb = max(report.worker_peak_rss_kb, rss_kb)
    return report


def _kill(pool: ProcessPoolExecutor) -> None:
    # The executor has no public way to kill its processes; `_processes` is its own table.
    for process in list(getattr(pool, "_processes", {}).values()):
        with contextlib.suppress(Exception):
            process.kill()


def _kill_after(pool: ProcessPoolExecutor, seconds: float) -> None:
    """Wait up to `seconds` for the workers to finish, then kill them; never hangs."""
    end = time.monotonic() + seconds
    processes = list(getattr(pool, "_processes", {}).values())
    for process in processes:
        process.join(max(end - time.monotonic(), 0.0))
    _kill(pool)
    pool.shutdown(wait=False, cancel_futures=True)


def _progress(
    store: Store, edition_id: str, started: dict[str, int], since: float
) -> DeliveryReport:
    """A report read from the store: what the workers settled since the start."""
    now = store.delivery_counts(edition_id)
    report = DeliveryReport(started=since)
    for status in ("sent", "failed"):
        report.counts[status] = now.get(status, 0) - started.get(status, 0)
    report.counts["deferred"] = now.get("deferred", 0)
    return report
