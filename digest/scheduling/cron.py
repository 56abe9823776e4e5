"""When schedules fire: cron expressions, the friendly forms, and the period of a run.

    cron = "0 8 * * mon"                       # minute hour day-of-month month day-of-week
    cron = "weekly on monday at 08:00"         # weekly on DAY[, DAY and DAY] at HH:MM
    cron = "every monday and thursday at 8:30" # the same, with "every"
    cron = "daily at 07:30"                    # also "every day at 07:30"
    cron = "weekdays at 07:00"                 # monday to friday
    cron = "monthly on day 1 at 09:00"         # also "monthly on the 1st at 09:00"

A run's *period* is the scheduled time on the schedule's own wall clock, "2025-03-10T08:00".
It is the second half of the run key (schedule, period): a run fired twice for the same wall
clock time (the repeated hour when daylight saving ends, a clock set back, a replay after a
restart) has the same key and is refused by the store's unique constraint.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from digest.config import Config, ScheduleConfig
from digest.errors import ConfigError

DAYS = {
    "monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu",
    "friday": "fri", "saturday": "sat", "sunday": "sun",
}  # fmt: skip
FORMS = (
    "'M H DOM MON DOW', 'weekly on monday at 08:00', 'daily at 07:30', 'weekdays at 07:00' "
    "or 'monthly on day 1 at 09:00'"
)
_TIME = r"(\d{1,2}):(\d{2})"
_WEEKLY = re.compile(rf"^(?:weekly on|every) ([a-z ,]+?) at {_TIME}$")
_DAILY = re.compile(rf"^(?:daily|every day) at {_TIME}$")
_WEEKDAYS = re.compile(rf"^(?:weekdays|every weekday) at {_TIME}$")
_MONTHLY = re.compile(rf"^monthly on (?:day |the )(\d{{1,2}})(?:st|nd|rd|th)? at {_TIME}$")


def _clock(hour: str, minute: str, where: str) -> str:
    h, m = int(hour), int(minute)
    if h > 23 or m > 59:
        raise ConfigError(f"{where}: no such time of day {hour}:{minute} (use {FORMS})")
    return f"{m} {h}"


def to_crontab(expr: str, where: str = "cron") -> str:
    """The five-field crontab for a friendly form; a crontab is returned as it is."""
    text = " ".join(expr.split())
    low = text.lower()
    if m := _DAILY.match(low):
        return f"{_clock(m.group(1), m.group(2), where)} * * *"
    if m := _WEEKDAYS.match(low):
        return f"{_clock(m.group(1), m.group(2), where)} * * mon-fri"
    if m := _MONTHLY.match(low):
        day = int(m.group(1))
        if not 1 <= day <= 31:
            raise ConfigError(f"{where}: no such day of the month {day}")
        return f"{_clock(m.group(2), m.group(3), where)} {day} * *"
    if m := _WEEKLY.match(low):
        names = [n for n in re.split(r"\s*,\s*|\s+and\s+", m.group(1).strip()) if n]
        days: list[str] = []
        for name in names:
            # "monday", "mondays" or "mon"
            short = DAYS.get(name) or DAYS.get(name.rstrip("s"))
            short = short or (name if name in DAYS.values() else None)
            if short is None:
                raise ConfigError(f"{where}: unknown day {name!r} in {expr!r}")
            days.append(short)
        return f"{_clock(m.group(2), m.group(3), where)} * * {','.join(days)}"
    return text


def parse_cron(expr: str, where: str = "cron", timezone: tzinfo | str = "UTC") -> CronTrigger:
    """The APScheduler trigger for a cron expression or a friendly form, in `timezone`."""
    tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    try:
        return CronTrigger.from_crontab(to_crontab(expr, where), timezone=tz)
    except ValueError as exc:
        raise ConfigError(f"{where}: invalid schedule {expr!r}: {exc} (use {FORMS})") from None


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
