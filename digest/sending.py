"""A send from start to finish, for every edge that sends (the CLI; the scheduler has its own
run keys around the same steps): take the send lock, finish what earlier sends left, plan,
record the edition whole, deliver from worker processes, and say how it ended.

Every way a send can end is one of:

- done: every recipient settled (sent, or failed for a reason of their own);
- `DeliveryIncomplete` (exit code 75): the server was unavailable longer than the run waits,
  the process was asked to stop (SIGTERM, Ctrl-C), lost the send lock while planning, or lost
  its lease on rows it held (another sender took them over); every message is recorded or
  still pending, and `digest send --resume` (from any machine) finishes the edition;
- `DeliveryError`: messages were handed to the server and none was accepted, a result could
  not be recorded (the store failed), or a worker failed; nothing is lost either.

The send lock is held only while planning and recording, and released on every path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from digest.config import Config, base_url_problem
from digest.edition import Edition
from digest.errors import DeliveryError, DeliveryIncomplete
from digest.locks import sending
from digest.outbox import MessageFactory, record_editions, send_test_copies
from digest.past import past_digest, past_message, subscriber_name
from digest.send import Sender
from digest.send.catcher import smtp_endpoint
from digest.send.delivery import DeliveryReport
from digest.send.workers import deliver_in_workers
from digest.stop import StopSignal
from digest.store import Store, StoredDigest, StoredSubscriber


class Reporter(Protocol):
    """Where a send tells what it does: the CLI prints, a service logs."""

    def info(self, line: str) -> None: ...

    def warn(self, line: str) -> None: ...

    def progress(self, total: int) -> Callable[[DeliveryReport], None] | None: ...

    def progress_done(self) -> None: ...


@dataclass(frozen=True)
class SendRequest:
    theme: str | None = None
    to: str | None = None  # a test copy to this (normalized) address; nothing recorded
    dry_run: bool = False
    resume_only: bool = False
    retry_failed: str | None = None  # an edition id: its failed rows go back to pending
    # With `to`: a copy of this past edition ("latest", an id or an issue number) instead
    # of the next one. Without it, a test copy of the next edition, or of the latest one
    # when nothing is new.
    edition: str | None = None


TEST_MARK = "[TEST] "  # before a test copy's subject: never mistaken for the real issue


def where(config: Config, host: str, port: int) -> str:
    return f"Maildir {config.smtp.maildir}" if config.smtp.embedded else f"{host}:{port}"


def run_send(
    config: Config,
    store: Store,
    request: SendRequest,
    reporter: Reporter,
    *,
    now: datetime,
    stop: StopSignal,
    sync: Callable[[], None] = lambda: None,
) -> None:
    """One `digest send` (or the send half of `digest run`); see the module docstring.
    `sync` adds the list files' new subscribers, under the lock, before planning."""
    from digest.pipeline import plan_edition

    if stop.is_set():
        raise DeliveryIncomplete(
            f"stopped before sending ({stop.reason}); nothing recorded", exit_code=stop.exit_code()
        )
    if request.resume_only and not store.unfinished_editions():
        reporter.info("nothing to resume: every recipient of every digest is settled")
        return
    test_only = request.to is not None or request.dry_run
    plans = not test_only and not request.resume_only and request.retry_failed is None
    with ExitStack() as stack:
        # The send (planning) lock while this send plans and records its edition: another
        # process can never plan the same posts into a second issue. Delivery needs no lock:
        # rows are claimed (digest.store.claims), so any number of processes, a resume or
        # `digest send --resume` on another machine, deliver together. Test copies, dry runs,
        # resumes and retries plan nothing and need no lock.
        planning = stack.enter_context(ExitStack())
        if plans:
            planning.enter_context(sending(store, stop=stop))
        factory = MessageFactory(config)
        if request.retry_failed is not None:
            requeued, kept = store.requeue_failed(request.retry_failed)
            reporter.info(
                f"edition {request.retry_failed}: {requeued} failed recipient(s) requeued"
                + (f", {kept} suppressed address(es) left failed" if kept else "")
            )
        unfinished = [] if test_only else store.unfinished_editions()
        edition: Edition | None = None
        past: StoredDigest | None = None
        if request.to is not None and request.edition is not None:
            past = past_digest(store, request.edition, request.to)
        elif not request.resume_only and request.retry_failed is None:
            if request.to is not None:
                copy = [StoredSubscriber(request.to, "", (), "", "active")]
                edition = plan_edition(config, store, now=now, theme=request.theme, recipients=copy)
                if not edition.variants and not request.dry_run:
                    # Nothing new: the copy is of what went out last, so there is always
                    # something to look at.
                    past = past_digest(store, "latest", request.to)
                    reporter.info(
                        f"nothing new for {request.to}; sending a copy of the latest issue "
                        f"(#{past.issue_number}, edition {past.edition})"
                    )
                    edition = None
            else:
                sync()
                edition = plan_edition(config, store, now=now, theme=request.theme)
                if not edition.variants and not edition.quiet:
                    who = f"for theme {request.theme!r} " if request.theme else ""
                    raise DeliveryError(
                        f"no active subscribers {who}in {config.store.display()}: nothing to send "
                        "(add some with `digest subscribers import FILE`)"
                    )
            if edition is not None and edition.quiet:
                reporter.info(f"{len(edition.quiet)} subscriber(s) have nothing new this time")
            if edition is not None and not edition.variants:
                reporter.info("nothing new to send: no new posts for any subscriber")
                edition = None
        if edition is not None and request.dry_run:
            size = sum(
                len(factory.envelope(v, s).data) for v in edition.variants for s in v.recipients
            )
            reporter.info(
                f"dry run: {edition.recipients} message(s) in {len(edition.variants)} "
                f"variant(s), {size / 1024:.0f} KB in all; nothing sent"
            )
            return
        if edition is None and not unfinished and past is None:
            if request.resume_only:
                reporter.info("nothing to resume: every recipient of every digest is settled")
            return
        if stop.is_set():
            raise DeliveryIncomplete(
                f"stopped before sending ({stop.reason}); nothing recorded",
                exit_code=stop.exit_code(),
            )

        host, port = stack.enter_context(smtp_endpoint(config))
        at = where(config, host, port)
        problem = base_url_problem(config.web)
        if problem is not None and not config.smtp.embedded:
            reporter.warn(problem)  # a real send: readers get these links
        name = subscriber_name(store, request.to) if past and request.to else ""
        test_report = asyncio.run(
            _connect_and_test(config, factory, request, edition, past, name, host, port)
        )
        if test_report is not None:
            _report(reporter, "test copy", test_report, at)
            if test_report.sent == 0:
                raise DeliveryError("no message was accepted")
            return
        if edition is not None:
            record_editions([edition], factory, store)
        planning.close()  # recorded: the lock goes, delivery is by claims
        jobs = [*unfinished, *([edition.id] if edition is not None else [])]
        fresh = edition.id if edition is not None else None
        _deliver(config, store, reporter, jobs, fresh, host, port, at, stop)


