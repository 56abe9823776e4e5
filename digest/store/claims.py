"""Delivery by claiming: senders lease due rows in small batches and settle only their own.

Any number of senders, in any number of processes on any number of hosts, deliver one edition
together. A claim leases up to `limit` due rows (pending, or deferred and due) that nobody
holds, in one statement: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two senders never take the
same row; on SQLite the statement takes the database's write lock, which does the same. A
settle is accepted only from the lease's owner: a sender whose lease was taken over (it froze
past its lease, another sender reclaimed the row) learns it when it settles and stops. An
expired lease is reclaimed by the next claim, once: the claim itself takes it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from digest.errors import DeliveryError
from digest.store.base import StoreBase
from digest.store.records import DueDelivery
from digest.store.tables import (
    UTCDateTime,
    deliveries,
    digest_counts,
    digests,
    settings,
    subscribers,
    suppressions,
)

STATUSES = ("pending", "sent", "deferred", "failed")


@dataclass(frozen=True)
class Settle:
    """The outcome of one claimed row, as the sender's writer records it."""

    digest_id: str
    email: str
    was: str  # the row's status when it was claimed: pending or deferred
    status: str  # sent | deferred | failed
    reply: str
    next_try: datetime | None = None
    attempt: bool = True  # False: a deferral that was not the recipient's attempt


class LeaseLost(DeliveryError):
    """Rows this sender held were no longer leased to it (another sender took them over):
    it stops, and what it did not record is finished by the others."""

    exit_code = 75


class _SomeRefused(Exception):
    """A batch touched fewer rows than it settles: some are not this sender's any more."""


_SETTLE = sa.text(
    "UPDATE deliveries SET status = :status, reply = :reply, next_try = :next_try,"
    " updated = :updated, attempts = attempts + :inc, lease_owner = NULL, lease_until = NULL"
    " WHERE digest_id = :digest_id AND email = :email AND lease_owner = :owner"
)


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        deliveries.c.status == "pending",
        sa.and_(deliveries.c.status == "deferred", deliveries.c.next_try <= now),
    )


