"""Schedule run keys and the one-scheduler-per-database lock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from digest.store.base import StoreBase
from digest.store.records import (
    SchedulerLock,
    ScheduleRun,
)
from digest.store.tables import (
    quiet_notes,
    schedule_runs,
    scheduler_lock,
)


class ScheduleStore(StoreBase):
    # -- scheduling: run keys (digest.scheduling) ----------------------------------------

    def insert_run(
        self,
        schedule: str,
        period: str,
        *,
        scheduled: datetime,
        owner: str,
        status: str,
        now: datetime,
        detail: str = "",
    ) -> bool:
        """Claim the run key (schedule, period); False when it is already taken."""
        try:
            with self.begin() as conn:
                conn.execute(
                    schedule_runs.insert().values(
                        schedule=schedule,
                        period=period,
                        scheduled=scheduled,
                        status=status,
                        owner=owner,
                        editions="",
                        detail=detail,
                        counts={},
                        started=now,
                        finished=None if status == "running" else now,
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def retake_run(self, expected: ScheduleRun, *, owner: str, now: datetime) -> bool:
        """Take over a run that recorded no edition (so sent nothing) if it is still exactly
        `expected`: compare-and-set, so of two processes trying, one wins."""
        with self.begin() as conn:
            result = conn.execute(
                schedule_runs.update()
                .where(
                    schedule_runs.c.schedule == expected.schedule,
                    schedule_runs.c.period == expected.period,
                    schedule_runs.c.status == expected.status,
                    schedule_runs.c.owner == expected.owner,
                    schedule_runs.c.started == expected.started,
                    schedule_runs.c.editions == "",
                )
                .values(status="running", owner=owner, started=now, finished=None, detail="")
            )
        return bool(result.rowcount)

    def update_run(self, schedule: str, period: str, owner: str, **values: Any) -> bool:
        """Change a run `owner` holds: status, editions (a sequence), detail, counts, finished."""
        if "editions" in values:
            values["editions"] = " ".join(values["editions"])
        with self.begin() as conn:
            result = conn.execute(
                schedule_runs.update()
                .where(
                    schedule_runs.c.schedule == schedule,
                    schedule_runs.c.period == period,
                    schedule_runs.c.owner == owner,
                )
                .values(**values)
            )
        return bool(result.rowcount)

    def get_run(self, schedule: str, period: str) -> ScheduleRun | None:
        with self.begin() as conn:
            row = conn.execute(
                sa.select(schedule_runs).where(
                    schedule_runs.c.schedule == schedule, schedule_runs.c.period == period
                )
            ).first()
        return None if row is None else _row_to_run(row)

    def schedule_runs(
        self, schedule: str | None = None, *, statuses: Sequence[str] = (), limit: int = 100
    ) -> list[ScheduleRun]:
        """Runs, the latest scheduled first; of one schedule, or in some statuses."""
        query = sa.select(schedule_runs).order_by(schedule_runs.c.scheduled.desc()).limit(limit)
        if schedule is not None:
            query = query.where(schedule_runs.c.schedule == schedule)
        if statuses:
            query = query.where(schedule_runs.c.status.in_(list(statuses)))
        with self.begin() as conn:
            return [_row_to_run(r) for r in conn.execute(query)]

    # -- scheduling: one scheduler per database (digest.scheduling) ----------------------

    def quiet_notes_settled(self, schedule: str, period: str) -> set[str]:
        """Readers whose quiet note for this period was sent or failed for good."""
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(quiet_notes.c.email).where(
                    quiet_notes.c.schedule == schedule,
                    quiet_notes.c.period == period,
                    quiet_notes.c.status.in_(("sent", "failed")),
                )
            )
            return {row.email for row in rows}

    def record_quiet_note(
        self, schedule: str, period: str, email: str, status: str, reply: str, now: datetime
    ) -> None:
        values = {"status": status, "reply": reply, "updated": now}
        with self.begin() as conn:
            updated = conn.execute(
                quiet_notes.update()
                .where(
                    quiet_notes.c.schedule == schedule,
                    quiet_notes.c.period == period,
                    quiet_notes.c.email == email,
                )
                .values(**values)
            )
            if not updated.rowcount:
                conn.execute(
                    quiet_notes.insert().values(
                        schedule=schedule, period=period, email=email, **values
                    )
                )

    # The lock table holds one row per lock name: "scheduler" (one `digest schedule` per
    # database) and "sender" (one process delivering at a time, see digest.locks).

    def scheduler_lock(self, name: str = "scheduler") -> SchedulerLock | None:
        with self.begin() as conn:
            row = conn.execute(
                sa.select(scheduler_lock).where(scheduler_lock.c.name == name)
            ).first()
        if row is None:
            return None
        return SchedulerLock(row.owner, row.pid, row.host, row.started, row.heartbeat)

    def take_scheduler_lock(
        self,
        owner: str,
        *,
        pid: int,
        host: str,
        now: datetime,
        replacing: SchedulerLock | None,
        name: str = "scheduler",
    ) -> bool:
        """Become the scheduler: insert the lock, or replace exactly `replacing` (a holder
        found stale). Compare-and-set: of two processes trying at once, one wins."""
        values = {"owner": owner, "pid": pid, "host": host, "started": now, "heartbeat": now}
        try:
            with self.begin() as conn:
                if replacing is None:
                    conn.execute(scheduler_lock.insert().values(name=name, **values))
                    return True
                result = conn.execute(
                    scheduler_lock.update()
                    .where(
                        scheduler_lock.c.name == name,
                        scheduler_lock.c.owner == replacing.owner,
                        scheduler_lock.c.heartbeat == replacing.heartbeat,
                    )
                    .values(**values)
                )
                return bool(result.rowcount)
        except sa.exc.IntegrityError:
            return False

    def beat_scheduler_lock(self, owner: str, now: datetime, name: str = "scheduler") -> bool:
        """Refresh the holder's heartbeat; False when `owner` no longer holds the lock."""
        with self.begin() as conn:
            result = conn.execute(
                scheduler_lock.update()
                .where(scheduler_lock.c.name == name, scheduler_lock.c.owner == owner)
                .values(heartbeat=now)
            )
        return bool(result.rowcount)

    def release_scheduler_lock(self, owner: str, name: str = "scheduler") -> None:
        with self.begin() as conn:
            conn.execute(
                scheduler_lock.delete().where(
                    scheduler_lock.c.name == name, scheduler_lock.c.owner == owner
                )
            )


def _row_to_run(row: Any) -> ScheduleRun:
    return ScheduleRun(
        schedule=row.schedule,
        period=row.period,
        scheduled=row.scheduled,
        status=row.status,
        owner=row.owner,
        editions=tuple(row.editions.split()),
        detail=row.detail,
        counts=dict(row.counts),
        started=row.started,
        finished=row.finished,
    )
