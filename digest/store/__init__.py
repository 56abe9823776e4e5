"""The store: one SQL database (SQLite by default) through SQLAlchemy Core.

It holds posts, cached summaries, subscribers and suppressions, digests with the posts each
section carried, and one delivery row per (digest, recipient). The schema is created on first
use. Times are stored as timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from digest.store.claims import ClaimStore, LeaseLost, SettingsStore, Settle
from digest.store.clicks import ClickStore, PostClicks
from digest.store.content import AddressMap, ContentStore, _matching, address_key
from digest.store.delivery import DeliveryStore, DigestRecord, covered_sections
from digest.store.drafts import DraftStore, StoredDraft, draft_row
from digest.store.planning import PlanningStore
from digest.store.records import (
    ArchivedDigest,
    DigestHistory,
    DueDelivery,
    SchedulerLock,
    ScheduleRun,
    StoredDigest,
    StoredSubscriber,
)
from digest.store.scheduling import ScheduleStore
from digest.store.tables import (
    SHARDS,
    UTCDateTime,
    _in_shard,
    deliveries,
    digest_posts,
    digests,
    fetch_state,
    metadata,
    posts,
    schedule_runs,
    scheduler_lock,
    seen_posts,
    source_state,
    subscribers,
    summaries,
    suppressions,
)


class Store(
    ContentStore,
    DeliveryStore,
    DraftStore,
    ClaimStore,
    SettingsStore,
    ScheduleStore,
    PlanningStore,
    ClickStore,
):
    """Thin, typed access to the database. Every method is one short transaction."""


class WebStore(Store):
    """What the subscriber pages and the archive need beyond `Store`."""

    def subscriber(self, email: str) -> StoredSubscriber | None:
        """The subscriber `email`, in any case of its letters (see `address_key`); the
        address comes back as stored."""
        with self.begin() as conn:
            r = conn.execute(sa.select(subscribers).where(subscribers.c.email == email)).first()
            if r is None:
                forms = _matching(conn, subscribers.c.email, email)
                if forms:
                    r = conn.execute(
                        sa.select(subscribers).where(subscribers.c.email == forms[0])
                    ).first()
        if r is None:
            return None
        return StoredSubscriber(r.email, r.name, tuple(r.themes), r.language, r.status)

    def suppression(self, email: str) -> str | None:
        """Why `email` is suppressed (unsubscribed, bounced, complained), or None."""
        record = self.suppression_record(email)
        return None if record is None else record[0]

    def set_preferences(self, email: str, themes: Iterable[str], status: str) -> bool:
        """The subscriber's own themes and status (active or paused); False if not possible.

        A suppressed address stays suppressed: only `resubscribe` lifts an unsubscribe.
        """
        if status not in ("active", "paused"):
            raise ValueError(status)
        with self.begin() as conn:
            if _matching(conn, suppressions.c.email, email):
                return False
            forms = _matching(conn, subscribers.c.email, email)
            if not forms:
                return False
            result = conn.execute(
                subscribers.update()
                .where(subscribers.c.email.in_(forms))
                .values(themes=list(themes), status=status, updated=datetime.now(UTC))
            )
        return bool(result.rowcount)

    def resubscribe(self, email: str) -> bool:
        """Lift the subscriber's own unsubscribe (never a bounce or complaint), in whatever
        case it was recorded."""
        with self.begin() as conn:
            found = _matching(conn, suppressions.c.email, email)
            reasons = {
                r[0]
                for r in conn.execute(
                    sa.select(suppressions.c.reason).where(suppressions.c.email.in_(found))
                )
            }
            if not found or reasons != {"unsubscribed"}:
                return False
            conn.execute(suppressions.delete().where(suppressions.c.email.in_(found)))
            conn.execute(
                subscribers.update()
                .where(subscribers.c.email.in_(_matching(conn, subscribers.c.email, email)))
                .values(status="active", updated=datetime.now(UTC))
            )
        return True

    def confirm_signup(self, email: str, name: str, themes: Iterable[str], issued: datetime) -> str:
        """Subscribe `email` from a confirmed sign-up link issued at `issued`, in one
        transaction: "new" (a row was added), "back" (a paused or unsubscribed reader is
        active again), "already" (was active: themes and name updated) or "refused".

        Refused: a bounce or complaint (never lifted by a link), or an unsubscribe made after
        the link was issued (an old link must not undo a later "stop")."""
        try:
            return self._confirm_signup(email, name, list(themes), issued)
        except sa.exc.IntegrityError:  # a second click inserted the row first: now an update
            return self._confirm_signup(email, name, list(themes), issued)

    def _confirm_signup(self, email: str, name: str, themes: list[str], issued: datetime) -> str:
        now = datetime.now(UTC)
        values: dict[str, object] = {"themes": themes, "status": "active", "updated": now}
        if name:  # a sign-up without a name keeps the one an earlier list gave
            values["name"] = name
        with self.begin() as conn:
            found = _matching(conn, suppressions.c.email, email)
            if found:
                rows = conn.execute(
                    sa.select(suppressions.c.reason, suppressions.c.created).where(
                        suppressions.c.email.in_(found)
                    )
                ).all()
                # `issued` has whole seconds: a link from the second of the unsubscribe counts
                # as made after it.
                if any(
                    r.reason != "unsubscribed" or r.created.replace(microsecond=0) > issued
                    for r in rows
                ):
                    return "refused"
                conn.execute(suppressions.delete().where(suppressions.c.email.in_(found)))
            forms = _matching(conn, subscribers.c.email, email)
            if not forms:
                conn.execute(
                    subscribers.insert().values(
                        {**values, "email": email, "name": name, "language": "", "created": now}
                    )
                )
                return "new"
            statuses = {
                r[0]
                for r in conn.execute(
                    sa.select(subscribers.c.status).where(subscribers.c.email.in_(forms))
                )
            }
            conn.execute(subscribers.update().where(subscribers.c.email.in_(forms)).values(values))
        return "already" if statuses == {"active"} and not found else "back"

    def archived_digests(self) -> list[ArchivedDigest]:
        """Every sent digest, newest first, with the section keys it carried."""
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(
                    digests.c.id,
                    digests.c.edition,
                    digests.c.issue_number,
                    digests.c.variant,
                    digests.c.theme,
                    digests.c.subject,
                    digests.c.sent,
                )
                .where(digests.c.sent.is_not(None))
                .order_by(digests.c.sent.desc(), digests.c.id)
            ).all()
            carried: dict[str, set[str]] = {}
            for digest_id, section in conn.execute(
                sa.select(digest_posts.c.digest_id, digest_posts.c.section).distinct()
            ):
                carried.setdefault(digest_id, set()).add(section)
        return [
            ArchivedDigest(
                id=r.id,
                edition=r.edition,
                issue_number=r.issue_number,
                variant=r.variant,
                theme=r.theme,
                subject=r.subject,
                sent=r.sent,
                sections=tuple(sorted(carried.get(r.id, ()))),
            )
            for r in rows
        ]

    def archived_content(self, digest_id: str) -> tuple[str, str] | None:
        """(html, text) of a sent digest, placeholders left in; None if unknown or unsent."""
        with self.begin() as conn:
            row = conn.execute(
                sa.select(digests.c.html, digests.c.text).where(
                    digests.c.id == digest_id, digests.c.sent.is_not(None)
                )
            ).first()
        return None if row is None else (str(row.html), str(row.text))


__all__ = [
    "SHARDS",
    "AddressMap",
    "ArchivedDigest",
    "DigestHistory",
    "DigestRecord",
    "DueDelivery",
    "LeaseLost",
    "PostClicks",
    "ScheduleRun",
    "SchedulerLock",
    "Settle",
    "Store",
    "StoredDigest",
    "StoredDraft",
    "StoredSubscriber",
    "UTCDateTime",
    "WebStore",
    "_in_shard",
    "address_key",
    "covered_sections",
    "deliveries",
    "digest_posts",
    "digests",
    "draft_row",
    "fetch_state",
    "metadata",
    "posts",
    "schedule_runs",
    "scheduler_lock",
    "seen_posts",
    "source_state",
    "subscribers",
    "summaries",
    "suppressions",
]
