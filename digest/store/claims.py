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
from typing import Any

import sqlalchemy as sa

from digest.errors import DeliveryError, StoreError
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


# Serializes the limit checks of every sender (pg_advisory_xact_lock's key: "digest" in ASCII).
_LIMITS_LOCK = 0x646967657374


class _SomeRefused(Exception):
    """A batch touched fewer rows than it settles: some are not this sender's any more."""


_SETTLE = sa.text(
    "UPDATE deliveries SET status = :status, reply = :reply, next_try = :next_try,"
    " updated = :updated, attempts = attempts + :inc, lease_owner = NULL, lease_until = NULL"
    " WHERE digest_id = :digest_id AND email = :email AND lease_owner = :owner"
)


# The predicate of the partial index `deliveries_due` (tables.py), written out literally: a
# query that has it among its AND-ed terms reads only the rows still to send through that
# index (SQLite and PostgreSQL match the index by its text; `status IN (?, ?)` with bound
# values does not match, and then a claim near the end of a million-row edition walked every
# settled row before it).
STILL_DUE = sa.text("deliveries.status IN ('pending', 'deferred')")


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
        return self.claim_within_limits(
            digest_ids, owner, now, limit=limit, lease_seconds=lease_seconds
        )[0]

    def claim_within_limits(
        self,
        digest_ids: Sequence[str],
        owner: str,
        now: datetime,
        *,
        limit: int,
        lease_seconds: float,
        limits: Sequence[tuple[timedelta, int]] = (),
    ) -> tuple[list[DueDelivery], bool]:
        """`claim_deliveries` under sending limits: (window, most messages in it) pairs, such
        as one hour and 500. What counts against a limit: rows sent in the window and every
        row leased now, by any sender (it is about to be sent). The check and the claim are
        one transaction, serialized between senders (an advisory lock on PostgreSQL, the
        write lock on SQLite), so limits hold across processes and hosts. Returns the rows
        and whether a limit cut the claim short."""
        until = now + timedelta(seconds=lease_seconds)
        with self.begin() as conn:
            if limits and conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LIMITS_LOCK)))
            claimed = self._lease(conn, digest_ids, owner, now, until, limit)
            limited = False
            if limits and claimed:
                over = self._over(conn, now, limits)
                if over > 0:  # give back the last rows claimed
                    limited = True
                    keep = max(len(claimed) - over, 0)
                    claimed, back = claimed[:keep], claimed[keep:]
                    conn.execute(
                        deliveries.update()
                        .where(
                            sa.tuple_(deliveries.c.digest_id, deliveries.c.email).in_(
                                [(r.digest_id, r.email) for r in back]
                            )
                        )
                        .values(lease_owner=None, lease_until=None)
                    )
            rows = self._describe(conn, claimed)
        return rows, limited

    def _over(
        self, conn: sa.Connection, now: datetime, limits: Sequence[tuple[timedelta, int]]
    ) -> int:
        """By how many messages the fullest limit is exceeded, counting the rows sent in its
        window and every row leased now. One statement, so one snapshot: a row that another
        sender settles meanwhile counts once, as leased or as sent, never zero times."""
        leased = sa.and_(STILL_DUE, deliveries.c.lease_until > now)
        oldest = now - max(window for window, _ in limits)
        spent = [
            sa.func.sum(
                sa.case(
                    (leased, 1),
                    (sa.and_(deliveries.c.status == "sent", deliveries.c.updated >= now - w), 1),
                    else_=0,
                )
            )
            for w, _ in limits
        ]
        sent_recently = sa.and_(deliveries.c.status == "sent", deliveries.c.updated >= oldest)
        row = conn.execute(sa.select(*spent).where(sa.or_(leased, sent_recently))).one()
        return max(int(n or 0) - most for n, (_, most) in zip(row, limits, strict=True))

    def _lease(
        self,
        conn: sa.Connection,
        digest_ids: Sequence[str],
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
    ) -> list[sa.Row[Any]]:
        """Lease up to `limit` due rows nobody holds to `owner`, in key order."""
        free = sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now)
        keys = (
            sa.select(deliveries.c.digest_id, deliveries.c.email)
            .where(deliveries.c.digest_id.in_(list(digest_ids)), STILL_DUE, _due(now), free)
            .order_by(deliveries.c.digest_id, deliveries.c.email)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            keys = keys.with_for_update(skip_locked=True)
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
        # RETURNING comes in no particular order: key order, as the claim chose them.
        return sorted(claimed, key=lambda r: (r.digest_id, r.email))

    def _describe(self, conn: sa.Connection, claimed: Sequence[sa.Row[Any]]) -> list[DueDelivery]:
        """The claimed rows with what sending needs: the subscriber's name, a suppression."""
        if not claimed:
            return []
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
        return [
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

    def settle_claimed(self, owner: str, results: Iterable[Settle]) -> list[Settle]:
        """Record the outcomes of rows leased to `owner`, and the digests' counters, in one
        transaction; returns the results that were refused (the row is no longer `owner`'s).
        """
        results = list(results)
        if not results:
            return []
        try:
            try:
                return self._settle_all(owner, results)
            except _SomeRefused:
                return self._settle_each(owner, results)  # rolled back: find which, one by one
        except sa.exc.DBAPIError as exc:  # a constraint or trigger refused it: not recorded
            reason = " ".join(str(exc.orig).split())
            raise StoreError(f"{self.engine.url}: {reason}") from None

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

    def renew_leases(self, owner: str, keys: Iterable[tuple[str, str]], until: datetime) -> int:
        """Extend to `until` the leases `owner` still holds on `keys`; the number renewed. A
        row another sender reclaimed is not `owner`'s any more and is not touched."""
        keys = list(keys)
        if not keys:
            return 0
        with self.begin() as conn:
            done = conn.execute(
                deliveries.update()
                .where(
                    sa.tuple_(deliveries.c.digest_id, deliveries.c.email).in_(keys),
                    deliveries.c.lease_owner == owner,
                )
                .values(lease_until=until)
            )
        return int(done.rowcount)

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
                        STILL_DUE,
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
                .where(
                    deliveries.c.digest_id.in_(ids),
                    STILL_DUE,
                    deliveries.c.lease_owner.in_(owners),
                )
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
                    STILL_DUE,
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
