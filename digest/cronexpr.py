"""Cron expressions and their friendly forms, parsed into APScheduler triggers.

    cron = "0 8 * * mon"                       # minute hour day-of-month month day-of-week
    cron = "weekly on monday at 08:00"         # weekly on DAY[, DAY and DAY] at HH:MM
    cron = "every monday and thursday at 8:30" # the same, with "every"
    cron = "daily at 07:30"                    # also "every day at 07:30"
    cron = "weekdays at 07:00"                 # monday to friday
    cron = "monthly on day 1 at 09:00"         # also "monthly on the 1st at 09:00"

A low module (stdlib, APScheduler and `digest.errors` only), so that config validation can
parse a schedule without importing the `digest.scheduling` services.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from digest.errors import ConfigError

__all__ = ["DAYS", "FORMS", "parse_cron", "to_crontab"]

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
