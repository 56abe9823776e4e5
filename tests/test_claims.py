"""Many senders, one edition: rows are claimed, so two senders never send a row twice; a
sender that froze past its lease finds its rows taken over and stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.config import load_config
from digest.store import Store

from .test_delivery import RETRY_FAST, FaultHandler, counts, fault_server, setup  # noqa: F401

ENV = {**os.environ, "DIGEST_TEST_SECRET": "test-secret"}


def digest(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        env={**ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def record_only(config: Path) -> None:
    """Plan and record an edition whose rows all stay pending: a send to a server that is
    not there yet (rows recorded, then the run stops at once)."""
    store = Store.from_config(load_config(config).store)
    try:
        from datetime import UTC, datetime

        from digest.outbox import MessageFactory, record_edition
        from digest.pipeline import plan_edition

        cfg = load_config(config)
        from digest.subscribers import sync_list_files

        sync_list_files(cfg, store)
        edition = plan_edition(cfg, store, now=datetime.now(UTC))
        record_edition(edition, MessageFactory(cfg), store)
    finally:
        store.close()


def wait_for(predicate, seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_two_senders_share_one_edition_and_never_send_a_row_twice(
    tmp_path: Path,
    fault_server: tuple[FaultHandler, int],  # noqa: F811 (the fixture of test_delivery)
) -> None:
    handler, port = fault_server
    handler.data_delay = 0.01
    config, emails = setup(tmp_path, port, 300)
    record_only(config)
    first, second = digest(config, "send", "--resume"), digest(config, "send", "--resume")
    outputs = [p.communicate(timeout=180)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    got = Counter(handler.received)
    assert set(got) == set(emails)
    assert max(got.values()) == 1  # nobody twice
    # Both took part (each sent some), and the counters add up.
    sent_by = [int(o.split(" message(s) sent")[0].rsplit(" ", 1)[-1]) for o in outputs]
    assert all(n > 0 for n in sent_by) and sum(sent_by) == 300, outputs
    assert counts(config) == {"sent": 300}


def test_a_daily_limit_holds_across_two_senders(
    tmp_path: Path,
    fault_server: tuple[FaultHandler, int],  # noqa: F811 (the fixture of test_delivery)
) -> None:
    """Each sender checks the limit in the same transaction as its claim, counting what the
    other holds: together they send exactly the limit, never one more."""
    handler, port = fault_server
    handler.data_delay = 0.01
    config, _emails = setup(tmp_path, port, 120, extra=RETRY_FAST + "rate_per_day = 37\n")
    record_only(config)
    first, second = digest(config, "send", "--resume"), digest(config, "send", "--resume")
    outputs = [p.communicate(timeout=180)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    assert len(handler.received) == 37, outputs
    assert counts(config) == {"sent": 37, "pending": 83}
    assert all("stopped early" in o for o in outputs), outputs


def test_a_sender_that_froze_past_its_lease_stops_when_it_wakes(
    tmp_path: Path,
    fault_server: tuple[FaultHandler, int],  # noqa: F811 (the fixture of test_delivery)
) -> None:
    handler, port = fault_server
    handler.data_delay = 0.05
    handler.arrive_after = 10
    config, emails = setup(
        tmp_path, port, 120, extra="[delivery]\nlease_seconds = 3\nwait_for_retries_seconds = 30\n"
    )
    record_only(config)
    frozen = digest(config, "send", "--resume")
    other = None
    try:
        assert handler.arrived.wait(timeout=120)
        os.kill(frozen.pid, signal.SIGSTOP)  # and its worker: the whole group freezes
        for child in _children(frozen.pid):
            os.kill(child, signal.SIGSTOP)
        at_freeze = len(handler.received)
        time.sleep(3.5)  # its leases run out
        other = digest(config, "send", "--resume")
        out = other.communicate(timeout=180)[0]
        assert other.returncode == 0, out
    except BaseException:
        for child in _children(frozen.pid):
            os.kill(child, signal.SIGKILL)
        frozen.kill()  # a failure here leaves no process (nor its pipe) to the next test
        frozen.communicate(timeout=30)
        if other is not None and other.poll() is None:
            other.kill()
            other.communicate(timeout=30)
        raise
    finally:
        for child in _children(frozen.pid):
            os.kill(child, signal.SIGCONT)
        if frozen.poll() is None:
            os.kill(frozen.pid, signal.SIGCONT)
    woke = frozen.communicate(timeout=120)[0]
    # It learns its rows were taken over and stops, in one line, exit 75. On PostgreSQL the
    # server may have ended its session first (idle_in_transaction_session_timeout, when it
    # froze inside a transaction): the same stop, named as a store failure.
    assert frozen.returncode == 75, woke
    stops = ("taken over", "leases ran out", "what it did not record stays pending")
    assert any(s in woke for s in stops), woke
    assert len([line for line in woke.splitlines() if line.startswith("error:")]) == 1, woke
    got = Counter(handler.received)
    assert set(got) == set(emails)
    # At most the messages in flight at the freeze (3 connections) went twice.
    assert sum(n - 1 for n in got.values()) <= 3, (at_freeze, got.most_common(5))
    assert counts(config) == {"sent": 120}
    store = Store.from_config(load_config(config).store)
    try:
        with store.engine.connect() as conn:
            leased = conn.execute(
                sa.text("SELECT count(*) FROM deliveries WHERE lease_owner IS NOT NULL")
            ).scalar()
    finally:
        store.close()
    assert leased == 0


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
        ).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


def test_a_shared_store_gives_every_host_the_same_link_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.tokens import load_secret

    from .conftest import store_url, write_config

    if not store_url():
        pytest.skip("a SQLite store keeps its secret in a file beside it (test_store_files)")
    monkeypatch.delenv("DIGEST_TEST_SECRET", raising=False)
    hosts = [tmp_path / "a", tmp_path / "b"]
    secrets = []
    for folder in hosts:
        folder.mkdir()
        config = load_config(write_config(folder))
        secrets.append(load_secret(config))
        assert not list(folder.rglob("*.secret"))  # nothing on the host's disk
    assert secrets[0] == secrets[1] and len(secrets[0]) >= 32


def test_a_sender_whose_store_session_is_ended_stops_resumable(
    tmp_path: Path,
    fault_server: tuple[FaultHandler, int],  # noqa: F811 (the fixture of test_delivery)
) -> None:
    """An administrator's pg_terminate_backend (or the server ending a session that idled
    in a transaction past its lease) while a sender holds rows: the sender stops in one
    line with exit 75, and a resume finishes the edition, nothing lost."""
    from .conftest import store_url

    if not store_url():
        pytest.skip("a PostgreSQL session to end")
    handler, port = fault_server
    handler.data_delay = 0.05
    handler.arrive_after = 10
    config, emails = setup(tmp_path, port, 120, extra="[delivery]\nlease_seconds = 3\n")
    record_only(config)
    # libpq names the sender's sessions, so that only they are ended.
    sender = digest(config, "send", "--resume", env={"PGAPPNAME": "digest-sender-to-end"})
    try:
        assert handler.arrived.wait(timeout=120)
        store = Store.from_config(load_config(config).store)
        try:
            with store.engine.begin() as conn:
                ended = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = 'digest-sender-to-end'"
                    )
                ).scalar()
        finally:
            store.close()
        assert ended
        out = sender.communicate(timeout=120)[0]
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.communicate(timeout=30)
    assert sender.returncode == 75, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "digest send --resume" in errors[0], out
    assert "\n\t" not in out, out  # libpq's several lines are one
    resumed = digest(config, "send", "--resume")
    again = resumed.communicate(timeout=180)[0]
    assert resumed.returncode == 0, again
    got = Counter(handler.received)
    assert set(got) == set(emails)
    assert sum(n - 1 for n in got.values()) <= 3, got.most_common(5)  # those in flight
    assert counts(config) == {"sent": 120}


def test_a_slow_server_longer_than_a_lease_renews_it_and_finishes(
    tmp_path: Path,
    fault_server: tuple[FaultHandler, int],  # noqa: F811 (the fixture of test_delivery)
) -> None:
    """A claim takes longer to send than one lease (a slow server, a busy host): the sender
    renews its leases before they run out instead of stopping, and sends each message once."""
    handler, port = fault_server
    handler.data_delay = 0.2  # 16 rows claimed, 3 connections: about 1.1 s a claim
    config, emails = setup(tmp_path, port, 48, extra="[delivery]\nlease_seconds = 1\n")
    sender = digest(config, "send")
    out = sender.communicate(timeout=180)[0]
    assert sender.returncode == 0, out
    assert sorted(handler.received) == sorted(emails)  # each exactly once
    assert counts(config) == {"sent": 48}
