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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from digest.bounces import verp_address
from digest.compose.message import MessageTemplate
from digest.config import DeliveryConfig
from digest.errors import DeliveryIncomplete, StoreError
from digest.models import Recipient
from digest.process import process_token, token_gone
from digest.send import Outcome, Sender
from digest.send.dkim import DKIMSigner
from digest.store import DueDelivery, LeaseLost, Settle, Store

HARD_BOUNCE_CODES = ("550", "551", "553")


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


class SettleWriter:
    """Records outcomes of claimed rows off the event loop, in group commits: while one
    transaction is written, the outcomes of the other connections gather for the next one.
    A connection waits for its outcome's commit before it takes its next message, so at any
    moment each connection has at most one accepted message not yet recorded: a crash resends
    at most one message per connection."""

    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner
        self.buffer: list[Settle] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.ready = asyncio.Event()
        self.lock = asyncio.Lock()
        self.closed = False
        # One thread, always the same: a store connection stays in the thread that made it.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="digest-settle")

    def add(self, result: Settle) -> asyncio.Future[None]:
        """Queue `result`; the future is done when it is committed (or its write failed)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer.append(result)
        self.waiters.append(done)
        self.ready.set()
        return done

    async def flush(self) -> None:
        """Write what has gathered; returns once every outcome added so far is recorded
        (waiting for a write already under way)."""
        async with self.lock:
            await self._write()

    async def _write(self) -> None:
        while self.buffer:
            batch, self.buffer = self.buffer, []
            waiters, self.waiters = self.waiters, []
            self.ready.clear()
            loop = asyncio.get_running_loop()
            try:
                refused = await loop.run_in_executor(
                    self.executor, self.store.settle_claimed, self.owner, batch
                )
                if refused:
                    raise LeaseLost(
                        f"{len(refused)} recipient(s) were taken over by another sender (this "
                        "one held them past its lease); stopping so that nobody gets two copies"
                    )
            except BaseException:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.cancel()  # their connections stop; the error is raised here
                raise
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def run(self) -> None:
        """Write batches until closed, then the last one."""
        while not self.closed:
            await self.ready.wait()
            await self.flush()
        await self.flush()

    async def close(self) -> None:
        self.closed = True
        self.ready.set()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


_LIVE_OWNERS: set[str] = set()  # lease owners in use in this process


def lease_holder_gone(owner: str) -> bool:
    """True when a lease's holder is known to be gone: a dead process on this host."""
    return token_gone(owner, _LIVE_OWNERS)


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
    lease_seconds: float = 120.0,
) -> DeliveryReport:
    """Claim and send every due row of the digests in `templates`; see the module docstring.
    `shard` (index, count) says this is one of `count` sending processes: each takes its
    part of the rate limits."""
    clock = clock or SystemClock()
    rng = rng or random.Random()
    stop = stop or asyncio.Event()
    report = DeliveryReport()
    workers_total = shard[1] if shard else 1
    # Limits are shared by the worker processes: each takes its part.
    limiter = RateLimiter(config.rate_per_second / workers_total)
    ids = sorted(templates)
    owner = process_token()
    _LIVE_OWNERS.add(owner)
    writer = SettleWriter(store, owner)
    held: dict[tuple[str, str], float] = {}  # claimed, not settled: monotonic lease end
    paused_until = 0.0  # monotonic: the server is unavailable until then
    unavailable = ""
    # A row is sent only while its lease has this long left: time for one SMTP exchange, so a
    # sender that froze never sends what another sender has reclaimed meanwhile.
    margin = lease_seconds / 3

    async def settle(row: DueDelivery, outcome: Outcome) -> None:
        status, reply, next_try = outcome.status, outcome.reply, None
        if status == "deferred":
            attempt = row.attempts + 1
            age = clock.now() - created[row.digest_id]
            if attempt >= config.max_attempts or age > timedelta(hours=config.max_age_hours):
                status, reply = "failed", f"gave up after {attempt} attempt(s): {reply}"
            else:
                next_try = clock.now() + timedelta(seconds=backoff(attempt, config, rng))
        # Not held any more once its outcome is queued: the settle ends its lease, and a row
        # deferred for a moment may be claimed again before this commit returns.
        held.pop((row.digest_id, row.email), None)
        await writer.add(Settle(row.digest_id, row.email, row.status, status, reply, next_try))
        # A mailbox that does not exist never gets another digest.
        hard = outcome.stage == "rcpt" and reply[:3] in HARD_BOUNCE_CODES
        if outcome.status == "failed" and hard:
            store.suppress(row.email, "bounced", reply)
        report.add(row.email, status, reply)
        if on_progress:
            on_progress(report)

    async def deliver(row: DueDelivery) -> None:
        nonlocal paused_until, unavailable
        if stop.is_set():
            return  # its lease is given back below
        if row.suppressed:
            await settle(row, Outcome("failed", f"not sent: address suppressed ({row.suppressed})"))
            return
        try:
            envelope = templates[row.digest_id].build(recipient(row.email, row.name))
        except ValueError as exc:
            await settle(row, Outcome("failed", f"not sent: {exc}"))
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
        if time.monotonic() < paused_until or stop.is_set():
            return  # the server went down meanwhile: the row goes back, pending
        if time.monotonic() > held.get((row.digest_id, row.email), 0.0) - margin:
            await renew((row.digest_id, row.email))
        outcome = await sender.send(envelope)
        if outcome.stage == "unavailable":
            # Not this recipient's attempt: the row goes back, pending; the run pauses.
            paused_until = max(paused_until, time.monotonic() + max(outcome.retry_after, 0.05))
            unavailable = outcome.reply
            return
        await settle(row, outcome)

    queue: asyncio.Queue[DueDelivery | None] = asyncio.Queue(maxsize=concurrency * 4)
    in_flight = 0
    idle = asyncio.Event()
    idle.set()

    renewing = asyncio.Lock()

    async def renew(key: tuple[str, str]) -> None:
        """Extend the leases of every row held, in one statement, before one of them is sent
        with less than `margin` left (a slow server, a busy host). When another sender took
        any of them over (this one was suspended past its lease), it stops: LeaseLost."""
        async with renewing:
            if time.monotonic() <= held.get(key, 0.0) - margin:
                return  # another connection renewed them meanwhile
            keys = list(held)
            ends = time.monotonic() + lease_seconds
            until = clock.now() + timedelta(seconds=lease_seconds)
            loop = asyncio.get_running_loop()
            kept = await loop.run_in_executor(
                writer.executor, store.renew_leases, owner, keys, until
            )
            if key not in held or kept < len(keys):
                raise LeaseLost(
                    f"{len(keys) - kept} recipient(s) were taken over by another sender (this "
                    "one's leases ran out: was it suspended?); stopping so that nobody gets "
                    "two copies"
                )
            for k in keys:
                if k in held:
                    held[k] = ends

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

    async def give_back() -> None:
        """Rows claimed and not settled go back to the pool (pending, no lease)."""
        keys = list(held)
        held.clear()
        if keys:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(writer.executor, store.release_claimed, owner, keys)

    claim_size = max(concurrency * 4, 16)
    limits = [
        (window, most)
        for window, most in (
            (timedelta(hours=1), config.rate_per_hour),
            (timedelta(days=1), config.rate_per_day),
        )
        if most
    ]
    # Leases of senders that died on this host are ended first: a resume right after a
    # crash sends their rows now, not when their leases run out.
    store.expire_leases_of(ids, lease_holder_gone, clock.now())
    workers: list[asyncio.Task[None]] = []
    try:
        async with asyncio.TaskGroup() as group:
            flusher = group.create_task(writer.run())
            workers = [group.create_task(worker()) for _ in range(concurrency)]
            try:
                while not stop.is_set() and not report.limited:
                    while not stop.is_set() and time.monotonic() >= paused_until:
                        # The hourly and daily limits are checked in the claim itself, so
                        # that they hold across every process that sends.
                        claimed, limited = store.claim_within_limits(
                            ids,
                            owner,
                            clock.now(),
                            limit=claim_size,
                            lease_seconds=lease_seconds,
                            limits=limits,
                        )
                        if limited and not claimed:
                            report.limited = "the hourly or daily sending limit is reached"
                            break
                        if not claimed:
                            break
                        ends = time.monotonic() + lease_seconds
                        for row in claimed:
                            held[(row.digest_id, row.email)] = ends
                        for row in claimed:
                            in_flight += 1
                            idle.clear()
                            await queue.put(row)
                    # Every row handed out is settled (or given back) before going on.
                    await idle.wait()
                    await writer.flush()
                    await give_back()
                    if stop.is_set() or report.limited:
                        break
                    if time.monotonic() < paused_until:
                        if not await pause(paused_until - time.monotonic()):
                            break
                        continue  # a new pass: the rows given back are due again
                    unavailable = ""
                    # What is left: deferred rows not yet due, and rows leased by another
                    # sender that may have died (claimable when its lease runs out).
                    retry = store.next_retry(ids)
                    lease_end = store.next_lease_end(ids, clock.now(), owner)
                    due = [d for d in (retry, lease_end) if d is not None]
                    if not due:
                        break
                    wait = (min(due) - clock.now()).total_seconds()
                    if lease_end is not None:
                        # Another sender holds rows: it may finish them long before its lease
                        # ends (a sibling process), or be dead (another host): look again
                        # every second rather than sleeping until the lease ends.
                        wait = min(wait, 1.0)
                    if not await pause(wait):
                        break
            except BaseException:
                # A fault (or a cancellation): nobody may wait on the queue any more.
                for task in workers:
                    task.cancel()
                await writer.close()
                raise
            for _ in workers:
                queue.put_nowait(None)  # idle here: the queue is empty
            await writer.close()
            await flusher
        await give_back()
    except BaseExceptionGroup as group_error:
        raise resumable(_first_error(group_error)) from None
    except StoreError as exc:
        raise resumable(exc) from None
    finally:
        writer.shutdown()
        _LIVE_OWNERS.discard(owner)
    report.unavailable = unavailable
    return report


def resumable(exc: BaseException) -> BaseException:
    """A store that fails while rows are leased (PostgreSQL ended a session this sender held
    past its lease while it was suspended, the server restarted, a full disk) stops this
    sender with its work resumable: what it did not record is pending, and its leases run
    out for another sender or `digest send --resume` (exit code 75, like a lost lease)."""
    if isinstance(exc, StoreError):
        return DeliveryIncomplete(
            f"{exc}; this sender stopped: what it did not record stays pending, and "
            "`digest send --resume` (or another sender, once its leases run out) finishes it"
        )
    return exc


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped a delivery task group (not the cancellations it caused)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]