def deliver_editions(
    config: Config, store: Store, editions: list[str], reporter: Reporter, *, stop: StopSignal
) -> None:
    """Deliver recorded editions now (an approved draft), by claims like any sender: no lock,
    and a `digest send --worker` or the scheduler may share the rows. Ends as `run_send` does."""
    with smtp_endpoint(config) as (host, port):
        at = where(config, host, port)
        _deliver(config, store, reporter, editions, editions[0], host, port, at, stop)


async def _connect_and_test(
    config: Config,
    factory: MessageFactory,
    request: SendRequest,
    edition: Edition | None,
    past: StoredDigest | None,
    name: str,
    host: str,
    port: int,
) -> DeliveryReport | None:
    from digest.send.smtp import SMTPSender

    # Connect first: a wrong host or port fails here, before anything is recorded (a busy
    # server, a 421 greeting, does not: the workers wait for it).
    async with SMTPSender.from_config(config.smtp, host, port) as sender:
        if request.to is not None and past is not None:
            return await _send_past_copy(past, request.to, name, factory, sender)
        if request.to is not None and edition is not None:
            return await send_test_copies(edition, factory, sender, subject_mark=TEST_MARK)
    return None


async def _send_past_copy(
    digest: StoredDigest, email: str, name: str, factory: MessageFactory, sender: Sender
) -> DeliveryReport:
    report = DeliveryReport()
    outcome = await sender.send(past_message(factory, digest, email, name, mark=TEST_MARK))
    report.add(email, outcome.status, outcome.reply)
    return report


def _deliver(
    config: Config,
    store: Store,
    reporter: Reporter,
    jobs: list[str],
    fresh: str | None,
    host: str,
    port: int,
    at: str,
    stop: StopSignal,
) -> None:
    """Deliver the recorded editions `jobs` in turn; raise how the send ended, if not done."""
    accepted = True
    for edition_id in jobs:
        if stop.is_set():
            break
        counts = store.delivery_counts(edition_id)
        progress = reporter.progress(counts.get("pending", 0) + counts.get("deferred", 0))
        try:
            report = deliver_in_workers(
                config, edition_id, host, port, store=store, on_progress=progress,
                stop=stop.is_set,
            )  # fmt: skip
        finally:
            reporter.progress_done()
        digests = store.edition_digests(edition_id)
        label = f"issue #{digests[0].issue_number}" if digests else edition_id
        if digests and digests[0].theme:
            label = f"{digests[0].theme} {label}"
        if edition_id != fresh:
            label += " (resumed)"
        _report(reporter, label, report, at)
        # Failure means messages were handed to the server and none was accepted; retries
        # that are not due yet, or a reached limit, are not failures.
        accepted = accepted and (report.sent > 0 or report.done == 0 or bool(report.limited))
        after = store.delivery_counts(edition_id)
        if report.unavailable and (after.get("pending", 0) or after.get("deferred", 0)):
            raise DeliveryIncomplete(
                f"the SMTP server {at} is unavailable ({report.unavailable}): "
                f"{after.get('pending', 0)} message(s) left pending; `digest send --resume` "
                "sends them when it is back"
            )
    if stop.is_set():
        pending = sum(
            store.delivery_counts(e).get("pending", 0) for e in store.unfinished_editions()
        )
        raise DeliveryIncomplete(
            f"stopped: {stop.reason or 'asked to stop'}; {pending} message(s) left pending "
            "for `digest send --resume`",
            exit_code=stop.exit_code(),
        )
    if not accepted:
        raise DeliveryError("no message was accepted")


def _report(reporter: Reporter, label: str, report: DeliveryReport, at: str) -> None:
    for email, reply in report.failures:
        reporter.warn(f"{email}: {reply}")
    counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts.items()))
    reporter.info(f"{label}: {report.sent} message(s) sent to {at} ({counts or 'nothing due'})")
    if report.limited:
        reporter.info(f"stopped early: {report.limited}; the rest stays pending (send --resume)")
    if report.counts.get("deferred"):
        reporter.info("some messages are deferred and will be retried by `digest send --resume`")


__all__ = ["Reporter", "SendRequest", "deliver_editions", "run_send", "smtp_endpoint", "where"]
