"""`digest schedule`: runs driven by APScheduler's own job processing under a controlled clock
(time-machine), against a real SMTP server (aiosmtpd). No test waits for real time."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from click.testing import CliRunner

from digest.cli import main
from digest.config import Config, load_config
from digest.errors import DigestError
from digest.locks import sending
from digest.scheduling import runner
from digest.scheduling.events import StopSignal
from digest.scheduling.runner import RunContext, owner_token, run_period
from digest.scheduling.service import SchedulerService, run_scheduled_job
from digest.store import SchedulerLock, Store, schedule_runs
from tests.conftest import (
    RecordingHandler,
    SMTPServer,
    free_port,
    running_smtp_server,
    write_config,
)

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")
MONDAY_0700 = datetime(2025, 3, 3, 7, 0, tzinfo=SEOUL)  # a Monday
WEEKLY = """
[[schedules]]
name = "weekly"
cron = "weekly on monday at 08:00"
"""


def recipients(server: SMTPServer) -> list[str]:
    return [r for m in server.handler.messages for r in m.rcpt_tos]


class Harness:
    """A config, a store and the services started on it; everything closed at the end."""

    def __init__(self, tmp_path: Path, server: SMTPServer, schedules: str, smtp: str = "") -> None:
        self.path = write_config(
            tmp_path,
            smtp=f'host = "127.0.0.1"\nport = {server.port}\n{smtp}',
            extra=schedules,
        )
        self.server = server
        self.stores: list[Store] = []
        self.services: list[SchedulerService] = []

    @property
    def config(self) -> Config:
        return load_config(self.path)

    def store(self) -> Store:
        store = Store.from_config(self.config.store)
        self.stores.append(store)
        return store

    def service(self, **options: object) -> SchedulerService:
        """A scheduler as a separate process would have: its own store and owner token."""
        service = SchedulerService(self.config, self.store(), manual=True, **options)  # type: ignore[arg-type]
        self.services.append(service)
        return service

    def runs(self) -> list[tuple[str, str, str]]:
        store = self.stores[0] if self.stores else self.store()
        return [(r.schedule, r.period, r.status) for r in reversed(store.schedule_runs())]

    def close(self) -> None:
        for service in self.services:
            if service.started:
                service.close(timeout=0)
        for store in self.stores:
            store.close()


@pytest.fixture
def harness_factory(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[type[Harness]]:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    made: list[Harness] = []

    class Made(Harness):
        def __init__(self, schedules: str = WEEKLY, smtp: str = "") -> None:
            super().__init__(tmp_path, smtp_server, schedules, smtp)
            made.append(self)

    yield Made  # type: ignore[misc]
    for h in made:
        h.close()


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(MONDAY_0700, tick=False) as traveller:
        yield traveller


@pytest.fixture
def events(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="digest")
    return caplog


def lines(caplog: pytest.LogCaptureFixture, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"event={event} ")]


# -- the weekly run ---------------------------------------------------------------------------


def test_weekly_run_sends_once_at_its_time(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
    events: pytest.LogCaptureFixture,
) -> None:
    h = harness_factory()
    service = h.service()
    service.start()
    job = service.scheduler.get_job("schedule:weekly")
    assert job.next_run_time == datetime(2025, 3, 3, 8, 0, tzinfo=SEOUL)

    service.scheduler.tick()  # 07:00: nothing due
    assert h.server.handler.messages == [] and h.runs() == []

    clock.move_to(datetime(2025, 3, 3, 8, 0, 1, tzinfo=SEOUL))
    service.scheduler.tick()
    assert sorted(recipients(h.server)) == sorted(
        ["minji.kim@example.com", "jun.park@example.com", "seoyeon.lee@example.com",
         "alex.morgan@example.org"]
    )  # fmt: skip
    assert h.runs() == [("weekly", "2025-03-03T08:00", "sent")]
    run = service.store.get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.counts["sent"] == 4 and len(run.editions) == 1
    assert run.scheduled == datetime(2025, 3, 2, 23, 0, tzinfo=UTC)

    # Structured: one line per event, with the schedule, the edition and the counts.
    (sent,) = lines(events, "edition_sent")
    assert "schedule=weekly period=2025-03-03T08:00" in sent
    assert f"edition={run.editions[0]}" in sent and "sent=4" in sent
    assert lines(events, "ingest")[0].startswith(
        "event=ingest schedule=weekly source=haebom new=35"
    )

    # Later the same morning: nothing more; the next run is next Monday.
    clock.move_to(datetime(2025, 3, 3, 11, 0, tzinfo=SEOUL))
    service.scheduler.tick()
    assert len(h.server.handler.messages) == 4
    job = service.scheduler.get_job("schedule:weekly")
    assert job.next_run_time == datetime(2025, 3, 10, 8, 0, tzinfo=SEOUL)


def test_empty_week_is_skipped(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
    events: pytest.LogCaptureFixture,
) -> None:
    h = harness_factory()
    service = h.service()
    service.start()
    for day in (3, 10):
        clock.move_to(datetime(2025, 3, day, 8, 0, 5, tzinfo=SEOUL))
        service.scheduler.tick()
    # The second Monday has no new post (the feed did not change): nothing is sent.
    assert len(h.server.handler.messages) == 4
    assert h.runs() == [
        ("weekly", "2025-03-03T08:00", "sent"),
        ("weekly", "2025-03-10T08:00", "skipped"),
    ]
    assert "event=run_skipped schedule=weekly period=2025-03-10T08:00" in "\n".join(
        lines(events, "run_skipped")
    )


def test_empty_week_sends_a_quiet_note_when_asked(
    harness_factory: type[Harness], clock: time_machine.Coordinates
) -> None:
    h = harness_factory(WEEKLY + 'on_empty = "quiet-note"\n')
    service = h.service()
    service.start()
    for day in (3, 10):
        clock.move_to(datetime(2025, 3, day, 8, 0, 5, tzinfo=SEOUL))
        service.scheduler.tick()
    notes = h.server.handler.messages[4:]
    assert sorted(r for m in notes for r in m.rcpt_tos) == sorted(
        r for m in h.server.handler.messages[:4] for r in m.rcpt_tos
    )
    by_reader = {m.rcpt_tos[0]: m.message for m in notes}
    msg = by_reader["minji.kim@example.com"]
    assert msg.get_content_type() == "text/plain"
    assert "조용" in msg["Subject"] and msg["List-Unsubscribe"].startswith("<https://news.example")
    assert "새 글이 없어" in msg.get_content()
    assert by_reader["alex.morgan@example.org"]["Subject"].endswith("a quiet week")  # language
    assert h.runs()[-1] == ("weekly", "2025-03-10T08:00", "quiet")
    # The note is sent once per period too.
    service.scheduler.tick()
    run_scheduled_job(str(h.path.resolve()), "weekly")
    assert len(h.server.handler.messages) == 8


def test_min_posts_holds_a_thin_digest_back(
    harness_factory: type[Harness], clock: time_machine.Coordinates
) -> None:
    h = harness_factory(WEEKLY + "min_posts = 1000\n")
    service = h.service()
    service.start()
    clock.move_to(datetime(2025, 3, 3, 8, 0, 5, tzinfo=SEOUL))
    service.scheduler.tick()
    assert h.server.handler.messages == []
    run = service.store.get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.status == "skipped"
    assert "fewer than 1000 new posts" in run.detail
    assert service.store.latest_edition() is None  # nothing recorded: the posts stay new


def test_themed_schedule_sends_only_its_theme(
    harness_factory: type[Harness], clock: time_machine.Coordinates
) -> None:
    h = harness_factory(WEEKLY + 'themes = ["ai"]\n')
    service = h.service()
    service.start()
    clock.move_to(datetime(2025, 3, 3, 8, 0, 5, tzinfo=SEOUL))
    service.scheduler.tick()
    assert sorted(recipients(h.server)) == [
        "alex.morgan@example.org", "jun.park@example.com", "minji.kim@example.com",
    ]  # fmt: skip
    assert "인공지능" in h.server.handler.messages[0].message["Subject"]


# -- missed runs ------------------------------------------------------------------------------


def test_missed_run_within_grace_is_made_up(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
    events: pytest.LogCaptureFixture,
) -> None:
    h = harness_factory()
    first = h.service()
    first.start()  # stores the job with its next run at 08:00
    first.close()  # ...and the machine goes down before 08:00
    clock.move_to(datetime(2025, 3, 3, 10, 30, tzinfo=SEOUL))  # back up at 10:30, grace 6 h
    second = h.service()
    second.start()
    second.scheduler.tick()
    assert len(h.server.handler.messages) == 4
    assert h.runs() == [("weekly", "2025-03-03T08:00", "sent")]
    assert "late_seconds=9000" in lines(events, "run_started")[0]


def test_missed_run_outside_grace_is_skipped_with_a_warning(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
    events: pytest.LogCaptureFixture,
) -> None:
    h = harness_factory()
    first = h.service()
    first.start()
    first.close()
    clock.move_to(datetime(2025, 3, 6, 9, 0, tzinfo=SEOUL))  # Thursday: no Monday digest now
    second = h.service()
    second.start()
    second.scheduler.tick()
    assert h.server.handler.messages == []
    assert h.runs() == [("weekly", "2025-03-03T08:00", "missed")]
    (warning,) = [r for r in events.records if r.getMessage().startswith("event=run_missed")]
    assert warning.levelno == logging.WARNING
    assert "period=2025-03-03T08:00" in warning.getMessage()
    assert "grace_minutes=360" in warning.getMessage()
    job = second.scheduler.get_job("schedule:weekly")
    assert job.next_run_time == datetime(2025, 3, 10, 8, 0, tzinfo=SEOUL)
    # --list shows it.
    out = CliRunner().invoke(main, ["--config", str(h.path), "schedule", "--list"]).output
    assert "last run: 2025-03-03T08:00 (2025-03-02 23:00 UTC): missed" in out


def test_a_changed_schedule_is_rescheduled_not_replayed(
    harness_factory: type[Harness], clock: time_machine.Coordinates
) -> None:
    h = harness_factory()
    first = h.service()
    first.start()
    first.close()
    h.path.write_text(h.path.read_text("utf-8").replace("monday at 08:00", "monday at 09:00"))
    clock.move_to(datetime(2025, 3, 3, 8, 30, tzinfo=SEOUL))
    second = h.service()
    second.start()
    second.scheduler.tick()  # the old 08:00 is not a missed run of the new schedule
    assert h.server.handler.messages == []
    assert second.scheduler.get_job("schedule:weekly").next_run_time == datetime(
        2025, 3, 3, 9, 0, tzinfo=SEOUL
    )


# -- never twice ------------------------------------------------------------------------------


def test_two_processes_on_one_period_send_it_once(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
    events: pytest.LogCaptureFixture,
) -> None:
    h = harness_factory()
    config = h.config
    sched = config.schedules[0]
    fire = datetime(2025, 3, 3, 8, 0, tzinfo=SEOUL)
    clock.move_to(fire + timedelta(seconds=3))
    contexts = [RunContext(config, h.store(), owner_token(), StopSignal()) for _ in range(2)]
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda c=c: results.append(run_period(c, sched, fire)))
        for c in contexts
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(h.server.handler.messages) == 4
    assert sum(r is None for r in results) == 1  # one found the key taken
    assert len(lines(events, "run_duplicate")) == 1
    # A replay from yet another process, a clock set back and run again: still nothing.
    run_scheduled_job(str(h.path.resolve()), "weekly")
    clock.move_to(fire - timedelta(hours=1))
    clock.move_to(fire + timedelta(seconds=30))
    run_scheduled_job(str(h.path.resolve()), "weekly")
    assert len(h.server.handler.messages) == 4
    with h.stores[0].begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schedule_runs)).scalar() == 1


def test_the_run_key_is_unique_in_the_database(harness_factory: type[Harness]) -> None:
    h = harness_factory()
    store = h.store()
    now = datetime.now(UTC)
    values = dict(
        schedule="weekly", period="2025-03-03T08:00", scheduled=now, status="running",
        owner="a", editions="", detail="", counts={}, started=now,
    )  # fmt: skip
    with store.begin() as conn:
        conn.execute(schedule_runs.insert().values(**values))
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(schedule_runs.insert().values(**{**values, "owner": "b"}))


def test_second_scheduler_on_the_same_store_refuses_to_start(
    harness_factory: type[Harness], clock: time_machine.Coordinates
) -> None:
    h = harness_factory()
    first = h.service()
    first.start()
    with pytest.raises(DigestError, match="another `digest schedule` is running on this database"):
        h.service().start()
    # The same through the command line: a clear message, exit 1, no traceback.
    result = CliRunner().invoke(main, ["--config", str(h.path), "schedule"])
    assert result.exit_code == 1
    assert f"pid {os.getpid()} on {socket.gethostname()}" in result.output
    assert "one scheduler per database" in result.output and "Traceback" not in result.output
    # While the first keeps its heartbeat, it stays the only one.
    clock.shift(60)
    assert first.store.beat_scheduler_lock(first.owner, datetime.now(UTC))
    clock.shift(60)
    with pytest.raises(DigestError):
        h.service().start()
    # Once the first stops, a new one starts.
    first.close()
    h.service().start()


def test_a_stale_lock_is_taken_over(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
    events: pytest.LogCaptureFixture,
) -> None:
    h = harness_factory()
    store = h.store()
    # A scheduler on this host whose process is gone: taken over at once.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    now = datetime.now(UTC)
    assert store.take_scheduler_lock(
        "gone", pid=int(dead.stdout), host=socket.gethostname(), now=now, replacing=None
    )
    service = h.service()
    service.start()
    assert "is gone" in lines(events, "lock_taken_over")[0]
    holder = store.scheduler_lock()
    assert holder is not None and holder.owner == service.owner
    service.close()
    # One on another host: taken over only once its heartbeat is stale.
    assert store.take_scheduler_lock("far", pid=1, host="elsewhere", now=now, replacing=None)
    with pytest.raises(DigestError, match="pid 1 on elsewhere"):
        h.service().start()
    clock.shift(service.stale_seconds + 1)
    late = h.service()
    late.start()
    assert "no heartbeat for" in lines(events, "lock_taken_over")[1]
    # The old holder, if it comes back, sees it lost the lock.
    assert not store.beat_scheduler_lock("far", datetime.now(UTC))


# -- stopping and restarting ------------------------------------------------------------------

MANY = "email,name,themes,language,status\n" + "".join(
    f"reader{i:02d}@example.com,Reader {i},,ko,active\n" for i in range(40)
)


WORKERS = "\n[delivery]\nprocesses = 2\n"


def _no_local_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if the scheduler's own process sends a digest (only its workers may)."""

    async def local(*args: object, **kwargs: object) -> None:
        raise AssertionError("a digest was sent from the scheduler process")

    monkeypatch.setattr(runner, "deliver_recorded", local)


