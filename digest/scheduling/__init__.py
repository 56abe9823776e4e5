"""Scheduling: `[[schedules]]` fired by APScheduler, each period sent once.

cron.py     a schedule's trigger, fire times and periods (parsing: `digest.cronexpr`)
runner.py   one run: claim the run key (schedule, period), ingest, plan, record, send
service.py  `digest schedule`: the job store, the lock, signals, recovery
listing.py  `digest schedule --list`
events.py   structured log lines and the cross-thread stop signal
command.py  the command's entry points, `serve` and `list_lines`
"""

from __future__ import annotations

from digest.scheduling.command import list_lines, serve
from digest.scheduling.cron import latest_fire, next_runs, parse_cron, period_of, to_crontab
from digest.scheduling.events import StopSignal, format_event, log_event
from digest.scheduling.listing import list_schedules

__all__ = [
    "StopSignal",
    "format_event",
    "latest_fire",
    "list_lines",
    "list_schedules",
    "log_event",
    "next_runs",
    "parse_cron",
    "period_of",
    "serve",
    "to_crontab",
]
