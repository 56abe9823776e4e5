"""`digest schedule --list`: each schedule's next runs, its last run, and who is scheduling."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from digest.config import Config
from digest.scheduling.cron import next_runs, period_of, trigger_for, zone_name
from digest.store import ScheduleRun, Store


def upcoming(config: Config, name: str, now: datetime, count: int = 3) -> list[datetime]:
    """The next `count` runs that would send: a wall-clock time repeated when daylight saving
    ends is one period, so it is listed once."""
    sched = next(s for s in config.schedules if s.name == name)
    zone = zone_name(config, sched)
    seen: set[str] = set()
    runs: list[datetime] = []
    for fire in next_runs(trigger_for(config, sched), now, count * 2):
        period = period_of(fire, zone)
        if period not in seen:
            seen.add(period)
            runs.append(fire)
    return runs[:count]


def describe_run(run: ScheduleRun | None) -> str:
    if run is None:
        return "never"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()) if v)
    text = f"{run.period} ({run.scheduled:%Y-%m-%d %H:%M} UTC): {run.status}"
    if run.detail:
        text += f": {run.detail}"
    if counts:
        text += f" [{counts}]"
    if run.editions:
        text += f" edition {', '.join(run.editions)}"
    return text


def list_schedules(config: Config, store: Store, now: datetime) -> list[str]:
    lines: list[str] = []
    for sched in config.schedules:
        zone = zone_name(config, sched)
        runs = upcoming(config, sched.name, now)
        local = ", ".join(r.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z") for r in runs)
        utc = ", ".join(r.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") for r in runs)
        last = store.schedule_runs(sched.name, limit=1)
        audience = ", ".join(sched.themes) if sched.themes else "everyone, by their preferences"
        lines.append(f"{sched.name}: next {local} ({zone})")
        lines.append(f"  in UTC: {utc}")
        lines.append(f"  last run: {describe_run(last[0] if last else None)}")
        lines.append(
            f"  sends: {audience}; on_empty {sched.on_empty}; min_posts {sched.min_posts}; "
            f"misfire grace {sched.misfire_grace_minutes} min"
        )
    holder = store.scheduler_lock()
    if holder is None:
        lines.append("scheduler: not running")
    else:
        age = (now - holder.heartbeat).total_seconds()
        lines.append(
            f"scheduler: pid {holder.pid} on {holder.host}, since "
            f"{holder.started:%Y-%m-%d %H:%M} UTC, last heartbeat {age:.0f}s ago"
        )
    return lines
