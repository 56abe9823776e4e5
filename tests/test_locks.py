"""The database's send lock (digest.locks): who may take it over, and when."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.locks import SendBusy, sending, take_send_lock
from digest.store import Store

from .conftest import open_test_store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_test_store(tmp_path)


def test_same_pid_with_another_token_is_only_replaced_for_its_heartbeat(store: Store) -> None:
    """Same hostname and pid but not our token: a restarted container, or another container
    with the same hostname running as the same pid. Only the heartbeat can tell them apart."""
    now = datetime.now(UTC)
    host, pid = socket.gethostname(), os.getpid()
    store.take_scheduler_lock("twin", pid=pid, host=host, now=now, replacing=None, name="sender")
    with pytest.raises(SendBusy):
        take_send_lock(store, "me", now + timedelta(seconds=30), 120.0)
    take_send_lock(store, "me", now + timedelta(seconds=121), 120.0)
    holder = store.scheduler_lock("sender")
    assert holder is not None and holder.owner == "me"


def test_threads_of_one_process_never_take_each_others_lock(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A scheduled run and a retry job in two threads: one sends, the other is told busy;
    neither ever mistakes the other's live lock for one left by an earlier process."""
    caplog.set_level(logging.WARNING, logger="digest.locks")
    inside, overlaps = [0], [0]
    guard = threading.Lock()

    def job() -> None:
        for _ in range(100):
            try:
                with sending(store):
                    with guard:
                        inside[0] += 1
                        overlaps[0] += inside[0] > 1
                    with guard:
                        inside[0] -= 1
            except SendBusy:
                pass

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=job) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert overlaps[0] == 0
    assert not [r for r in caplog.records if "taken_over" in r.getMessage()]
    assert store.scheduler_lock("sender") is None
