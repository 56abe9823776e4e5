"""The delivery loop: every recipient's row ends sent or failed, or stays resumable.

Rows are read from the store a page at a time (recipients stream; 100,000 never sit in
memory), handed to `concurrency` workers, and each row is settled as soon as the server
answers:

    2xx                      -> sent, with the server's reply
    5xx                      -> failed at once; 550/551/553 at RCPT also suppress the address
    4xx, timeout, lost link  -> deferred with exponential backoff and jitter, until
                                `max_attempts` or `max_age_hours`, then failed

    server unavailable       -> left pending, not an attempt: the sender's circuit breaker
    (refused, 421)              is open; the run pauses until it may close, then goes on

A run waits for deferred rows that come due, or for an unavailable server, within
`wait_for_retries_seconds` in all; the rest stay deferred or pending for a later
`digest send --resume`. A daily or hourly limit reached mid-send leaves the remaining rows
pending.

Faults: when a result cannot be recorded (disk full, I/O error) or the sender fails in an
unexpected way, the run stops at once, the handed-out messages are abandoned (their rows stay
pending: resumable, at most one duplicate per connection) and the error is raised; it never
waits on a queue nobody reads.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from digest.bounces import verp_address
from digest.compose.message import MessageTemplate
from digest.config import DeliveryConfig
from digest.models import Recipient
from digest.send import Outcome, Sender
from digest.send.dkim import DKIMSigner
from digest.store import DueDelivery, Store

HARD_BOUNCE_CODES = ("550", "551", "553")
PAGE = 500


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class DeliveryReport:
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (email, reply)
    limited: str = ""  # why the run stopped early, if it did
    unavailable: str = ""  # the server was unavailable when the run gave up waiting for it
    worker_peak_rss_kb: int = 0  # the largest sending process's peak memory, when known
    started: float = field(default_factory=time.monotonic)

    def add(self, email: str, status: str, reply: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        if status == "failed":
            self.failures.append((email, reply))

    @property
    def sent(self) -> int:
        return self.counts.get("sent", 0)

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.sent / elapsed if elapsed > 0 else 0.0


def backoff(attempt: int, config: DeliveryConfig, rng: random.Random) -> float:
    """Seconds before retry number `attempt` (1-based): exponential, capped, +-25% jitter."""
    base = min(config.retry_base_seconds * 2.0 ** (attempt - 1), config.retry_max_seconds)
    return base * rng.uniform(0.75, 1.25)


class RateLimiter:
    """At most `per_second` acquisitions per second, spread evenly (0 = unlimited)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.next = time.monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            if self.next > now:
                await asyncio.sleep(self.next - now)
            self.next = max(self.next, now) + self.interval


RecipientFn = Callable[[str, str], Recipient]


