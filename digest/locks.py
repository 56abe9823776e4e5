"""Database-wide locks: rows of the lock table with a holder (pid, host) and a heartbeat.

Two are used. "scheduler": one `digest schedule` per database (digest.scheduling.service).
"sender": one process delivering from a database at a time (`sending`), so that a
`digest send` and a scheduled run, or two `digest send --resume`, never take the same due rows
and send them twice.

A holder counts as gone when its process is dead (same host) or its heartbeat is older than
the stale time (another host, or a container that came back under a new hostname).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from digest.errors import DeliveryError
from digest.process import pid_alive
from digest.stop import StopSignal
from digest.store import SchedulerLock, Store

log = logging.getLogger("digest.locks")

SEND_LOCK = "sender"
SEND_STALE_SECONDS = 120.0
BEAT_SECONDS = 5.0


def stale_reason(lock: SchedulerLock, now: datetime, stale_after: float) -> str | None:
    """Why the lock's holder is gone, or None if it may still be running."""
    if lock.host == socket.gethostname() and lock.pid != os.getpid() and not pid_alive(lock.pid):
        return f"process {lock.pid} on {lock.host} is gone"
    age = (now - lock.heartbeat).total_seconds()
    if age > stale_after:
        return f"no heartbeat for {age:.0f}s (stale after {stale_after:.0f}s)"
    return None


class SendBusy(DeliveryError):
    """Another live process holds the database's send lock."""


# Send-lock tokens held by this process: a holder with this process's pid but a token not in
# here is an earlier incarnation (a container restarted with the same hostname and pid).
_HELD: set[str] = set()
# A holder whose pid is alive on this host is never replaced for a late heartbeat alone (it
# may be suspended, and would go on sending when it wakes), unless the heartbeat is this old:
# then the pid has most likely been reused by an unrelated process.
PID_REUSE_SECONDS = 1800.0


def send_holder_gone(lock: SchedulerLock, now: datetime, stale_after: float) -> str | None:
    """Why the send lock's holder is gone, or None if it may still be sending."""
    age = (now - lock.heartbeat).total_seconds()
    if lock.host == socket.gethostname():
        if lock.pid == os.getpid():
            # Ours if the token is held here; otherwise an earlier process that had this pid
            # (a restarted container), or one in another container with the same hostname
            # and pid: only its heartbeat can tell.
            if lock.owner in _HELD or age <= stale_after:
                return None
            return f"no heartbeat for {age:.0f}s (an earlier process with this pid)"
        if not pid_alive(lock.pid):
            return f"process {lock.pid} on {lock.host} is gone"
        if age > PID_REUSE_SECONDS:
            return f"no heartbeat for {age:.0f}s (pid {lock.pid} reused)"
        return None
    if age > stale_after:
        return f"no heartbeat for {age:.0f}s (stale after {stale_after:.0f}s)"
    return None


def take_send_lock(store: Store, owner: str, now: datetime, stale_after: float) -> None:
    """Hold the send lock as `owner`, replacing a holder that is gone; SendBusy otherwise."""
    pid, host = os.getpid(), socket.gethostname()
    for _ in range(3):
        holder = store.scheduler_lock(SEND_LOCK)
        if holder is None:
            if store.take_scheduler_lock(
                owner, pid=pid, host=host, now=now, replacing=None, name=SEND_LOCK
            ):
                return
            continue
        reason = send_holder_gone(holder, now, stale_after)
        if reason is None:
            raise SendBusy(
                f"{store.engine.url.database}: another digest process is sending from this "
                f"database (pid {holder.pid} on {holder.host}, since "
                f"{holder.started:%Y-%m-%d %H:%M:%S} UTC); wait for it to finish, or stop it "
                "and run `digest send --resume`"
            )
        if store.take_scheduler_lock(
            owner, pid=pid, host=host, now=now, replacing=holder, name=SEND_LOCK
        ):
            log.warning("event=send_lock_taken_over previous_pid=%s reason=%s", holder.pid, reason)
            return
    raise SendBusy(f"{store.engine.url.database}: another process is starting to send right now")


@contextmanager
def sending(
    store: Store, *, stale_after: float = SEND_STALE_SECONDS, stop: StopSignal | None = None
) -> Iterator[None]:
    """Hold the database's send lock for the block, with a heartbeat thread beating it.

    When the lock is lost (another process judged this one gone and took it over), `stop`
    is requested: the send stops, what it sent is recorded, the rest stays pending."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    # In `_HELD` before the row exists and until after it is gone: another thread of this
    # process must never see our row without our token and think its holder gone.
    _HELD.add(owner)
    try:
        take_send_lock(store, owner, datetime.now(UTC), stale_after)
    except BaseException:
        _HELD.discard(owner)
        raise
    done = threading.Event()

    def beat() -> None:
        # Often enough that a lost lock stops the send within seconds; a beat is one UPDATE.
        while not done.wait(min(stale_after / 4, BEAT_SECONDS)):
            try:
                if not store.beat_scheduler_lock(owner, datetime.now(UTC), name=SEND_LOCK):
                    log.error("event=send_lock_lost owner=%s", owner)
                    if stop is not None:
                        stop.request("another process took the send lock over")
                    return
            except Exception:  # a busy database: the next beat tries again
                log.exception("event=send_lock_beat_failed")

    thread = threading.Thread(target=beat, name="digest-send-lock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        try:
            store.release_scheduler_lock(owner, name=SEND_LOCK)
        except Exception:  # never hide what happened in the block; a stale lock is taken over
            log.exception("event=send_lock_release_failed owner=%s", owner)
        finally:
            _HELD.discard(owner)