@pytest.mark.parametrize("workers", [False, True], ids=["in-process", "delivery-workers"])
def test_sigterm_mid_send_finishes_current_messages_and_a_restart_resumes(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
    events: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    workers: bool,
) -> None:
    # With delivery workers, the stop must travel to the worker processes.
    if workers:
        h = harness_factory(schedules=WEEKLY + WORKERS, smtp="concurrency = 2")
        _no_local_sends(monkeypatch)
    else:
        h = harness_factory(smtp="concurrency = 1")
    (h.path.parent / "subscribers.csv").write_text(MANY, encoding="utf-8")
    service = h.service()
    service.start()
    handler = h.server.handler
    original = handler.handle_DATA

    async def handle_data(server, session, envelope):  # type: ignore[no-untyped-def]
        if workers:
            await asyncio.sleep(0.2)  # a slow server, so the stop lands mid-send
        reply = await original(server, session, envelope)
        if len(handler.messages) == 3:
            service.request_stop()  # what the SIGTERM handler does
        return reply

    handler.handle_DATA = handle_data  # type: ignore[method-assign]
    clock.move_to(datetime(2025, 3, 3, 8, 0, 5, tzinfo=SEOUL))
    service.scheduler.tick()
    assert service.close(timeout=0)  # nothing left running: exits at once
    first = len(handler.messages)
    assert 3 <= first < 40
    run = h.stores[0].get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.status == "partial" and "pending" in run.detail
    counts = h.stores[0].delivery_counts(run.editions[0])
    assert counts["pending"] == 40 - first and counts["sent"] == first

    # Restarted within the hour: the rest goes out, nothing twice, the period is not planned
    # again.
    handler.handle_DATA = original  # type: ignore[method-assign]
    clock.move_to(datetime(2025, 3, 3, 8, 40, tzinfo=SEOUL))
    restarted = h.service()
    restarted.start()
    restarted.scheduler.tick()
    got = Counter(recipients(h.server))
    assert len(got) == 40 and set(got.values()) == {1}
    run = h.stores[0].get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.status == "sent"
    assert h.stores[0].latest_edition() == run.editions[0]
    assert any("edition_resumed" in line for line in lines(events, "edition_resumed"))


