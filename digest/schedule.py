"""Schedules: the `[[schedules]]` of the config, run by `digest schedule`.

The implementation lives in the `digest.scheduling` package; this module keeps the names
other modules import (`parse_cron` for config validation) and the command's entry points.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime

from digest.config import Config
from digest.scheduling.cron import latest_fire, next_runs, parse_cron, period_of, to_crontab
from digest.scheduling.listing import list_schedules
from digest.store import Store

__all__ = [
    "latest_fire",
    "list_lines",
    "next_runs",
    "parse_cron",
    "period_of",
    "serve",
    "to_crontab",
]


def list_lines(config: Config, store: Store) -> list[str]:
    """What `digest schedule --list` prints. Runs whose editions were finished since by
    `digest send --resume` are marked sent first, so the last run's result is current."""
    from digest.scheduling.runner import settle_runs

    settle_runs(store, "digest schedule --list")
    return list_schedules(config, store, datetime.now(UTC))


def serve(config: Config, store: Store) -> None:
    """`digest schedule`: run in the foreground until SIGTERM or SIGINT.

    Every event is logged as one line (`event=... schedule=...`) on stderr at INFO level,
    whatever `--verbose` says: this is a service's log.
    """
    from digest.scheduling.service import SchedulerService

    logging.getLogger("digest").setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    service = SchedulerService(config, store)
    if not service.serve_forever():
        # A send is still at work in another thread (or in delivery worker processes, whose
        # pool the interpreter would wait for at exit): `shutdown_timeout` bounds the exit,
        # so leave now. Workers die with this process; unsettled rows stay pending.
        print(
            "error: stopped with a send still in flight after the shutdown timeout; its "
            "unsettled messages stay pending for `digest send --resume`",
            file=sys.stderr,
            flush=True,
        )
        logging.shutdown()
        os._exit(1)
