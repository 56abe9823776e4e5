"""Schedules: cron expressions (or a friendly form) run in the foreground with APScheduler.

    cron = "0 8 * * mon"                      # minute hour day month day-of-week
    cron = "weekly on monday at 08:00"        # friendly forms: weekly on DAY at HH:MM,
    cron = "daily at 07:30"                   #                 daily at HH:MM

Each schedule fires in its own timezone (default: the site's). A run is `ingest` then `send`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from digest.errors import ConfigError

log = logging.getLogger("digest.schedule")

_DAYS = {
    "monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu",
    "friday": "fri", "saturday": "sat", "sunday": "sun",
}  # fmt: skip
_WEEKLY = re.compile(r"^weekly on (\w+) at (\d{1,2}):(\d{2})$", re.IGNORECASE)
_DAILY = re.compile(r"^daily at (\d{1,2}):(\d{2})$", re.IGNORECASE)
MISFIRE_GRACE_SECONDS = 6 * 3600  # a Monday 08:00 digest may still go out by 14:00, not later


def to_crontab(expr: str, where: str = "cron") -> str:
    text = " ".join(expr.split())
    if m := _WEEKLY.match(text):
        day = _DAYS.get(m.group(1).lower()) or m.group(1).lower()[:3]
        if day not in _DAYS.values():
            raise ConfigError(f"{where}: unknown day {m.group(1)!r}")
        return f"{int(m.group(3))} {int(m.group(2))} * * {day}"
    if m := _DAILY.match(text):
        return f"{int(m.group(2))} {int(m.group(1))} * * *"
    return text


def parse_cron(expr: str, where: str = "cron", timezone: tzinfo | str = "UTC") -> CronTrigger:
    tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    try:
        return CronTrigger.from_crontab(to_crontab(expr, where), timezone=tz)
    except ValueError as exc:
        raise ConfigError(
            f"{where}: invalid schedule {expr!r}: {exc} "
            "(use 'M H DOM MON DOW' or 'weekly on monday at 08:00')"
        ) from None


def next_runs(trigger: CronTrigger, now: datetime, count: int = 3) -> list[datetime]:
    runs: list[datetime] = []
    previous: datetime | None = None
    current = now
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, current)
        if fire is None:
            break
        runs.append(fire)
        previous, current = fire, fire
    return runs


def run_forever(jobs: list[tuple[str, CronTrigger, Callable[[], object]]]) -> None:
    """Run jobs until interrupted. Missed runs are coalesced into one, within the grace time."""
    scheduler = BlockingScheduler(
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
        }
    )
    for name, trigger, func in jobs:
        scheduler.add_job(func, trigger, id=name, name=name)
        log.info("schedule %s: next run %s", name, trigger.get_next_fire_time(None, datetime.now(trigger.timezone)))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=True)
