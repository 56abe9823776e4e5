"""Digests and one delivery row per (digest, recipient)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.errors import StoreError
from digest.models import ALL_SECTION
from digest.store.base import StoreBase
from digest.store.records import DigestHistory, DueDelivery, StoredDigest
from digest.store.tables import (
    SHARDS,
    UTCDateTime,
    _in_shard,
    deliveries,
    digest_counts,
    digest_posts,
    digests,
    schedule_runs,
    subscribers,
    suppressions,
)
from digest.store.tables import (
    drafts as drafts_table,
)


def _stamp(value: datetime | None) -> str | None:
    return UTCDateTime().process_bind_param(value, None)


def covered_sections(variant: str, theme: str | None) -> tuple[str, ...]:
    """The sections a digest stood for: a themed send's theme, else the reader's chosen
    themes, else everything (even where a section came out empty)."""
    if theme:
        return (theme,)
    return tuple(variant.split(",")) if variant else (ALL_SECTION,)


@dataclass(frozen=True)
class DigestRecord:
    """One digest variant as `record_editions` writes it."""

    digest_id: str
    edition: str
    issue_number: int
    variant: str
    theme: str | None
    subject: str
    sections: dict[str, list[str]]
    recipients: Iterable[tuple[str, str]]  # (email, message_id), streamed
    html: str = ""
    text: str = ""
    # The plan's clock: posts first seen after it are new to the next digest.
    created: datetime | None = None


STATUSES = ("pending", "sent", "deferred", "failed", "held")


def _recount(conn: Connection, digest_ids: sa.Select[Any]) -> None:
    """Count these digests' rows again into their counters (after a bulk change)."""
    for digest_id in [r[0] for r in conn.execute(digest_ids)]:
        counts: dict[str, int] = dict(
            conn.execute(
                sa.select(deliveries.c.status, sa.func.count())
                .where(deliveries.c.digest_id == digest_id)
                .group_by(deliveries.c.status)
            ).all()
        )
        conn.execute(
            digest_counts.update()
            .where(digest_counts.c.digest_id == digest_id)
            .values({s: int(counts.get(s, 0)) for s in STATUSES})
        )


def _insert_digest(conn: Connection, r: DigestRecord, now: datetime, status: str) -> None:
    conn.execute(
        digests.insert().values(
            id=r.digest_id,
            edition=r.edition,
            issue_number=r.issue_number,
            variant=r.variant,
            theme=r.theme,
            subject=r.subject,
            created=r.created or now,
            html=r.html,
            text=r.text,
        )
    )
    rows = [
        {"digest_id": r.digest_id, "section": section, "post_key": key}
        for section, keys in r.sections.items()
        for key in keys
    ]
    if rows:
        conn.execute(digest_posts.insert(), rows)
    # Every recipient's row is written, pending, before the first message goes out; in
    # chunks, so 100,000 recipients never sit in memory at once.
    chunk: list[dict[str, Any]] = []
    total = 0
    for email, message_id in r.recipients:
        total += 1
        chunk.append(
            {
                "digest_id": r.digest_id,
                "email": email,
                "message_id": message_id,
                "status": status,
                "reply": "",
                "attempts": 0,
                "updated": now,
                "shard": zlib.crc32(email.encode()) % SHARDS,
            }
        )
        if len(chunk) >= 5000:
            conn.execute(deliveries.insert(), chunk)
            chunk = []
    if chunk:
        conn.execute(deliveries.insert(), chunk)
    counts = {s: 0 for s in STATUSES} | {status: total}
    conn.execute(digest_counts.insert().values(digest_id=r.digest_id, **counts))