class ClaimStore(StoreBase):
    def claim_deliveries(
        self,
        digest_ids: Sequence[str],
        owner: str,
        now: datetime,
        *,
        limit: int,
        lease_seconds: float,
    ) -> list[DueDelivery]:
        """Lease up to `limit` due rows nobody holds (or whose lease expired) to `owner`."""
        free = sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now)
        keys = (
            sa.select(deliveries.c.digest_id, deliveries.c.email)
            .where(deliveries.c.digest_id.in_(list(digest_ids)), _due(now), free)
            .order_by(deliveries.c.digest_id, deliveries.c.email)
            .limit(limit)
        )
        if self.engine.dialect.name == "postgresql":
            keys = keys.with_for_update(skip_locked=True)
        until = now + timedelta(seconds=lease_seconds)
        with self.begin() as conn:
            claimed = conn.execute(
                deliveries.update()
                .where(sa.tuple_(deliveries.c.digest_id, deliveries.c.email).in_(keys))
                .values(lease_owner=owner, lease_until=until)
                .returning(
                    deliveries.c.digest_id,
                    deliveries.c.email,
                    deliveries.c.message_id,
                    deliveries.c.attempts,
                    deliveries.c.status,
                )
            ).all()
            if not claimed:
                return []
            pairs = [(r.digest_id, r.email) for r in claimed]
            emails = sorted({r.email for r in claimed})
            names = dict(
                conn.execute(
                    sa.select(subscribers.c.email, subscribers.c.name).where(
                        subscribers.c.email.in_(emails)
                    )
                ).all()
            )
            suppressed = dict(
                conn.execute(
                    sa.select(suppressions.c.email, suppressions.c.reason).where(
                        suppressions.c.email.in_(emails)
                    )
                ).all()
            )
        rows = [
            DueDelivery(
                r.digest_id,
                r.email,
                r.message_id,
                r.attempts,
                names.get(r.email, "") or "",
                suppressed.get(r.email),
                r.status,
            )
            for r in claimed
        ]
        order = {pair: i for i, pair in enumerate(sorted(pairs))}
        rows.sort(key=lambda d: order[(d.digest_id, d.email)])
        return rows

    def settle_claimed(self, owner: str, results: Iterable[Settle]) -> list[Settle]:
        """Record the outcomes of rows leased to `owner`, and the digests' counters, in one
        transaction; returns the results that were refused (the row is no longer `owner`'s).
        """
        results = list(results)
        if not results:
            return []
        try:
            return self._settle_all(owner, results)
        except _SomeRefused:
            return self._settle_each(owner, results)  # rolled back: find which, one by one

    def _settle_all(self, owner: str, results: list[Settle]) -> list[Settle]:
        """The hot path: one statement for the whole batch (executemany), which must touch
        exactly one row per result; else _SomeRefused, and the transaction is rolled back."""
        now = datetime.now(UTC)
        stamp = UTCDateTime().process_bind_param
        params = [
            {
                "status": r.status,
                "reply": r.reply,
                "next_try": stamp(r.next_try, None),
                "updated": stamp(now, None),
                "inc": 1 if r.attempt else 0,
                "digest_id": r.digest_id,
                "email": r.email,
                "owner": owner,
            }
            for r in results
        ]
        with self.begin() as conn:
            done = conn.execute(_SETTLE, params)
            if done.rowcount != len(results):
                raise _SomeRefused
            self._count(conn, results, now)
        return []

    def _count(self, conn: sa.Connection, results: list[Settle], now: datetime) -> None:
        """The digests' counters and first-sent times, for settled `results`."""
        moves: dict[str, Counter[str]] = {}
        sent_digests: set[str] = set()
        for r in results:
            move = moves.setdefault(r.digest_id, Counter())
            move[r.was] -= 1
            move[r.status] += 1
            if r.status == "sent":
                sent_digests.add(r.digest_id)
        for digest_id, move in sorted(moves.items()):
            changes = {s: digest_counts.c[s] + n for s, n in move.items() if n}
            if changes:
                conn.execute(
                    digest_counts.update()
                    .where(digest_counts.c.digest_id == digest_id)
                    .values(**changes)
                )
        for digest_id in sorted(sent_digests - self._marked_sent):
            conn.execute(
                digests.update()
                .where(digests.c.id == digest_id, digests.c.sent.is_(None))
                .values(sent=now)
            )
        self._marked_sent |= sent_digests

    def _settle_each(self, owner: str, results: list[Settle]) -> list[Settle]:
        now = datetime.now(UTC)
        refused: list[Settle] = []
        settled: list[Settle] = []
        with self.begin() as conn:
            for r in results:
                values: dict[str, object] = {
                    "status": r.status,
                    "reply": r.reply,
                    "next_try": r.next_try,
                    "updated": now,
                    "lease_owner": None,
                    "lease_until": None,
                }
                if r.attempt:
                    values["attempts"] = deliveries.c.attempts + 1
                done = conn.execute(
                    deliveries.update()
                    .where(
                        deliveries.c.digest_id == r.digest_id,
                        deliveries.c.email == r.email,
                        deliveries.c.lease_owner == owner,
                    )
                    .values(**values)
                )
                if not done.rowcount:
                    refused.append(r)
                    continue
                settled.append(r)
            self._count(conn, settled, now)
        return refused

    def release_claimed(self, owner: str, keys: Iterable[tuple[str, str]]) -> None:
        """Give back leased rows that were not sent (a stop, an unavailable server)."""
        keys = list(keys)
        if not keys:
            return
        with self.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(
                    sa.tuple_(deliveries.c.digest_id, deliveries.c.email).in_(keys),
                    deliveries.c.lease_owner == owner,
                )
                .values(lease_owner=None, lease_until=None)
            )

    def expire_leases_of(
        self, digest_ids: Sequence[str], gone: Callable[[str], bool], now: datetime
    ) -> int:
        """End the leases held by senders known to be gone (a dead process on this host), so
        their rows are claimed at once rather than when the lease runs out."""
        ids = list(digest_ids)
        with self.begin() as conn:
            owners = [
                o
                for (o,) in conn.execute(
                    sa.select(deliveries.c.lease_owner)
                    .where(
                        deliveries.c.digest_id.in_(ids),
                        deliveries.c.status.in_(("pending", "deferred")),
                        deliveries.c.lease_until > now,
                    )
                    .distinct()
                )
                if o is not None and gone(o)
            ]
            if not owners:
                return 0
            result = conn.execute(
                deliveries.update()
                .where(deliveries.c.digest_id.in_(ids), deliveries.c.lease_owner.in_(owners))
                .values(lease_owner=None, lease_until=None)
            )
        return int(result.rowcount)

    def next_lease_end(
        self, digest_ids: Sequence[str], now: datetime, owner: str
    ) -> datetime | None:
        """When the first lease held by another sender on a due row runs out (its rows can be
        claimed then), or None."""
        with self.begin() as conn:
            value = conn.execute(
                sa.select(sa.func.min(deliveries.c.lease_until, type_=UTCDateTime)).where(
                    deliveries.c.digest_id.in_(list(digest_ids)),
                    deliveries.c.status.in_(("pending", "deferred")),
                    deliveries.c.lease_until > now,
                    deliveries.c.lease_owner != owner,
                )
            ).scalar_one()
        return value  # type: ignore[no-any-return]

    def digest_progress(self, digest_ids: Sequence[str]) -> dict[str, int]:
        """Rows per status of these digests, from the counters (one row per digest)."""
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(*(sa.func.sum(digest_counts.c[s]) for s in STATUSES)).where(
                    digest_counts.c.digest_id.in_(list(digest_ids))
                )
            ).one()
        return {s: int(n or 0) for s, n in zip(STATUSES, rows, strict=True)}


class SettingsStore(StoreBase):
    def shared_setting(self, name: str, make: Callable[[], str]) -> str:
        """The installation-wide value `name`, made by `make` the first time. Two hosts that
        race both read the one that was written first."""
        with self.begin() as conn:
            found = conn.execute(sa.select(settings.c.value).where(settings.c.name == name))
            value = found.scalar()
        if value is not None:
            return str(value)
        try:
            with self.begin() as conn:
                conn.execute(settings.insert().values(name=name, value=make()))
        except sa.exc.IntegrityError:
            pass  # another host wrote it first
        with self.begin() as conn:
            return str(
                conn.execute(
                    sa.select(settings.c.value).where(settings.c.name == name)
                ).scalar_one()
            )
