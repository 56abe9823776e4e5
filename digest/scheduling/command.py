"""The `digest schedule` command's entry points: `serve` and `list_lines` (`--list`).

The runner and the service (and with them the pipeline and the senders) are imported when a
command runs, so `import digest.scheduling` stays light.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime

from digest.config import Config
from digest.scheduling.listing import list_schedules
from digest.store import Store

__all__ = ["list_lines", "serve"]


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