class DeliveryStore(StoreBase):
    # -- digests and deliveries ----------------------------------------------------------

    def next_issue_number(self, theme: str | None = None) -> int:
        """The next issue of a list: the regular digest (theme None) or one theme's sends.
        Each list counts its own editions, so a themed send never shifts the regular
        series."""
        where = digests.c.theme.is_(None) if theme is None else digests.c.theme == theme
        with self.begin() as conn:
            count = conn.execute(
                sa.select(sa.func.count(sa.distinct(digests.c.edition))).where(where)
            ).scalar_one()
        return int(count) + 1

    def digest_history(self, since: datetime) -> dict[str, DigestHistory]:
        """Digests composed after `since`: when, which sections each covered, its posts."""
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(
                    digests.c.id, digests.c.created, digests.c.variant, digests.c.theme
                ).where(digests.c.created > since)
            ).all()
            keys: dict[str, set[str]] = {r.id: set() for r in rows}
            if keys:
                for digest_id, key in conn.execute(
                    sa.select(digest_posts.c.digest_id, digest_posts.c.post_key)
                    .select_from(digest_posts.join(digests))
                    .where(digests.c.created > since)
                ):
                    keys[digest_id].add(key)
        return {
            r.id: DigestHistory(r.id, r.created, covered_sections(r.variant, r.theme),
                                frozenset(keys[r.id]))
            for r in rows
        }  # fmt: skip

    def readers_digests(self, since: datetime) -> dict[str, frozenset[str]]:
        """Per reader, the digests composed after `since` that were (or are being) delivered
        to them: every recorded row but a failed one. Equal sets share one frozenset."""
        found: dict[str, set[str]] = {}
        with self.begin() as conn:
            for email, digest_id in conn.execute(
                sa.select(deliveries.c.email, deliveries.c.digest_id)
                .select_from(deliveries.join(digests))
                .where(digests.c.created > since, deliveries.c.status != "failed")
            ):
                found.setdefault(email, set()).add(digest_id)
        shared: dict[frozenset[str], frozenset[str]] = {}
        return {e: shared.setdefault(frozenset(ids), frozenset(ids)) for e, ids in found.items()}

    def record_editions(
        self,
        records: Sequence[DigestRecord],
        *,
        run: tuple[str, str, str, Sequence[str]] | None = None,
        drafts: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Write digests, their posts and one pending delivery per recipient in ONE
        transaction: a crash at any point leaves all of it or none of it.

        `run` (schedule, period, owner, editions) also writes the editions onto the run key in
        the same transaction, if `owner` still holds it; StoreError when it does not.
        `drafts`: rows of the `drafts` table (digest.store.drafts); their editions' delivery
        rows are written `held`, claimable by no sender until the draft is released.
        """
        now = datetime.now(UTC)
        with self.begin() as conn:
            if run is not None:
                schedule, period, owner, editions = run
                result = conn.execute(
                    schedule_runs.update()
                    .where(
                        schedule_runs.c.schedule == schedule,
                        schedule_runs.c.period == period,
                        schedule_runs.c.owner == owner,
                    )
                    .values(editions=" ".join(editions))
                )
                if not result.rowcount:
                    raise StoreError(f"schedule {schedule} {period}: run key lost")
            held = {d["edition"] for d in drafts}
            if drafts:
                conn.execute(drafts_table.insert(), list(drafts))
            for record in records:
                status = "held" if record.edition in held else "pending"
                _insert_digest(conn, record, now, status)

    def record_digest(
        self,
        *,
        digest_id: str,
        edition: str,
        issue_number: int,
        variant: str,
        theme: str | None,
        subject: str,
        sections: dict[str, list[str]],
        recipients: Iterable[tuple[str, str]],
        html: str = "",
        text: str = "",
    ) -> None:
        """Write one digest, its posts and one pending delivery per (email, message_id)."""
        record = DigestRecord(
            digest_id, edition, issue_number, variant, theme, subject, sections, recipients,
            html, text,
        )  # fmt: skip
        self.record_editions([record])

    def settle_delivery(
        self,
        digest_id: str,
        email: str,
        status: str,
        reply: str,
        next_try: datetime | None = None,
        *,
        attempt: bool = True,
    ) -> None:
        """Record an answer for one recipient, whoever holds its lease (a person's
        correction, tests); senders settle their claimed rows with `settle_claimed`.
        `attempt=False`: a deferral that does not count against `max_attempts`."""
        now = datetime.now(UTC)
        key = sa.and_(deliveries.c.digest_id == digest_id, deliveries.c.email == email)
        with self.begin() as conn:
            was = conn.execute(sa.select(deliveries.c.status).where(key)).scalar()
            if was is None:
                return
            values: dict[str, Any] = {
                "status": status,
                "reply": reply,
                "next_try": next_try,
                "updated": now,
                "lease_owner": None,
                "lease_until": None,
            }
            if attempt:
                values["attempts"] = deliveries.c.attempts + 1
            conn.execute(deliveries.update().where(key).values(**values))
            if was != status:
                conn.execute(
                    digest_counts.update()
                    .where(digest_counts.c.digest_id == digest_id)
                    .values({was: digest_counts.c[was] - 1, status: digest_counts.c[status] + 1})
                )
            if status == "sent":
                conn.execute(
                    digests.update()
                    .where(digests.c.id == digest_id, digests.c.sent.is_(None))
                    .values(sent=now)
                )

    def due_deliveries(
        self,
        digest_ids: Sequence[str],
        now: datetime,
        *,
        after: tuple[str, str] = ("", ""),
        limit: int = 500,
        shard: tuple[int, int] | None = None,
    ) -> list[DueDelivery]:
        """A page of rows still to send (pending, or deferred and due), ordered by
        (digest, email) after `after`: recipients stream, the whole list is never loaded."""
        due = sa.or_(
            deliveries.c.status == "pending",
            sa.and_(deliveries.c.status == "deferred", deliveries.c.next_try <= now),
        )
        query = (
            sa.select(
                deliveries.c.digest_id,
                deliveries.c.email,
                deliveries.c.message_id,
                deliveries.c.attempts,
                sa.func.coalesce(subscribers.c.name, "").label("name"),
                suppressions.c.reason.label("suppressed"),
            )
            .select_from(
                deliveries.outerjoin(
                    subscribers, subscribers.c.email == deliveries.c.email
                ).outerjoin(suppressions, suppressions.c.email == deliveries.c.email)
            )
            .where(
                deliveries.c.digest_id.in_(list(digest_ids)),
                due,
                sa.tuple_(deliveries.c.digest_id, deliveries.c.email) > sa.tuple_(*after),
                _in_shard(shard),
            )
            .order_by(deliveries.c.digest_id, deliveries.c.email)
            .limit(limit)
        )
        with self.begin() as conn:
            return [DueDelivery(*row) for row in conn.execute(query)]

    def next_retry(
        self, digest_ids: Sequence[str], shard: tuple[int, int] | None = None
    ) -> datetime | None:
        with self.begin() as conn:
            value = conn.execute(
                sa.select(sa.func.min(deliveries.c.next_try, type_=UTCDateTime)).where(
                    deliveries.c.digest_id.in_(list(digest_ids)),
                    deliveries.c.status == "deferred",
                    _in_shard(shard),
                )
            ).scalar_one()
        return value  # type: ignore[no-any-return]

    def unfinished_editions(self) -> list[str]:
        """Editions with recipients still pending or deferred, oldest first."""
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(digests.c.edition, sa.func.min(digests.c.created))
                .select_from(digests.join(deliveries))
                .where(deliveries.c.status.in_(("pending", "deferred")))
                .group_by(digests.c.edition)
                .order_by(sa.func.min(digests.c.created))
            )
            return [r[0] for r in rows]

    def edition_digests(self, edition: str) -> list[StoredDigest]:
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(
                    digests.c.id,
                    digests.c.edition,
                    digests.c.issue_number,
                    digests.c.variant,
                    digests.c.theme,
                    digests.c.subject,
                    digests.c.created,
                    digests.c.html,
                    digests.c.text,
                )
                .where(digests.c.edition == edition)
                .order_by(digests.c.id)
            )
            return [StoredDigest(*r) for r in rows]

    def requeue_failed(self, edition: str) -> tuple[int, int]:
        """Failed rows of `edition` back to pending with fresh attempts, for a person who
        chose to retry them; suppressed addresses stay failed. (requeued, kept failed)."""
        now = datetime.now(UTC)
        ids = sa.select(digests.c.id).where(digests.c.edition == edition).scalar_subquery()
        suppressed = sa.select(suppressions.c.email).scalar_subquery()
        failed = sa.and_(deliveries.c.digest_id.in_(ids), deliveries.c.status == "failed")
        with self.begin() as conn:
            result = conn.execute(
                deliveries.update()
                .where(failed, deliveries.c.email.not_in(suppressed))
                .values(status="pending", attempts=0, next_try=None, updated=now,
                        reply="requeued: " + deliveries.c.reply)
            )  # fmt: skip
            kept = conn.execute(sa.select(sa.func.count()).where(failed)).scalar_one()
            if result.rowcount:
                _recount(conn, sa.select(digests.c.id).where(digests.c.edition == edition))
        return int(result.rowcount), int(kept)

    def latest_edition(self) -> str | None:
        with self.begin() as conn:
            return conn.execute(
                sa.select(digests.c.edition).order_by(digests.c.created.desc()).limit(1)
            ).scalar()

    def find_edition(self, ref: str) -> str | None:
        """The edition `ref` names: "latest", an edition id, or an issue number (of the
        regular digest if it has one, else of any theme's series; the latest such)."""
        if ref == "latest":
            return self.latest_edition()
        with self.begin() as conn:
            if ref.isdigit():
                found = conn.execute(
                    sa.select(digests.c.edition)
                    .where(digests.c.issue_number == int(ref))
                    .order_by(digests.c.theme.is_not(None), digests.c.created.desc())
                    .limit(1)
                ).scalar()
                if found is not None:
                    return str(found)
            found = conn.execute(
                sa.select(digests.c.edition).where(digests.c.edition == ref).limit(1)
            ).scalar()
        return None if found is None else str(found)

    def digest_of(self, edition: str, email: str) -> str | None:
        """The variant of `edition` that `email` was sent (or is to be sent), if any."""
        with self.begin() as conn:
            found = conn.execute(
                sa.select(deliveries.c.digest_id)
                .select_from(deliveries.join(digests))
                .where(digests.c.edition == edition, deliveries.c.email == email)
                .limit(1)
            ).scalar()
        return None if found is None else str(found)

    def failures(self, edition: str, limit: int = 50) -> list[tuple[str, str, str]]:
        """(email, status, reply) of recipients not (yet) sent, worst first."""
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(deliveries.c.email, deliveries.c.status, deliveries.c.reply)
                .select_from(deliveries.join(digests))
                .where(digests.c.edition == edition, deliveries.c.status.not_in(("sent", "held")))
                .order_by(deliveries.c.status, deliveries.c.email)
                .limit(limit)
            )
            return [(r[0], r[1], r[2]) for r in rows]

    def delivery_counts(self, edition: str | None = None) -> dict[str, int]:
        """Rows per status (of one edition, or of all), from the per-digest counters kept as
        rows settle: one row per digest is read, not one per recipient."""
        columns = [sa.func.sum(digest_counts.c[s]) for s in STATUSES]
        query = sa.select(*columns)
        if edition:
            query = query.select_from(digest_counts.join(digests)).where(
                digests.c.edition == edition
            )
        with self.begin() as conn:
            row = conn.execute(query).one()
        return {s: int(n) for s, n in zip(STATUSES, row, strict=True) if n}

    def deliveries_for(self, email: str) -> list[dict[str, Any]]:
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(
                    deliveries.c.digest_id,
                    deliveries.c.status,
                    deliveries.c.updated,
                    digests.c.subject,
                )
                .select_from(deliveries.join(digests))
                .where(deliveries.c.email == email)
                .order_by(deliveries.c.updated)
            ).all()
        return [dict(r._mapping) for r in rows]
