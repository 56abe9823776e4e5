"""One run of a schedule: claim its key, ingest, plan, record, send; or say why not.

The run key (schedule, period) is claimed in the store before anything else. Only the holder
of the key may record an edition for the period, and it writes the edition's id onto the key
(compare-and-set on the owner) *before* recording it. So:

- a second process, a restart, a clock jump or a replay finds the key taken and sends nothing;
- a run that stopped or crashed before recording anything left a key with no edition: it may be
  taken over (within the misfire grace time) and run again, since nothing was sent;
- a run that stopped or crashed mid-send left an edition with pending rows: those are finished
  by the next run, by `digest schedule` at start-up, or by `digest send --resume`, never planned
  again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from digest.approval import approve, draft_info, draft_rows, editor_notice, notices_due
from digest.compose.message import Envelope, message_id, parse_sender
from digest.compose.render import Renderer
from digest.config import Config, ScheduleConfig, SourceConfig
from digest.edition import Edition
from digest.errors import DigestError
from digest.ingest import ingest_all
from digest.locks import sending
from digest.outbox import MessageFactory, deliver_recorded, record_editions
from digest.pipeline import Planner, plan_edition
from digest.process import token_gone
from digest.scheduling.cron import period_of, zone_name
from digest.scheduling.events import StopSignal, log, log_event
from digest.send import Sender
from digest.send.catcher import smtp_endpoint
from digest.send.delivery import DeliveryReport
from digest.send.smtp import SMTPSender
from digest.send.workers import deliver_in_workers
from digest.store import ScheduleRun, Store, StoredSubscriber

# Statuses of a run key. `running` is in progress (or its process died); `partial` recorded an
# edition that still has rows pending or deferred; `abandoned` and `failed` sent nothing;
# `drafted` recorded drafts held for the editor (then `partial` once released, or `rejected`).
DONE = ("sent", "skipped", "quiet", "missed")
RETAKABLE = ("abandoned", "failed")

QUIET_NOTE = {
    "ko": (
        "{site}: 이번 주는 조용합니다",
        "이번 주에는 {site}에 새 글이 없어 다이제스트를 보내지 않습니다.\n"
        "다음 주에 새 글과 함께 찾아오겠습니다.\n\n"
        "수신 설정: {preferences}\n수신 거부: {unsubscribe}\n",
    ),
    "en": (
        "{site}: a quiet week",
        "Nothing new was published on {site} this week, so there is no digest this time.\n"
        "The next one comes with the next new posts.\n\n"
        "Preferences: {preferences}\nUnsubscribe: {unsubscribe}\n",
    ),
}


_LIVE: set[str] = set()  # owner tokens in use in this process


def owner_token() -> str:
    """Identifies one scheduler (or one-off run) in run keys and the lock: host:pid:random."""
    token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    _LIVE.add(token)
    return token


def release_owner(token: str) -> None:
    _LIVE.discard(token)


def owner_gone(owner: str) -> bool:
    """True only when the owner's process is known to be gone (same host: its pid is dead,
    or it is this process and no longer uses the token); False when it cannot be told."""
    return token_gone(owner, _LIVE)


SenderFactory = Callable[[Config, str, int], Sender]


def smtp_sender(config: Config, host: str, port: int) -> Sender:
    return SMTPSender.from_config(config.smtp, host, port)


@dataclass
class RunContext:
    """What a run needs from the process running it."""

    config: Config
    store: Store
    owner: str
    stop: StopSignal
    sender_factory: SenderFactory = smtp_sender
    gone: set[str] = field(default_factory=set)  # owners known dead (a replaced stale lock)


# -- claiming the run key ---------------------------------------------------------------------


def claim(ctx: RunContext, schedule: str, period: str, scheduled: datetime, now: datetime) -> bool:
    """Take the run key (schedule, period), or take over one that sent nothing and whose
    process is gone; False when the period is already done or being done."""
    store = ctx.store
    if store.insert_run(
        schedule, period, scheduled=scheduled, owner=ctx.owner, status="running", now=now
    ):
        return True
    existing = store.get_run(schedule, period)
    if existing is None or existing.editions:
        return False
    if existing.owner == ctx.owner and existing.status not in RETAKABLE:
        return False  # this process's own run, in progress or done
    if existing.status == "running":
        if existing.owner not in ctx.gone and not owner_gone(existing.owner):
            return False  # being run right now (or its process cannot be told dead)
    elif existing.status not in RETAKABLE:
        return False
    if store.retake_run(existing, owner=ctx.owner, now=now):
        log_event(
            "run_retaken", schedule=schedule, period=period, previous=existing.status,
            previous_owner=existing.owner,
        )  # fmt: skip
        return True
    return False


# -- one run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    editions: tuple[Edition, ...]
    quiet: tuple[StoredSubscriber, ...]  # served by this schedule, nothing new for them
    posts: int  # distinct posts across the editions


def run_period(ctx: RunContext, sched: ScheduleConfig, fire: datetime) -> ScheduleRun | None:
    """Run `sched` for the period of its fire time `fire`; None if the key was taken."""
    now = datetime.now(UTC)
    period = period_of(fire, zone_name(ctx.config, sched))
    scheduled = fire.astimezone(UTC)
    if not claim(ctx, sched.name, period, scheduled, now):
        run = ctx.store.get_run(sched.name, period)
        log_event(
            "run_duplicate", schedule=sched.name, period=period,
            status=run.status if run else None, owner=run.owner if run else None,
        )  # fmt: skip
        return None
    late = (now - scheduled).total_seconds()
    log_event("run_started", schedule=sched.name, period=period, late_seconds=round(late))
    try:
        _execute(ctx, sched, period, now)
    except DigestError as exc:
        _fail(ctx, sched.name, period, str(exc))
    except Exception as exc:  # a bug must not kill the scheduler; it is logged with its trace
        log.exception("event=run_crashed schedule=%s period=%s", sched.name, period)
        _fail(ctx, sched.name, period, f"internal error: {exc!r}")
    return ctx.store.get_run(sched.name, period)


def _fail(ctx: RunContext, schedule: str, period: str, detail: str) -> None:
    run = ctx.store.get_run(schedule, period)
    status = "failed"
    if run is not None and run.editions:
        status = _edition_status(ctx.store, run.editions)[0]
        if _held(ctx.store, run.editions):
            status = "drafted"
    ctx.store.update_run(
        schedule, period, ctx.owner, status=status, detail=detail, finished=datetime.now(UTC)
    )
    log_event("run_failed", logging.ERROR, schedule=schedule, period=period, status=status,
              error=detail)  # fmt: skip


def _execute(ctx: RunContext, sched: ScheduleConfig, period: str, now: datetime) -> None:
    config, store = ctx.config, ctx.store
    ingest(ctx, now, schedule=sched.name)
    sync_subscribers(config, store)
    if ctx.stop.is_set():
        _finish(ctx, sched.name, period, "abandoned", "stopped before sending", {})
        return
    # The send lock from planning to the last message, so that a `digest send` can neither
    # take the same rows nor plan the same posts into another issue meanwhile. Busy: this run
    # fails, and the schedule's retry job runs it again.
    with sending(store, stop=ctx.stop):
        plan = plan_run(config, store, sched, now)
        if not plan.editions and (sched.on_empty == "skip" or not plan.quiet):
            detail = (
                "nothing new" if sched.min_posts <= 1 else f"fewer than {sched.min_posts} new posts"
            )
            _finish(ctx, sched.name, period, "skipped", detail, {"quiet": len(plan.quiet)})
            return
        with smtp_endpoint(config) as (host, port):
            counts, recorded = asyncio.run(_deliver(ctx, sched, period, plan, host, port))
    if ctx.stop.is_set() and not recorded:
        # Retaken (made up) at the next start within the grace time; notes already sent are
        # recorded and not sent again.
        notes = counts.get("quiet_notes", 0)
        detail = f"stopped after {notes} quiet note(s)" if notes else "stopped before sending"
        _finish(ctx, sched.name, period, "abandoned", detail, counts)
        return
    if recorded and sched.approval == "draft":
        status, detail = "drafted", _draft_detail(sched)
    elif recorded:
        status, detail = _edition_status(store, recorded)
        if ctx.stop.is_set():
            detail = "stopped; " + detail
    else:
        status, detail = "quiet", "nothing new: quiet-week note sent"
    _finish(ctx, sched.name, period, status, detail, counts)


def _finish(
    ctx: RunContext, schedule: str, period: str, status: str, detail: str, counts: dict[str, int]
) -> None:
    ctx.store.update_run(
        schedule, period, ctx.owner, status=status, detail=detail, counts=counts,
        finished=datetime.now(UTC),
    )  # fmt: skip
    log_event(f"run_{status}", schedule=schedule, period=period, detail=detail, **counts)


def _draft_detail(sched: ScheduleConfig) -> str:
    deadline = sched.approve_deadline
    when = f"sent anyway {deadline} after composing" if deadline else "no deadline"
    return f"held for approval (`digest approve`; {when})"


def _held(store: Store, editions: tuple[str, ...] | list[str]) -> bool:
    """Whether any of `editions` is a draft still waiting for the editor."""
    return any(d.edition in editions for d in store.drafts())


def _edition_status(store: Store, editions: tuple[str, ...] | list[str]) -> tuple[str, str]:
    left = Counter[str]()
    for edition in editions:
        counts = store.delivery_counts(edition)
        left.update({k: counts.get(k, 0) for k in ("pending", "deferred")})
    if left["pending"] or left["deferred"]:
        return "partial", (
            f"{left['pending']} pending, {left['deferred']} deferred: "
            "finished by the scheduler's retries or `digest send --resume`"
        )
    return "sent", "every recipient settled"


def ingest(ctx: RunContext, now: datetime, *, schedule: str | None = None) -> None:
    """Poll every source, so the digest carries what was published up to its send time."""
    for r in asyncio.run(ingest_all(ctx.config, ctx.store, now)):
        _log_ingest(r.name, r.new, r.updated, r.unchanged, r.error, schedule)


def ingest_one(ctx: RunContext, source: SourceConfig, now: datetime) -> None:
    """Poll one source (its own `poll_minutes`, between sends)."""
    only = replace(ctx.config, sources=(source,))
    for r in asyncio.run(ingest_all(only, ctx.store, now)):
        _log_ingest(r.name, r.new, r.updated, r.unchanged, r.error, None)


def _log_ingest(
    name: str, new: int, updated: int, unchanged: int, error: str, schedule: str | None
) -> None:
    level = logging.WARNING if error else logging.INFO
    log_event(
        "ingest", level, schedule=schedule, source=name, new=new, updated=updated,
        unchanged=unchanged, error=error or None,
    )  # fmt: skip


def sync_subscribers(config: Config, store: Store) -> None:
    """Add new addresses from `subscribers.files`; bad rows are logged and skipped."""
    from digest.subscribers import sync_list_files

    for problem in sync_list_files(config, store):
        log_event("subscriber_skipped", logging.WARNING, problem=problem)


def plan_run(config: Config, store: Store, sched: ScheduleConfig, now: datetime) -> Plan:
    """One edition per theme of the schedule (or one by everyone's preferences); a digest
    with fewer than `min_posts` posts is dropped and its readers count as quiet."""
    editions: list[Edition] = []
    quiet: dict[str, StoredSubscriber] = {}
    posts: set[str] = set()
    # A post planned for a reader in one of this run's editions is not planned again for
    # them in the next (a post that matches two of the schedule's themes).
    planned: dict[str, frozenset[str]] = {}
    planner = Planner(config, store, Renderer(config.templates.folder), now)
    themes = sched.themes or (None,)
    for at, theme in enumerate(themes):
        edition = plan_edition(
            config, store, now=now, theme=theme, planner=planner, planned=planned
        )
        # Only a later edition reads `planned`: the last (or only) one adds no reader to it.
        later = at + 1 < len(themes)
        keep = []
        for variant in edition.variants:
            keys = {k for ks in variant.sections.values() for k in ks}
            if len(keys) >= sched.min_posts:
                keep.append(variant)
                posts |= keys
                for sub in variant.recipients if later else ():
                    planned[sub.email] = planned.get(sub.email, frozenset()) | keys
            else:
                quiet.update({s.email: s for s in variant.recipients})
        quiet.update({s.email: s for s in edition.quiet})
        if keep:
            editions.append(replace(edition, variants=tuple(keep)))
    # A reader quiet in one edition but served by another is not quiet: looked up among the
    # quiet ones only, so a million served readers are never a set.
    served = {
        s.email
        for e in editions if quiet
        for v in e.variants
        for s in v.recipients
        if s.email in quiet
    }  # fmt: skip
    return Plan(
        tuple(editions),
        tuple(s for e, s in sorted(quiet.items()) if e not in served),
        len(posts),
    )


async def _deliver(
    ctx: RunContext, sched: ScheduleConfig, period: str, plan: Plan, host: str, port: int
) -> tuple[dict[str, int], list[str]]:
    config, store = ctx.config, ctx.store
    totals: Counter[str] = Counter()
    recorded: list[str] = []
    factory = MessageFactory(config)
    draft = sched.approval == "draft"
    # Connect first: an unreachable server fails here, before anything is recorded.
    async with ctx.sender_factory(config, host, port) as sender:
        with ctx.stop.attached() as stop:
            await resume_unfinished(ctx, factory, sender, stop, (host, port), schedule=sched.name)
            if plan.editions and not stop.is_set():
                # Every edition of the run, with all its rows, and the run key's list of
                # editions: one transaction. A crash leaves all of it (finished by a resume)
                # or none of it (the period is run again); StoreError if the key was lost.
                ids = [e.id for e in plan.editions]
                # A draft: the same transaction, its rows held for the editor.
                drafts = (
                    draft_rows(config, plan.editions, sched, period, datetime.now(UTC))
                    if draft
                    else []
                )
                record_editions(
                    plan.editions, factory, store, run=(sched.name, period, ctx.owner, ids),
                    drafts=drafts,
                )  # fmt: skip
                recorded.extend(ids)
                for edition in plan.editions if draft else ():
                    log_event(
                        "draft_composed", schedule=sched.name, period=period,
                        edition=edition.id, issue=edition.issue_number, theme=edition.theme,
                        recipients=edition.recipients, deadline=sched.approve_deadline or None,
                    )  # fmt: skip
                if draft:
                    await notify_editors(ctx, sender, ids)
            for edition in plan.editions if recorded and not draft else ():
                if stop.is_set():
                    break
                report = await send_edition(ctx, edition.id, factory, sender, stop, (host, port))
                totals.update(report.counts)
                log_event(
                    "edition_sent", schedule=sched.name, period=period, edition=edition.id,
                    issue=edition.issue_number, theme=edition.theme,
                    digests=[v.digest.id for v in edition.variants],
                    recipients=edition.recipients, **report.counts,
                )  # fmt: skip
            if sched.on_empty == "quiet-note" and plan.quiet and not stop.is_set():
                sent = await send_quiet_notes(
                    config, store, factory, sender, sched, period, plan.quiet, stop
                )
                totals["quiet_notes"] += sent
    totals["posts"] = plan.posts
    return dict(totals), recorded


async def send_edition(
    ctx: RunContext,
    edition_id: str,
    factory: MessageFactory,
    sender: Sender,
    stop: asyncio.Event,
    endpoint: tuple[str, int],
) -> DeliveryReport:
    """Send a recorded edition's due rows: from `delivery.processes` worker processes when
    there are several (as `digest send` does; the scheduler's own process holds the Korean
    analyzer and one core), else on `sender`'s connections in this process."""
    if ctx.config.delivery.processes > 1 and ctx.sender_factory is smtp_sender:
        if isinstance(sender, SMTPSender):
            await sender.release()  # `smtp.concurrency` is the workers' now
        host, port = endpoint
        # In a thread, so this loop stays free; an unclean stop of `digest schedule` exits
        # without waiting for it (`digest.scheduling.command.serve`).
        report: DeliveryReport = await asyncio.to_thread(
            deliver_in_workers, ctx.config, edition_id, host, port,
            store=ctx.store, stop=ctx.stop.is_set,
        )  # fmt: skip
        return report
    return await deliver_recorded(edition_id, factory, sender, ctx.store, stop=stop)


async def resume_unfinished(
    ctx: RunContext,
    factory: MessageFactory,
    sender: Sender,
    stop: asyncio.Event,
    endpoint: tuple[str, int],
    *,
    schedule: str | None = None,
    editions: list[str] | None = None,
) -> None:
    """Finish editions (`editions`, or every one) that an earlier run or send left with rows
    pending or due."""
    for edition_id in ctx.store.unfinished_editions() if editions is None else editions:
        if stop.is_set():
            return
        report = await send_edition(ctx, edition_id, factory, sender, stop, endpoint)
        log_event("edition_resumed", schedule=schedule, edition=edition_id, **report.counts)
    settle_runs(ctx.store, ctx.owner)


def settle_runs(store: Store, owner: str) -> None:
    """Runs whose editions were finished since (by a resume) become `sent`."""
    unfinished = set(store.unfinished_editions())
    unfinished |= {d.edition for d in store.drafts()}  # held: not finished either
    for run in store.schedule_runs(statuses=("partial",)):
        if not unfinished.intersection(run.editions):
            store.update_run(
                run.schedule, run.period, run.owner, status="sent",
                detail="every recipient settled (finished by a resume)",
                finished=datetime.now(UTC),
            )  # fmt: skip
            log_event("run_sent", schedule=run.schedule, period=run.period, resumed_by=owner)


# -- drafts (digest.approval) -----------------------------------------------------------------


async def notify_editors(ctx: RunContext, sender: Sender, only: list[str] | None = None) -> int:
    """Tell the editor of each held draft (of `only`, or every one not told yet); a notice
    that is not accepted is tried again by the next `check_drafts`. The number told."""
    told = 0
    for draft in notices_due(ctx.store):
        if only is not None and draft.edition not in only:
            continue
        info = draft_info(ctx.store, draft)
        envelope = editor_notice(ctx.config, info, draft.notify, datetime.now(UTC))
        outcome = await sender.send(envelope)
        if outcome.status == "sent":
            ctx.store.mark_notified(draft.edition, datetime.now(UTC))
            told += 1
        log_event(
            "draft_notified" if outcome.status == "sent" else "draft_notice_not_sent",
            logging.INFO if outcome.status == "sent" else logging.WARNING,
            edition=draft.edition, issue=info.issue_number, to=draft.notify,
            status=outcome.status, reply=outcome.reply or None,
        )  # fmt: skip
    return told


def check_drafts(ctx: RunContext) -> list[str]:
    """The scheduler's look at the drafts: those past their deadline are released (sent
    without approval, logged as a warning), editors not told yet are told. Returns the
    released editions, for the caller to send."""
    store, now = ctx.store, datetime.now(UTC)
    released = []
    for draft in store.due_drafts(now):
        try:
            approve(ctx.config, store, draft, note=None, by="deadline", now=now)
        except DigestError as exc:
            log_event("draft_release_failed", logging.ERROR, edition=draft.edition, error=str(exc))
            continue
        released.append(draft.edition)
        log_event(
            "draft_deadline", logging.WARNING, schedule=draft.schedule, edition=draft.edition,
            deadline=draft.deadline.isoformat() if draft.deadline else None,
            detail="not approved by its deadline: sent without approval",
        )  # fmt: skip
    if notices_due(store) and not ctx.stop.is_set():

        async def tell(host: str, port: int) -> None:
            async with ctx.sender_factory(ctx.config, host, port) as sender:
                await notify_editors(ctx, sender)

        try:
            with smtp_endpoint(ctx.config) as (host, port):
                asyncio.run(tell(host, port))
        except DigestError as exc:
            log_event("draft_notice_failed", logging.WARNING, error=str(exc))
    return released


async def send_quiet_notes(
    config: Config,
    store: Store,
    factory: MessageFactory,
    sender: Sender,
    sched: ScheduleConfig,
    period: str,
    recipients: tuple[StoredSubscriber, ...],
    stop: asyncio.Event,
) -> int:
    """A short plain-text note to each reader with nothing new. Each note is recorded before
    it goes out and settled after, so a run made up after a crash or a stop sends only the
    notes still owed (the one in flight at a crash may go twice)."""
    sent = 0
    address = parse_sender(config.site.sender)[1]
    now = datetime.now(UTC)
    settled = store.quiet_notes_settled(sched.name, period)
    for sub in recipients:
        if stop.is_set():
            break
        if sub.email in settled:
            continue
        envelope = quiet_note(config, factory, address, sched.name, period, sub, now)
        store.record_quiet_note(sched.name, period, sub.email, "pending", "", datetime.now(UTC))
        outcome = await sender.send(envelope)
        store.record_quiet_note(
            sched.name, period, sub.email, outcome.status, outcome.reply, datetime.now(UTC)
        )
        if outcome.status == "sent":
            sent += 1
        else:
            log_event(
                "quiet_note_not_sent", logging.WARNING, schedule=sched.name, period=period,
                email=sub.email, status=outcome.status, reply=outcome.reply,
            )  # fmt: skip
    return sent


def quiet_note(
    config: Config,
    factory: MessageFactory,
    address: str,
    schedule: str,
    period: str,
    sub: StoredSubscriber,
    now: datetime,
) -> Envelope:
    language = sub.language if sub.language in QUIET_NOTE else config.site.language
    subject, body = QUIET_NOTE[language]
    recipient = factory.recipient(sub.email, sub.name)
    values = {
        "site": config.site.name,
        "preferences": recipient.preferences_url,
        "unsubscribe": recipient.unsubscribe_url,
    }
    msg = EmailMessage(policy=SMTP)
    msg["From"] = config.site.sender
    msg["To"] = sub.email
    msg["Subject"] = subject.format(**values)
    msg["Date"] = format_datetime(now)
    mid = message_id(f"quiet:{schedule}:{period}", sub.email, factory.domain)
    msg["Message-ID"] = mid
    msg["List-Unsubscribe"] = f"<{recipient.unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body.format(**values))
    data = msg.as_bytes()
    if factory.signer is not None:
        data = factory.signer.sign(data)
    return Envelope(sender=address, recipient=sub.email, message_id=mid, data=data)
