"""`digest schedule`: the long-running scheduler, one per database.

APScheduler (3.x) fires the schedules, with its job store in the project's own database
(`apscheduler_jobs`, beside the digests), `coalesce` on and each schedule's
`misfire_grace_minutes`: a run missed while the machine was down is made up when it comes back
within the grace time, and recorded as `missed` with a warning after it. The job function is
a module-level function with picklable arguments (the config path and the schedule's name).

One scheduler per database: the `scheduler_lock` row names the holder (owner token, pid,
host) and carries a heartbeat. A second scheduler refuses to start while the holder is alive;
a holder whose process is gone (same host) or whose heartbeat is older than the stale time is
replaced.

SIGTERM or SIGINT: no new run starts, an in-flight send finishes the messages it has handed
out (the `stop` event of `run_deliveries`) and leaves the rest pending for the next run or
`digest send --resume`; the process exits within `shutdown_timeout` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.executors.debug import DebugExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import Config, ScheduleConfig, load_config
from digest.errors import DigestError
from digest.locks import SendBusy, sending, stale_reason
from digest.outbox import MessageFactory
from digest.scheduling.cron import grace, latest_fire, period_of, trigger_for, zone_name
from digest.scheduling.events import StopSignal, log_event
from digest.scheduling.runner import (
    RETAKABLE,
    RunContext,
    SenderFactory,
    check_drafts,
    ingest_one,
    owner_gone,
    owner_token,
    release_owner,
    resume_unfinished,
    run_period,
    settle_runs,
    smtp_sender,
)
from digest.send.catcher import smtp_endpoint
from digest.store import Store

HEARTBEAT_SECONDS = 15.0
STALE_SECONDS = 90.0  # a lock whose heartbeat is older than this is stale
JOB_FUNC = "digest.scheduling.service:run_scheduled_job"
INGEST_FUNC = "digest.scheduling.service:run_ingest_job"
RETRY_FUNC = "digest.scheduling.service:run_retry_job"
DRAFTS_FUNC = "digest.scheduling.service:run_drafts_job"
DRAFTS_MINUTES = 1  # how often drafts are checked: deadlines, editors not told yet

# The scheduler running in this process, by resolved config path: the job functions (which
# APScheduler stores by name, with only picklable arguments) find their live context here.
_ACTIVE: dict[str, SchedulerService] = {}


# -- the lock ---------------------------------------------------------------------------------


def acquire_lock(store: Store, owner: str, now: datetime, stale_after: float) -> str | None:
    """Become this database's scheduler, or DigestError naming the one that is. Returns the
    owner token of a stale holder that was replaced (None if there was none)."""
    for _ in range(3):
        holder = store.scheduler_lock()
        if holder is not None and holder.owner == owner:
            return None
        if holder is None:
            if store.take_scheduler_lock(
                owner, pid=os.getpid(), host=socket.gethostname(), now=now, replacing=None
            ):
                return None
            continue
        reason = stale_reason(holder, now, stale_after)
        if reason is None:
            age = (now - holder.heartbeat).total_seconds()
            raise DigestError(
                f"{store.engine.url.database}: another `digest schedule` is running on this "
                f"database (pid {holder.pid} on {holder.host}, started "
                f"{holder.started:%Y-%m-%d %H:%M:%S} UTC, last heartbeat {age:.0f}s ago); "
                "one scheduler per database. Stop it first; if it is gone without a trace, "
                f"its lock counts as stale {stale_after:.0f}s after its last heartbeat."
            )
        if store.take_scheduler_lock(
            owner, pid=os.getpid(), host=socket.gethostname(), now=now, replacing=holder
        ):
            log_event(
                "lock_taken_over", logging.WARNING, previous_pid=holder.pid,
                previous_host=holder.host, reason=reason,
            )  # fmt: skip
            return holder.owner
    raise DigestError("cannot take the scheduler lock: another scheduler is starting right now")


# -- executors and schedulers -----------------------------------------------------------------


class DaemonThreadExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs each job in a daemon thread (runs are serialized by the service): a send stuck past
    the shutdown timeout cannot keep the process from exiting."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def target() -> None:
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException:
                self._run_job_error(job.id, *sys.exc_info()[1:])
            else:
                self._run_job_success(job.id, events)

        threading.Thread(target=target, name=f"digest-{job.id}", daemon=True).start()


class ManualScheduler(BaseScheduler):  # type: ignore[misc]
    """APScheduler's own job processing (due times, coalescing, misfire grace), driven by
    `tick()` in the calling thread instead of a timer: for tests under a controlled clock."""

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)

    def wakeup(self) -> None:
        pass

    def _create_default_executor(self) -> DebugExecutor:
        return DebugExecutor()

    def tick(self) -> float | None:
        """Run what is due now; seconds until the next due job (None: nothing scheduled)."""
        return self._process_jobs()  # type: ignore[no-any-return]


# -- the service ------------------------------------------------------------------------------


class SchedulerService:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        manual: bool = False,
        sender_factory: SenderFactory = smtp_sender,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        stale_seconds: float = STALE_SECONDS,
        shutdown_timeout: float | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.key = str(config.path.resolve())
        self.owner = owner_token()
        self.stop = StopSignal()
        self.ctx = RunContext(config, store, self.owner, self.stop, sender_factory)
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_seconds = stale_seconds
        # Long enough for the messages already handed out to get their answers.
        self.shutdown_timeout = shutdown_timeout or max(30.0, 2 * config.smtp.timeout + 10)
        self.scheduler: BaseScheduler = (ManualScheduler if manual else BackgroundScheduler)(
            jobstores={"default": SQLAlchemyJobStore(engine=store.engine)},
            executors={"default": DebugExecutor() if manual else DaemonThreadExecutor()},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        self._serial = threading.Lock()  # one run (or ingest) at a time
        self._idle = threading.Event()
        self._idle.set()
        self._in_flight = 0
        self._count_lock = threading.Lock()
        self.started = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Take the lock, load the jobs, finish what a previous scheduler left, start firing."""
        replaced = acquire_lock(self.store, self.owner, datetime.now(UTC), self.stale_seconds)
        if replaced is not None:
            self.ctx.gone.add(replaced)
        _ACTIVE[self.key] = self
        self.started = True
        try:
            self.scheduler.start(paused=True)
            self.sync_jobs()
            self.recover()
            self.scheduler.resume()
        except BaseException:
            self.close()
            raise
        for sched in self.config.schedules:
            job = self.scheduler.get_job(f"schedule:{sched.name}")
            log_event(
                "schedule_loaded", schedule=sched.name, cron=sched.cron,
                timezone=zone_name(self.config, sched),
                next_run=job.next_run_time.isoformat() if job and job.next_run_time else None,
            )  # fmt: skip

    def request_stop(self) -> None:
        """Stop taking new runs and ask an in-flight send to stop (safe in a signal handler)."""
        if not self.stop.is_set():
            self.stop.request()

    def close(self, timeout: float | None = None) -> bool:
        """Stop, wait (bounded) for an in-flight run, release the lock. True when nothing
        was left running."""
        self.stop.request()
        if self.scheduler.state != STATE_STOPPED:
            self.scheduler.shutdown(wait=False)
        clean = self._idle.wait(self.shutdown_timeout if timeout is None else timeout)
        if not clean:
            log_event(
                "shutdown_timeout", logging.ERROR, waited_seconds=self.shutdown_timeout,
                note="exiting with a send in flight; unsettled rows stay pending for "
                "`digest send --resume`",
            )  # fmt: skip
        if self.started:
            self.store.release_scheduler_lock(self.owner)
            self.started = False
        if _ACTIVE.get(self.key) is self:
            del _ACTIVE[self.key]
        release_owner(self.owner)
        return clean

    def serve_forever(self) -> bool:
        """Run until SIGTERM/SIGINT (or the lock is lost); True on a clean stop."""
        previous = {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log_event("stop_requested", signal=signal.Signals(signum).name)
            self.request_stop()

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            self.start()
            log_event(
                "scheduler_started", pid=os.getpid(), owner=self.owner,
                schedules=[s.name for s in self.config.schedules],
            )  # fmt: skip
            while not self.stop.wait(self.heartbeat_seconds):
                if not self.store.beat_scheduler_lock(self.owner, datetime.now(UTC)):
                    log_event("lock_lost", logging.ERROR, owner=self.owner)
                    self.request_stop()
        finally:
            clean = self.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            log_event("scheduler_stopped", clean=clean)
        return clean

    # -- jobs ----------------------------------------------------------------------------

    def sync_jobs(self) -> None:
        """Make the stored jobs match the config. A schedule whose trigger is unchanged keeps
        its stored next run time, so a run missed while the machine was down is still seen
        (and made up, or recorded as missed) when the scheduler comes back."""
        wanted: set[str] = set()
        for sched in self.config.schedules:
            job_id = f"schedule:{sched.name}"
            wanted.add(job_id)
            self._put_job(
                job_id, JOB_FUNC, trigger_for(self.config, sched), sched.name,
                sched.misfire_grace_minutes * 60,
            )  # fmt: skip
            if sched.retry_minutes > 0:
                job_id = f"retry:{sched.name}"
                wanted.add(job_id)
                trigger = IntervalTrigger(minutes=sched.retry_minutes, timezone=UTC)
                self._put_job(job_id, RETRY_FUNC, trigger, sched.name, sched.retry_minutes * 60)
        if any(s.approval == "draft" for s in self.config.schedules):
            wanted.add("drafts:check")
            trigger = IntervalTrigger(minutes=DRAFTS_MINUTES, timezone=UTC)
            # No misfire limit: however late (the machine slept), a check is still wanted.
            self._put_job("drafts:check", DRAFTS_FUNC, trigger, "check", None)
        for source in self.config.sources:
            if source.poll_minutes > 0:
                job_id = f"ingest:{source.name}"
                wanted.add(job_id)
                trigger = IntervalTrigger(minutes=source.poll_minutes, timezone=UTC)
                self._put_job(job_id, INGEST_FUNC, trigger, source.name, source.poll_minutes * 60)
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                self.scheduler.remove_job(job.id)
                log_event("job_removed", job=job.id)

    def _put_job(
        self, job_id: str, func: str, trigger: Any, name: str, grace_s: int | None
    ) -> None:
        args = (self.key, name)
        existing = self.scheduler.get_job(job_id)
        if (
            existing is not None
            and str(existing.trigger) == str(trigger)
            and str(getattr(existing.trigger, "timezone", ""))
            == str(getattr(trigger, "timezone", ""))
        ):
            self.scheduler.modify_job(job_id, args=args, misfire_grace_time=grace_s, func=func)
            return
        self.scheduler.add_job(
            func, trigger, args=args, id=job_id, name=job_id, replace_existing=True,
            misfire_grace_time=grace_s, coalesce=True, max_instances=1,
        )  # fmt: skip

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_ERROR:
            log_event("job_error", logging.ERROR, job=event.job_id, error=repr(event.exception))
            return
        kind, _, name = event.job_id.partition(":")
        sched = self._schedule(name)
        if kind != "schedule" or sched is None:
            log_event(f"{kind}_missed", logging.WARNING, job=event.job_id)
            return
        self.record_missed(sched, event.scheduled_run_time)

    def record_missed(self, sched: ScheduleConfig, fire: datetime) -> None:
        """A run later than its grace time: not sent (no Monday digest on Thursday), but
        recorded and logged, never silently dropped."""
        now = datetime.now(UTC)
        late = now - fire
        period = period_of(fire, zone_name(self.config, sched))
        recorded = self.store.insert_run(
            sched.name, period, scheduled=fire.astimezone(UTC), owner=self.owner,
            status="missed", now=now,
            detail=f"{_duration(late)} late, over the grace time of "
            f"{_duration(grace(sched))}: not sent",
        )  # fmt: skip
        log_event(
            "run_missed", logging.WARNING, schedule=sched.name, period=period,
            late_seconds=round(late.total_seconds()), grace_minutes=sched.misfire_grace_minutes,
            recorded=recorded,
        )  # fmt: skip

    def _schedule(self, name: str) -> ScheduleConfig | None:
        return next((s for s in self.config.schedules if s.name == name), None)

    def _guarded(self, what: Callable[[], object]) -> None:
        with self._count_lock:
            self._in_flight += 1
            self._idle.clear()
        try:
            with self._serial:
                if self.stop.is_set():
                    return
                what()
        finally:
            with self._count_lock:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()

    def run_schedule(self, name: str) -> None:
        """The job: run `name` for its latest fire time (APScheduler checked the grace)."""
        self._guarded(lambda: run_due(self.ctx, name))

    def run_ingest(self, source_name: str) -> None:
        source = next((s for s in self.config.sources if s.name == source_name), None)
        if source is not None:
            self._guarded(lambda: ingest_one(self.ctx, source, datetime.now(UTC)))

    # -- recovery ------------------------------------------------------------------------

    def recover(self) -> None:
        """What a stopped or crashed scheduler left: runs cut short are marked, recorded
        editions are finished, and a run that sent nothing is made up within its grace."""
        store, now = self.store, datetime.now(UTC)
        for run in store.schedule_runs(statuses=("running",)):
            if run.owner == self.owner or not (run.owner in self.ctx.gone or owner_gone(run.owner)):
                continue
            status = "partial" if run.editions else "abandoned"
            detail = "interrupted mid-send" if run.editions else "interrupted before sending"
            if run.editions and any(d.edition in run.editions for d in store.drafts()):
                # Recorded as a draft, held: still the editor's to approve.
                status, detail = "drafted", "interrupted after composing a draft"
            store.update_run(
                run.schedule, run.period, run.owner, status=status, detail=detail, finished=now
            )
            log_event(
                "run_interrupted", logging.WARNING, schedule=run.schedule, period=run.period,
                status=status, editions=run.editions or None, previous_owner=run.owner,
            )  # fmt: skip
        self._finish_editions()
        self._check_drafts()
        for sched in self.config.schedules:
            last = store.schedule_runs(sched.name, limit=1)
            if not last or last[0].status not in RETAKABLE or last[0].editions:
                continue
            if now - last[0].scheduled <= grace(sched) and not self.stop.is_set():
                log_event("run_makeup", schedule=sched.name, period=last[0].period)
                self._guarded(partial(run_period, self.ctx, sched, last[0].scheduled))

    def check_drafts(self) -> None:
        """The drafts job: deadlines and notices (`runner.check_drafts`)."""
        self._guarded(self._check_drafts)

    def _check_drafts(self) -> None:
        released = check_drafts(self.ctx)
        if released:
            self._finish_editions(tuple(released))

    def retry(self, name: str) -> None:
        """The retry job of schedule `name`: deferred recipients that came due are sent, and
        a latest run that failed without sending anything (the mail server was down, a
        source was unreachable...) is run again while within its grace time."""
        sched = self._schedule(name)
        if sched is not None:
            self._guarded(partial(self._retry, sched))

    def _retry(self, sched: ScheduleConfig) -> None:
        last = self.store.schedule_runs(sched.name, limit=1)
        if not last:
            return
        run = last[0]
        if run.status == "partial":
            # Only this schedule's own editions: an edition that `digest send` recorded may
            # be being sent by that process right now.
            self._finish_editions(run.editions)
            return
        if run.status not in RETAKABLE or run.editions:
            return
        if datetime.now(UTC) - run.scheduled > grace(sched):
            return
        log_event("run_retry", schedule=sched.name, period=run.period, previous=run.status)
        run_period(self.ctx, sched, run.scheduled)

    def _finish_editions(self, only: tuple[str, ...] | None = None) -> None:
        """Send what recorded editions (every one, or those in `only`) still owe: pending
        rows, and deferred rows now due."""
        unfinished = self.store.unfinished_editions()
        if only is not None:
            unfinished = [e for e in unfinished if e in only]
        if unfinished:
            try:
                with (
                    sending(self.store, stop=self.stop),
                    smtp_endpoint(self.config) as (host, port),
                ):
                    asyncio.run(self._resume(host, port, unfinished))
            except SendBusy as exc:
                log_event("resume_postponed", logging.WARNING, reason=str(exc))
            except DigestError as exc:
                log_event("resume_failed", logging.ERROR, error=str(exc))
        settle_runs(self.store, self.owner)

    async def _resume(self, host: str, port: int, editions: list[str]) -> None:
        factory = MessageFactory(self.config)
        async with self.ctx.sender_factory(self.config, host, port) as sender:
            with self.stop.attached() as stop:
                await resume_unfinished(
                    self.ctx, factory, sender, stop, (host, port), editions=editions
                )


def run_due(ctx: RunContext, name: str) -> None:
    sched = next((s for s in ctx.config.schedules if s.name == name), None)
    if sched is None:
        log_event("schedule_unknown", logging.WARNING, schedule=name)
        return
    now = datetime.now(UTC)
    fire = latest_fire(trigger_for(ctx.config, sched), now, grace(sched))
    if fire is None:
        log_event("run_not_due", logging.WARNING, schedule=name, now=now.isoformat())
        return
    run_period(ctx, sched, fire)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes >= 48 * 60:
        return f"{minutes / 1440:.1f} days"
    if minutes >= 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{minutes}m"


# -- the job functions (referenced by name in the job store) ----------------------------------


def run_scheduled_job(config_path: str, schedule: str) -> None:
    """APScheduler's job for a schedule. Outside a running `digest schedule` (another
    process replaying the job store, a test), a one-off run with its own owner token: the
    run key still keeps the period from being sent twice."""
    service = _ACTIVE.get(config_path)
    if service is not None:
        service.run_schedule(schedule)
        return
    config = load_config(config_path)
    store = Store.from_config(config.store)
    owner = owner_token()
    try:
        run_due(RunContext(config, store, owner, StopSignal()), schedule)
    finally:
        release_owner(owner)
        store.close()


def run_retry_job(config_path: str, schedule: str) -> None:
    """APScheduler's retry job for a schedule; only a running `digest schedule` retries."""
    service = _ACTIVE.get(config_path)
    if service is not None:
        service.retry(schedule)


def run_drafts_job(config_path: str, name: str) -> None:
    """APScheduler's drafts job; only a running `digest schedule` checks drafts."""
    service = _ACTIVE.get(config_path)
    if service is not None:
        service.check_drafts()


def run_ingest_job(config_path: str, source: str) -> None:
    service = _ACTIVE.get(config_path)
    if service is not None:
        service.run_ingest(source)