def test_with_several_delivery_processes_a_scheduled_run_sends_from_them(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness_factory(schedules=WEEKLY + WORKERS, smtp="concurrency = 2")
    (h.path.parent / "subscribers.csv").write_text(MANY, encoding="utf-8")
    _no_local_sends(monkeypatch)
    service = h.service()
    service.start()
    clock.move_to(datetime(2025, 3, 3, 8, 0, 5, tzinfo=SEOUL))
    service.scheduler.tick()
    got = Counter(recipients(h.server))
    assert len(got) == 40 and set(got.values()) == {1}
    run = h.stores[0].get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.status == "sent" and run.counts["sent"] == 40


class _CountingSMTP(SMTP):
    """An aiosmtpd session that counts the connections open at once."""

    open = 0
    most = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        type(self).open += 1
        type(self).most = max(type(self).most, type(self).open)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        type(self).open -= 1
        super().connection_lost(exc)


class _CountingController(Controller):
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


def test_delivery_workers_keep_to_the_connection_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    handler = RecordingHandler()
    port = free_port()
    controller = _CountingController(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        path = write_config(
            tmp_path, smtp=f'host = "127.0.0.1"\nport = {port}\nconcurrency = 2',
            extra=WORKERS + WEEKLY,
        )  # fmt: skip
        (tmp_path / "subscribers.csv").write_text(MANY, encoding="utf-8")
        config = load_config(path)
        store = Store.from_config(config.store)
        try:
            ctx = RunContext(config, store, owner_token(), StopSignal())
            run = run_period(ctx, config.schedules[0], datetime.now(UTC))
        finally:
            store.close()
    finally:
        controller.stop()
    assert run is not None and run.status == "sent"
    assert len({r for m in handler.messages for r in m.rcpt_tos}) == 40
    # The scheduler's own connection is closed while its two workers send on one each.
    assert _CountingSMTP.most <= 2


CRASHING_SCHEDULER = """
import os, sys
from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine

from digest.config import load_config
from digest.scheduling.service import SchedulerService
from digest.send.smtp import SMTPSender
from digest.store import Store

config = load_config(sys.argv[1])
real_send = SMTPSender.send
count = 0


async def send(self, envelope):
    global count
    count += 1
    if count == 6:
        os._exit(9)  # killed mid-send: nothing after this line runs, no clean-up
    return await real_send(self, envelope)


SMTPSender.send = send
seoul = ZoneInfo("Asia/Seoul")
with time_machine.travel(datetime(2025, 3, 3, 7, 0, tzinfo=seoul), tick=False) as clock:
    service = SchedulerService(config, Store.from_config(config.store), manual=True)
    service.start()
    clock.move_to(datetime(2025, 3, 3, 8, 0, 5, tzinfo=seoul))
    service.scheduler.tick()
print("not killed")
"""


def test_a_crash_mid_send_is_resumed_by_the_next_scheduler(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
    events: pytest.LogCaptureFixture,
) -> None:
    h = harness_factory(smtp="concurrency = 1")
    (h.path.parent / "subscribers.csv").write_text(MANY, encoding="utf-8")
    env = {**os.environ, "DIGEST_TEST_SECRET": "test-secret"}
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_SCHEDULER, str(h.path)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 9, child.stdout + child.stderr
    # The dead process left its run "running", an edition half sent and its lock behind.
    store = h.store()
    run = store.get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.status == "running" and run.editions
    assert len(h.server.handler.messages) == 5
    assert store.scheduler_lock() is not None

    clock.move_to(datetime(2025, 3, 3, 8, 30, tzinfo=SEOUL))
    restarted = h.service()
    restarted.start()  # the lock's process is gone: taken over at once
    restarted.scheduler.tick()
    got = Counter(recipients(h.server))
    assert len(got) == 40 and set(got.values()) == {1}
    run = store.get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.status == "sent"
    assert "status=partial" in lines(events, "run_interrupted")[0]
    assert "is gone" in lines(events, "lock_taken_over")[0]


def test_a_run_stopped_before_sending_is_made_up_after_a_restart(
    harness_factory: type[Harness], clock: time_machine.Coordinates
) -> None:
    h = harness_factory()
    service = h.service()
    service.start()
    service.stop.request()  # SIGTERM arrives while the run ingests
    clock.move_to(datetime(2025, 3, 3, 8, 0, 5, tzinfo=SEOUL))
    sched = service.config.schedules[0]
    run_period(service.ctx, sched, datetime(2025, 3, 3, 8, 0, tzinfo=SEOUL))
    assert h.runs() == [("weekly", "2025-03-03T08:00", "abandoned")]
    assert h.server.handler.messages == []
    service.close()
    clock.move_to(datetime(2025, 3, 3, 8, 5, tzinfo=SEOUL))
    h.service().start()  # within the grace time: the run is made up at start-up
    assert len(h.server.handler.messages) == 4
    assert h.runs() == [("weekly", "2025-03-03T08:00", "sent")]


def test_sigterm_stops_the_foreground_scheduler(
    harness_factory: type[Harness],
    monkeypatch: pytest.MonkeyPatch,
    events: pytest.LogCaptureFixture,
) -> None:
    h = harness_factory()
    service = SchedulerService(h.config, h.store())
    h.services.append(service)
    start = service.start

    def start_then_signal() -> None:
        start()
        signal.raise_signal(signal.SIGTERM)  # handled in this (the main) thread

    monkeypatch.setattr(service, "start", start_then_signal)
    before = signal.getsignal(signal.SIGTERM)
    assert service.serve_forever() is True
    assert signal.getsignal(signal.SIGTERM) is before
    assert h.stores[0].scheduler_lock() is None  # released
    assert lines(events, "stop_requested") == ["event=stop_requested signal=SIGTERM"]
    assert lines(events, "scheduler_stopped") == ["event=scheduler_stopped clean=True"]


def test_shutdown_is_bounded_when_a_send_hangs(harness_factory: type[Harness]) -> None:
    h = harness_factory()
    service = h.service()
    service.start()
    entered, release = threading.Event(), threading.Event()

    def stuck() -> None:
        entered.set()
        release.wait()

    worker = threading.Thread(target=service._guarded, args=(stuck,))
    worker.start()
    entered.wait()
    assert service.close(timeout=0) is False  # gives up instead of waiting forever
    assert h.stores[0].scheduler_lock() is None
    release.set()
    worker.join()


@pytest.mark.slow
def test_digest_schedule_process_exits_on_sigterm(tmp_path: Path, smtp_server: SMTPServer) -> None:
    """The real process: it starts, logs one line per event, and exits 0 on SIGTERM."""
    path = write_config(
        tmp_path, smtp=f'host = "127.0.0.1"\nport = {smtp_server.port}', extra=WEEKLY
    )
    env = {**os.environ, "DIGEST_TEST_SECRET": "test-secret", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(path), "schedule"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "event=scheduler_started" in line:
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(seen) + rest
    assert "event=schedule_loaded schedule=weekly" in "".join(seen)
    assert "event=scheduler_stopped clean=True" in rest


# -- daylight saving --------------------------------------------------------------------------


def drive(service: SchedulerService, clock: time_machine.Coordinates, until: datetime) -> int:
    """Wake up whenever APScheduler says the job is due, as the real loop would; returns how
    many times the job fired."""
    for fired in range(100):  # `fired` ticks so far
        job = service.scheduler.get_job(f"schedule:{service.config.schedules[0].name}")
        if job.next_run_time > until:
            return fired
        # In UTC: a wall-clock sum on the repeated hour's second 01:30 would step back.
        clock.move_to(job.next_run_time.astimezone(UTC) + timedelta(seconds=2))
        service.scheduler.tick()
    raise AssertionError("the job never moved on")


@pytest.mark.parametrize(
    ("cron", "start", "end"),
    [
        # 01:30 happens twice on 2 November 2025 (EDT, then EST).
        ("daily at 01:30", datetime(2025, 10, 31, 12, tzinfo=NEW_YORK),
         datetime(2025, 11, 4, 12, tzinfo=NEW_YORK)),
        # 02:30 does not happen on 9 March 2025.
        ("daily at 02:30", datetime(2025, 3, 7, 12, tzinfo=NEW_YORK),
         datetime(2025, 3, 11, 12, tzinfo=NEW_YORK)),
        # A weekly Sunday schedule across both transitions.
        ("weekly on sunday at 01:30", datetime(2025, 3, 1, tzinfo=NEW_YORK),
         datetime(2025, 11, 20, tzinfo=NEW_YORK)),
    ],
)  # fmt: skip
def test_dst_runs_once_per_period(
    harness_factory: type[Harness], cron: str, start: datetime, end: datetime
) -> None:
    h = harness_factory(
        f'[[schedules]]\nname = "ny"\ncron = "{cron}"\ntimezone = "America/New_York"\n'
    )
    with time_machine.travel(start, tick=False) as clock:
        service = h.service()
        service.start()
        fired = drive(service, clock, end)
    runs = h.runs()
    periods = [p for _, p, _ in runs]
    assert len(periods) == len(set(periods))  # never twice
    days = {p[:10] for p in periods}
    assert len(days) == len(periods)  # one run per day (or per week)
    expected = (end.date() - start.date()).days if cron.startswith("daily") else 38
    assert len(periods) == expected  # none missed
    # The repeated 01:30 of 2 November fires APScheduler twice; the run key sends it once.
    assert fired == len(periods) + ("01:30" in cron)
    assert len(h.server.handler.messages) == 4  # the first run sent; the rest had nothing new


# -- listing ----------------------------------------------------------------------------------


def test_list_shows_next_runs_in_both_zones_and_the_last_run(
    harness_factory: type[Harness], clock: time_machine.Coordinates
) -> None:
    h = harness_factory(
        '[[schedules]]\nname = "ny"\ncron = "weekly on sunday at 01:30"\n'
        'timezone = "America/New_York"\n' + WEEKLY
    )
    clock.move_to(datetime(2025, 10, 25, 12, tzinfo=UTC))
    service = h.service()
    service.start()
    clock.move_to(datetime(2025, 10, 26, 5, 31, tzinfo=UTC))
    service.scheduler.tick()
    out = CliRunner().invoke(main, ["--config", str(h.path), "schedule", "--list"]).output
    ny = out.split("weekly: ")[0]
    assert "ny: next 2025-11-02 01:30 EDT, 2025-11-09 01:30 EST, 2025-11-16 01:30 EST" in ny
    assert "in UTC: 2025-11-02 05:30 UTC, 2025-11-09 06:30 UTC, 2025-11-16 06:30 UTC" in ny
    assert "last run: 2025-10-26T01:30 (2025-10-26 05:30 UTC): sent" in ny
    assert "sent 4" in ny
    weekly = out.split("weekly: ")[1]
    assert weekly.startswith("next 2025-10-27 08:00 KST")
    assert "last run: never" in weekly
    assert f"scheduler: pid {os.getpid()}" in out


def test_list_marks_a_run_finished_by_send_resume(
    harness_factory: type[Harness], clock: time_machine.Coordinates
) -> None:
    h = harness_factory()
    service = h.service()
    service.start()
    store = h.stores[0]
    clock.move_to(datetime(2025, 3, 3, 8, 0, 5, tzinfo=SEOUL))
    service.scheduler.tick()
    run = store.get_run("weekly", "2025-03-03T08:00")
    assert run is not None
    store.update_run("weekly", run.period, run.owner, status="partial")
    out = CliRunner().invoke(main, ["--config", str(h.path), "schedule", "--list"]).output
    assert "last run: 2025-03-03T08:00 (2025-03-02 23:00 UTC): sent" in out


def test_lock_replacement_is_compare_and_set(harness_factory: type[Harness]) -> None:
    store = harness_factory().store()
    now = datetime.now(UTC)
    assert store.take_scheduler_lock("a", pid=1, host="h", now=now, replacing=None)
    assert not store.take_scheduler_lock("b", pid=2, host="h", now=now, replacing=None)
    holder = store.scheduler_lock()
    assert holder is not None
    assert store.take_scheduler_lock("c", pid=3, host="h", now=now, replacing=holder)
    # A second taker that saw the same stale holder loses.
    assert not store.take_scheduler_lock("d", pid=4, host="h", now=now, replacing=holder)
    stale = SchedulerLock("c", 3, "h", now, now - timedelta(seconds=1))
    assert not store.take_scheduler_lock("e", pid=5, host="h", now=now, replacing=stale)
    store.release_scheduler_lock("c")
    assert store.scheduler_lock() is None


def test_config_rejects_bad_schedule_settings(tmp_path: Path) -> None:
    from digest.errors import ConfigError

    base = write_config(tmp_path).read_text("utf-8")
    for extra, message in [
        (WEEKLY + 'on_empty = "shout"\n', "on_empty"),
        (WEEKLY + "min_posts = 0\n", "min_posts"),
        (WEEKLY + "retry_minutes = -1\n", r"schedules\[0\]\.retry_minutes"),
        (WEEKLY + WEEKLY, "duplicate"),
    ]:
        (tmp_path / "config.toml").write_text(base + extra, "utf-8")
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path / "config.toml")
    (tmp_path / "config.toml").write_text(base + WEEKLY + "misfire_grace_minutes = 30\n", "utf-8")
    config = load_config(tmp_path / "config.toml")
    assert replace(config.schedules[0]).misfire_grace_minutes == 30


def test_sources_are_polled_on_their_own_interval(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
    events: pytest.LogCaptureFixture,
) -> None:
    h = harness_factory()
    h.path.write_text(
        h.path.read_text("utf-8").replace("replay = true\n", "replay = true\npoll_minutes = 60\n"),
        "utf-8",
    )
    service = h.service()
    service.start()
    job = service.scheduler.get_job("ingest:haebom")
    assert job is not None and job.next_run_time == datetime(2025, 3, 3, 8, 0, tzinfo=SEOUL)
    clock.move_to(datetime(2025, 3, 3, 7, 59, tzinfo=SEOUL))
    service.scheduler.tick()
    assert lines(events, "ingest") == []
    clock.move_to(datetime(2025, 3, 3, 8, 0, 1, tzinfo=SEOUL))
    service.scheduler.tick()  # the poll and the weekly run, each ingesting
    polled = lines(events, "ingest")
    assert len(polled) == 2 and len(h.server.handler.messages) == 4
    assert sum(line.startswith("event=ingest source=haebom ") for line in polled) == 1
    assert sum(line.startswith("event=ingest schedule=weekly ") for line in polled) == 1


# -- retries while the scheduler runs ------------------------------------------------------------


class FlakyRcpt(RecordingHandler):
    """451 for `flaky` addresses the first time each is offered, then accepted."""

    def __init__(self, flaky: set[str]) -> None:
        super().__init__()
        self.flaky = set(flaky)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.flaky:
            self.flaky.discard(address)
            return "451 4.3.0 Try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def test_a_run_that_failed_on_a_down_mail_server_is_retried_without_a_restart(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: time_machine.Coordinates,
    events: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    server = SMTPServer("127.0.0.1", free_port(), RecordingHandler())  # nothing listens yet
    h = Harness(tmp_path, server, WEEKLY)
    controller = Controller(server.handler, hostname=server.host, port=server.port)
    try:
        service = h.service()
        service.start()
        assert service.scheduler.get_job("retry:weekly") is not None
        clock.move_to(datetime(2025, 3, 3, 8, 0, 1, tzinfo=SEOUL))
        service.scheduler.tick()
        assert h.runs() == [("weekly", "2025-03-03T08:00", "failed")]
        assert server.handler.messages == []

        controller.start()  # the mail server is back
        clock.move_to(datetime(2025, 3, 3, 8, 10, 1, tzinfo=SEOUL))
        service.scheduler.tick()  # the retry job: same period, same run key
        assert len(server.handler.messages) == 4
        assert h.runs() == [("weekly", "2025-03-03T08:00", "sent")]
        assert "previous=failed" in lines(events, "run_retry")[-1]

        clock.move_to(datetime(2025, 3, 3, 8, 20, 1, tzinfo=SEOUL))
        service.scheduler.tick()  # sent: nothing more to retry
        assert len(server.handler.messages) == 4
    finally:
        controller.stop()
        h.close()


def test_deferred_recipients_are_retried_by_the_running_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: time_machine.Coordinates
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    no_waiting = "\n[delivery]\nwait_for_retries_seconds = 0\nretry_base_seconds = 60\n"
    with running_smtp_server(FlakyRcpt({"jun.park@example.com"})) as server:
        h = Harness(tmp_path, server, WEEKLY + no_waiting)
        try:
            service = h.service()
            service.start()
            clock.move_to(datetime(2025, 3, 3, 8, 0, 1, tzinfo=SEOUL))
            service.scheduler.tick()
            assert h.runs() == [("weekly", "2025-03-03T08:00", "partial")]
            assert "jun.park@example.com" not in recipients(server)

            clock.move_to(datetime(2025, 3, 3, 8, 10, 1, tzinfo=SEOUL))
            service.scheduler.tick()  # the deferred row is due: the retry job sends it
            assert Counter(recipients(server))["jun.park@example.com"] == 1
            assert len(recipients(server)) == 4
            assert h.runs() == [("weekly", "2025-03-03T08:00", "sent")]
        finally:
            h.close()


def test_a_run_that_meets_a_manual_send_waits_for_the_retry(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
) -> None:
    """A `digest send` holding the send lock at 08:00: the scheduled run fails without
    touching anything, and the retry job sends the period once the lock is free."""
    h = harness_factory()
    service = h.service()
    service.start()
    other = h.store()  # another process's connection to the same database
    clock.move_to(datetime(2025, 3, 3, 8, 0, 1, tzinfo=SEOUL))
    with sending(other):
        service.scheduler.tick()
    run = service.store.get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.status == "failed" and not run.editions
    assert "another digest process is sending" in run.detail
    assert h.server.handler.messages == []

    clock.move_to(datetime(2025, 3, 3, 8, 10, 1, tzinfo=SEOUL))
    service.scheduler.tick()
    assert len(h.server.handler.messages) == 4
    assert h.runs() == [("weekly", "2025-03-03T08:00", "sent")]


def test_quiet_notes_cut_short_by_a_stop_are_finished_once_after_a_restart(
    harness_factory: type[Harness], clock: time_machine.Coordinates
) -> None:
    h = harness_factory(WEEKLY + 'on_empty = "quiet-note"\n')
    service = h.service()
    service.start()
    clock.move_to(datetime(2025, 3, 3, 8, 0, 5, tzinfo=SEOUL))
    service.scheduler.tick()  # week 1: the digest, to the 4 readers
    handler = h.server.handler
    original = handler.handle_DATA

    async def stop_after_two_notes(server, session, envelope):  # type: ignore[no-untyped-def]
        reply = await original(server, session, envelope)
        if len(handler.messages) == 6:  # 4 digests + 2 notes: SIGTERM arrives
            service.request_stop()
        return reply

    handler.handle_DATA = stop_after_two_notes  # type: ignore[method-assign]
    clock.move_to(datetime(2025, 3, 10, 8, 0, 5, tzinfo=SEOUL))
    service.scheduler.tick()  # week 2: nothing new, notes
    assert len(handler.messages) == 6
    assert h.runs()[-1] == ("weekly", "2025-03-10T08:00", "abandoned")
    service.close()

    handler.handle_DATA = original  # type: ignore[method-assign]
    clock.move_to(datetime(2025, 3, 10, 8, 20, tzinfo=SEOUL))
    h.service().start()  # within the grace time: made up, only the notes still owed
    notes = [r for m in handler.messages[4:] for r in m.rcpt_tos]
    readers = ["minji.kim@example.com", "jun.park@example.com", "seoyeon.lee@example.com",
               "alex.morgan@example.org"]  # fmt: skip
    assert sorted(notes) == sorted(readers)
    assert h.runs()[-1] == ("weekly", "2025-03-10T08:00", "quiet")


def test_a_digest_send_during_a_runs_planning_is_refused(
    harness_factory: type[Harness],
    clock: time_machine.Coordinates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The send lock covers planning: a `digest send` started while a scheduled run plans
    cannot record the same posts as another issue; each reader gets one digest."""
    import digest.scheduling.runner as runner

    h = harness_factory()
    attempts: list[tuple[int, str]] = []
    plan_run = runner.plan_run

    def plan_with_a_manual_send(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = CliRunner().invoke(main, ["--config", str(h.path), "send"])
        attempts.append((result.exit_code, result.output))
        return plan_run(*args, **kwargs)

    monkeypatch.setattr(runner, "plan_run", plan_with_a_manual_send)
    service = h.service()
    service.start()
    clock.move_to(datetime(2025, 3, 3, 8, 0, 1, tzinfo=SEOUL))
    service.scheduler.tick()
    ((code, output),) = attempts
    assert code == 1 and "another digest process is sending" in output
    assert sorted(Counter(recipients(h.server)).values()) == [1, 1, 1, 1]
    assert h.runs() == [("weekly", "2025-03-03T08:00", "sent")]
