"""Drafts: editions recorded whole but held until the editor approves them (digest.approval).

A draft's delivery rows are written `held` in the transaction that records the edition
(`DeliveryStore.record_editions(drafts=...)`); no claim reads that status. Releasing turns
them `pending` in one transaction with the draft's new status, its note and its re-rendered
bodies, and only if the draft is still held: two approvers (the editor and the deadline)
release it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from digest.store.base import StoreBase
from digest.store.tables import (
    deliveries,
    digest_counts,
    digest_posts,
    digests,
    drafts,
    schedule_runs,
)


@dataclass(frozen=True)
class StoredDraft:
    edition: str
    schedule: str | None
    period: str | None
    status: str  # held | released | rejected
    note: str
    deadline: datetime | None
    notify: str
    created: datetime
    notified: datetime | None
    decided: datetime | None
    decided_by: str


def draft_row(
    edition: str,
    *,
    snapshot: Mapping[str, Any],
    created: datetime,
    deadline: datetime | None = None,
    notify: str = "",
    schedule: str | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    """The `drafts` row `record_editions(drafts=...)` writes with the edition."""
    return {
        "edition": edition,
        "schedule": schedule,
        "period": period,
        "status": "held",
        "note": "",
        "deadline": deadline,
        "notify": notify,
        "snapshot": dict(snapshot),
        "created": created,
        "notified": None,
        "decided": None,
        "decided_by": "",
    }


_FIELDS = [c for c in drafts.c if c.name != "snapshot"]


class DraftStore(StoreBase):
    def drafts(self, statuses: tuple[str, ...] = ("held",)) -> list[StoredDraft]:
        """Drafts in these statuses, oldest first."""
        query = (
            sa.select(*_FIELDS)
            .where(drafts.c.status.in_(list(statuses)))
            .order_by(drafts.c.created, drafts.c.edition)
        )
        with self.begin() as conn:
            return [StoredDraft(*row) for row in conn.execute(query)]

    def draft(self, edition: str) -> StoredDraft | None:
        with self.begin() as conn:
            row = conn.execute(sa.select(*_FIELDS).where(drafts.c.edition == edition)).first()
        return None if row is None else StoredDraft(*row)

    def draft_snapshot(self, edition: str) -> dict[str, Any]:
        """Each variant's composed digest (digest id -> JSON), as the draft recorded it."""
        with self.begin() as conn:
            value = conn.execute(
                sa.select(drafts.c.snapshot).where(drafts.c.edition == edition)
            ).scalar()
        return dict(value or {})

    def due_drafts(self, now: datetime) -> list[StoredDraft]:
        """Held drafts whose deadline has passed."""
        return [d for d in self.drafts() if d.deadline is not None and d.deadline <= now]

    def mark_notified(self, edition: str, now: datetime) -> None:
        with self.begin() as conn:
            conn.execute(drafts.update().where(drafts.c.edition == edition).values(notified=now))

    def release_draft(
        self,
        edition: str,
        *,
        note: str,
        bodies: Mapping[str, tuple[str, str]],
        by: str,
        now: datetime,
    ) -> bool:
        """Release a held draft in ONE transaction: its status, note and re-rendered bodies
        (digest id -> (html, text)), its rows `held` -> `pending`, its run key -> partial.
        False (nothing changed) when it is no longer held."""
        with self.begin() as conn:
            taken = conn.execute(
                drafts.update()
                .where(drafts.c.edition == edition, drafts.c.status == "held")
                .values(status="released", note=note, decided=now, decided_by=by)
            )
            if not taken.rowcount:
                return False
            for digest_id, (html, text) in bodies.items():
                conn.execute(
                    digests.update()
                    .where(digests.c.id == digest_id, digests.c.edition == edition)
                    .values(html=html, text=text)
                )
            ids = sa.select(digests.c.id).where(digests.c.edition == edition).scalar_subquery()
            conn.execute(
                deliveries.update()
                .where(deliveries.c.digest_id.in_(ids), deliveries.c.status == "held")
                .values(status="pending", updated=now)
            )
            conn.execute(
                digest_counts.update()
                .where(digest_counts.c.digest_id.in_(ids))
                .values(pending=digest_counts.c.pending + digest_counts.c.held, held=0)
            )
            self._set_run(conn, edition, "drafted", status="partial", detail=f"released by {by}")
        return True

    def reject_draft(self, edition: str, now: datetime) -> bool:
        """Discard a held draft: its digests and rows are deleted (its posts are new again
        for the next edition), the draft is kept as `rejected`. False when not held."""
        with self.begin() as conn:
            taken = conn.execute(
                drafts.update()
                .where(drafts.c.edition == edition, drafts.c.status == "held")
                .values(status="rejected", decided=now, decided_by="editor", snapshot={})
            )
            if not taken.rowcount:
                return False
            ids = sa.select(digests.c.id).where(digests.c.edition == edition).scalar_subquery()
            for table in (deliveries, digest_counts, digest_posts):
                conn.execute(table.delete().where(table.c.digest_id.in_(ids)))
            conn.execute(digests.delete().where(digests.c.edition == edition))
            self._set_run(conn, edition, "drafted", status="rejected", detail="draft rejected")
        return True

    @staticmethod
    def _set_run(conn: sa.Connection, edition: str, was: str, **values: Any) -> None:
        """The run key that recorded `edition` (if a schedule did), from status `was`."""
        conn.execute(
            schedule_runs.update()
            .where(
                schedule_runs.c.status == was,
                sa.or_(
                    schedule_runs.c.editions == edition,
                    schedule_runs.c.editions.like(f"%{edition}%"),
                ),
            )
            .values(**values)
        )
