"""When schedules fire: a schedule's trigger, its fire times, and the period of a run.

Parsing cron expressions and their friendly forms ("weekly on monday at 08:00") lives in the
low module `digest.cronexpr` (config validation uses it too); `parse_cron` and `to_crontab`
are re-exported here.

A run's *period* is the scheduled time on the schedule's own wall clock, "2025-03-10T08:00".
It is the second half of the run key (schedule, period): a run fired twice for the same wall
clock time (the repeated hour when daylight saving ends, a clock set back, a replay after a
restart) has the same key and is refused by the store's unique constraint.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from digest.config import Config, ScheduleConfig
from digest.cronexpr import DAYS, FORMS, parse_cron, to_crontab

__all__ = [
    "DAYS",
    "FORMS",
    "grace",
    "latest_fire",
    "next_runs",
    "parse_cron",
    "period_of",
    "to_crontab",
    "trigger_for",
    "zone_name",
]


def zone_name(config: Config, schedule: ScheduleConfig) -> str:
    return schedule.timezone or config.site.timezone


def trigger_for(config: Config, schedule: ScheduleConfig) -> CronTrigger:
    return parse_cron(schedule.cron, f"schedules.{schedule.name}", zone_name(config, schedule))


def grace(schedule: ScheduleConfig) -> timedelta:
    return timedelta(minutes=schedule.misfire_grace_minutes)


def next_runs(trigger: CronTrigger, now: datetime, count: int = 3) -> list[datetime]:
    """The next `count` fire times after `now`, in the trigger's timezone."""
    runs: list[datetime] = []
    previous: datetime | None = None
    current = now
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, current)
        if fire is None:
            break
        runs.append(fire)
        # In UTC: wall-clock arithmetic on the repeated hour would step back in time.
        previous, current = fire, fire.astimezone(UTC) + timedelta(microseconds=1)
    return runs


def latest_fire(trigger: CronTrigger, now: datetime, window: timedelta) -> datetime | None:
    """The last fire time at or before `now` and no older than `window`, or None."""
    start = now - window
    found: datetime | None = None
    previous: datetime | None = None
    current = start
    while True:
        fire = trigger.get_next_fire_time(previous, current)
        if fire is None or fire > now:
            return found
        found = fire
        # In UTC: wall-clock arithmetic on the repeated hour would step back in time.
        previous, current = fire, fire.astimezone(UTC) + timedelta(microseconds=1)


def period_of(fire: datetime, zone: str) -> str:
    """The run's period: its scheduled time on the schedule's wall clock, to the minute."""
    return fire.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