async def run_deliveries(
    store: Store,
    templates: Mapping[str, MessageTemplate],
    created: Mapping[str, datetime],
    recipient: RecipientFn,
    sender: Sender,
    *,
    config: DeliveryConfig,
    concurrency: int,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    on_progress: Callable[[DeliveryReport], None] | None = None,
    stop: asyncio.Event | None = None,
    signer: DKIMSigner | None = None,
    shard: tuple[int, int] | None = None,
) -> DeliveryReport:
    """Send every due row of the digests in `templates`; see the module docstring."""
    clock = clock or SystemClock()
    rng = rng or random.Random()
    stop = stop or asyncio.Event()
    report = DeliveryReport()
    workers_total = shard[1] if shard else 1
    # Limits are shared by the worker processes: each takes its part.
    limiter = RateLimiter(config.rate_per_second / workers_total)
    ids = sorted(templates)
    now = clock.now()
    budget = _budget(store, config, now)
    if budget is not None and shard:
        budget = budget // workers_total + (1 if shard[0] < budget % workers_total else 0)

    paused_until = 0.0  # monotonic: the server is unavailable until then
    unavailable = ""

    def settle(row: DueDelivery, outcome: Outcome) -> None:
        status, reply, next_try = outcome.status, outcome.reply, None
        if status == "deferred":
            attempt = row.attempts + 1
            age = clock.now() - created[row.digest_id]
            if attempt >= config.max_attempts or age > timedelta(hours=config.max_age_hours):
                status, reply = "failed", f"gave up after {attempt} attempt(s): {reply}"
            else:
                next_try = clock.now() + timedelta(seconds=backoff(attempt, config, rng))
        store.settle_delivery(row.digest_id, row.email, status, reply, next_try)
        # A mailbox that does not exist never gets another digest.
        hard = outcome.stage == "rcpt" and reply[:3] in HARD_BOUNCE_CODES
        if outcome.status == "failed" and hard:
            store.suppress(row.email, "bounced", reply)
        report.add(row.email, status, reply)
        if on_progress:
            on_progress(report)

    async def deliver(row: DueDelivery) -> None:
        nonlocal paused_until, unavailable
        if row.suppressed:
            settle(row, Outcome("failed", f"not sent: address suppressed ({row.suppressed})"))
            return
        try:
            envelope = templates[row.digest_id].build(recipient(row.email, row.name))
        except ValueError as exc:
            settle(row, Outcome("failed", f"not sent: {exc}"))
            return
        if config.verp:
            # A per-recipient envelope sender: a bounce names its recipient by its address.
            envelope = replace(envelope, sender=verp_address(envelope.sender, envelope.recipient))
        if signer is not None:
            # Signed right here, on the event loop: OpenSSL's RSA takes about 0.7 ms, and a
            # signing thread measured slower (the hand-offs and GIL contention cost more than
            # the overlap gained on two cores); worker processes are the parallelism.
            envelope = replace(envelope, data=signer.sign(envelope.data))
        await limiter.acquire()
        if time.monotonic() < paused_until:
            return  # the server went down meanwhile: the row stays pending for the next pass
        outcome = await sender.send(envelope)
        if outcome.stage == "unavailable":
            # Not this recipient's attempt: the row stays pending, the run pauses.
            paused_until = max(paused_until, time.monotonic() + max(outcome.retry_after, 0.05))
            unavailable = outcome.reply
            return
        settle(row, outcome)

    queue: asyncio.Queue[DueDelivery | None] = asyncio.Queue(maxsize=concurrency * 4)
    in_flight = 0
    idle = asyncio.Event()
    idle.set()

    async def worker() -> None:
        nonlocal in_flight
        while (row := await queue.get()) is not None:
            try:
                await deliver(row)
            finally:
                in_flight -= 1
                if in_flight == 0:
                    idle.set()

    waited = 0.0

    async def pause(seconds: float) -> bool:
        """Wait `seconds` within the run's waiting budget; False when it is spent."""
        nonlocal waited
        # The run's whole waiting is bounded (not only each wait): with a clock that stands
        # still or jumps back, "due in 5 s" would otherwise repeat forever.
        waited += seconds
        if seconds > config.wait_for_retries_seconds or waited > config.wait_for_retries_seconds:
            return False
        await clock.sleep(max(seconds, 0.01))
        return True

    workers: list[asyncio.Task[None]] = []
    try:
        async with asyncio.TaskGroup() as group:
            workers = [group.create_task(worker()) for _ in range(concurrency)]
            try:
                while not stop.is_set() and not report.limited:
                    after = ("", "")
                    while not stop.is_set() and time.monotonic() >= paused_until:
                        page = store.due_deliveries(
                            ids, clock.now(), after=after, limit=PAGE, shard=shard
                        )
                        if not page:
                            break
                        after = (page[-1].digest_id, page[-1].email)
                        for row in page:
                            if budget is not None and budget <= 0:
                                report.limited = "the hourly or daily sending limit is reached"
                                break
                            if stop.is_set() or time.monotonic() < paused_until:
                                break
                            in_flight += 1
                            idle.clear()
                            await queue.put(row)
                            if budget is not None:
                                budget -= 1
                        if report.limited:
                            break
                    # Every row handed out is settled before looking for retries.
                    await idle.wait()
                    if stop.is_set() or report.limited:
                        break
                    if time.monotonic() < paused_until:
                        if not await pause(paused_until - time.monotonic()):
                            break
                        continue  # a new pass: the rows left pending are due again
                    unavailable = ""
                    next_try = store.next_retry(ids, shard)
                    if next_try is None:
                        break
                    if not await pause((next_try - clock.now()).total_seconds()):
                        break
            except BaseException:
                # A fault (or a cancellation): nobody may wait on the queue any more.
                for task in workers:
                    task.cancel()
                raise
            for _ in workers:
                queue.put_nowait(None)  # idle here: the queue is empty
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None
    report.unavailable = unavailable
    return report


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped a delivery task group (not the cancellations it caused)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


def _budget(store: Store, config: DeliveryConfig, now: datetime) -> int | None:
    limits = []
    if config.rate_per_hour:
        limits.append(config.rate_per_hour - store.sent_since(now - timedelta(hours=1)))
    if config.rate_per_day:
        limits.append(config.rate_per_day - store.sent_since(now - timedelta(days=1)))
    return max(min(limits), 0) if limits else None
