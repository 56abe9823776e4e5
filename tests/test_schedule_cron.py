"""Schedule expressions, friendly forms, periods and fire times (no clock needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.errors import ConfigError
from digest.scheduling.cron import latest_fire, next_runs, parse_cron, period_of, to_crontab
from digest.scheduling.events import format_event

NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("friendly", "crontab"),
    [
        ("weekly on monday at 08:00", "0 8 * * mon"),
        ("Weekly on Monday at 8:05", "5 8 * * mon"),
        ("every monday and thursday at 08:30", "30 8 * * mon,thu"),
        ("every mon, thu at 8:30", "30 8 * * mon,thu"),
        ("weekly on mondays, fridays at 18:00", "0 18 * * mon,fri"),
        ("daily at 07:30", "30 7 * * *"),
        ("every day at 23:59", "59 23 * * *"),
        ("weekdays at 07:00", "0 7 * * mon-fri"),
        ("monthly on day 1 at 09:00", "0 9 1 * *"),
        ("monthly on the 15th at 09:00", "0 9 15 * *"),
        ("0 8 * * mon", "0 8 * * mon"),
    ],
)
def test_friendly_forms(friendly: str, crontab: str) -> None:
    assert to_crontab(friendly) == crontab
    parse_cron(friendly, "cron", "Asia/Seoul")


@pytest.mark.parametrize(
    "bad", ["daily at 24:00", "weekly on funday at 08:00", "monthly on day 32 at 09:00", "soon"]
)
def test_bad_forms_name_the_key(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^schedules\[0\]\.cron: "):
        parse_cron(bad, "schedules[0].cron")


def test_period_is_the_wall_clock_time_so_the_repeated_hour_is_one_period() -> None:
    trigger = parse_cron("daily at 01:30", "cron", NEW_YORK)
    fires = next_runs(trigger, datetime(2025, 11, 1, 12, tzinfo=UTC), 3)
    # APScheduler fires at both 01:30 EDT and 01:30 EST on 2 November...
    assert [f.astimezone(UTC) for f in fires] == [
        datetime(2025, 11, 2, 5, 30, tzinfo=UTC),
        datetime(2025, 11, 2, 6, 30, tzinfo=UTC),
        datetime(2025, 11, 3, 6, 30, tzinfo=UTC),
    ]
    # ...which are one period.
    assert [period_of(f, "America/New_York") for f in fires] == [
        "2025-11-02T01:30", "2025-11-02T01:30", "2025-11-03T01:30",
    ]  # fmt: skip


def test_the_missing_hour_still_runs_once() -> None:
    trigger = parse_cron("daily at 02:30", "cron", NEW_YORK)
    fires = next_runs(trigger, datetime(2025, 3, 8, 12, tzinfo=UTC), 3)
    assert [period_of(f, "America/New_York") for f in fires] == [
        "2025-03-09T02:30", "2025-03-10T02:30", "2025-03-11T02:30",
    ]  # fmt: skip
    assert fires[0].astimezone(UTC) == datetime(2025, 3, 9, 7, 30, tzinfo=UTC)


def test_latest_fire_within_the_window() -> None:
    trigger = parse_cron("weekly on monday at 08:00", "cron", "Asia/Seoul")
    monday = datetime(2025, 3, 2, 23, 0, tzinfo=UTC)  # 08:00 KST
    assert latest_fire(trigger, monday + timedelta(hours=2), timedelta(hours=6)) == monday
    assert latest_fire(trigger, monday, timedelta(hours=6)) == monday
    assert latest_fire(trigger, monday - timedelta(seconds=1), timedelta(hours=6)) is None
    assert latest_fire(trigger, monday + timedelta(days=3), timedelta(hours=6)) is None


def test_log_lines_are_one_line_of_key_values() -> None:
    line = format_event(
        "run_failed", {"schedule": "weekly", "error": 'SMTP "down"\nnow', "digests": ["a", "b"]}
    )
    assert "\n" not in line
    assert line == 'event=run_failed schedule=weekly error="SMTP \\"down\\"\\nnow" digests=a,b'
