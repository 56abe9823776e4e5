"""The store: one SQL database (SQLite by default) through SQLAlchemy Core.

It holds posts, cached summaries, subscribers and suppressions, digests with the posts each
section carried, and one delivery row per (digest, recipient). The schema is created on first
use. Times are stored as timezone-aware UTC datetimes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.errors import StoreError
from digest.models import Post, Summary


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps no zone)."""

    impl = sa.String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def process_result_value(self, value: str | None, dialect: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


metadata = sa.MetaData()

posts = sa.Table(
    "posts",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("source", sa.String, nullable=False, index=True),
    sa.Column("guid", sa.String, nullable=False),
    sa.Column("url", sa.String, nullable=False),
    sa.Column("title", sa.String, nullable=False),
    sa.Column("author", sa.String, nullable=False, default=""),
    sa.Column("published", UTCDateTime, nullable=False, index=True),
    sa.Column("updated", UTCDateTime),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("image", sa.String),
    sa.Column("image_alt", sa.String, nullable=False, default=""),
    sa.Column("language", sa.String),
    sa.Column("reactions", sa.Integer),
    sa.Column("comments", sa.Integer),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
)

source_state = sa.Table(
    "source_state",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("replay_shift", sa.Float),  # seconds added to every date of a replayed source
    sa.Column("last_ok", UTCDateTime),
    sa.Column("last_error", sa.Text),
)

summaries = sa.Table(
    "summaries",
    metadata,
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("sentences", sa.JSON, nullable=False),
    sa.Column("algorithm", sa.String, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("email", sa.String, primary_key=True),  # normalized
    sa.Column("name", sa.String, nullable=False, default=""),
    sa.Column("themes", sa.JSON, nullable=False),
    sa.Column("language", sa.String(8), nullable=False, default=""),
    sa.Column("status", sa.String(16), nullable=False, default="active"),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("email", sa.String, primary_key=True),
    sa.Column("reason", sa.String, nullable=False),  # unsubscribed | bounced | complained
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("created", UTCDateTime, nullable=False),
)

digests = sa.Table(
    "digests",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("edition", sa.String, nullable=False, index=True),
    sa.Column("issue_number", sa.Integer, nullable=False),
    sa.Column("variant", sa.String, nullable=False),  # sorted theme keys, "" = everything
    sa.Column("theme", sa.String),  # the --theme of a themed send
    sa.Column("subject", sa.String, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("sent", UTCDateTime),  # set once any copy was accepted by the server
    # The rendered digest before per-recipient values (placeholders left in): the archive.
    sa.Column("html", sa.Text, nullable=False, default=""),
    sa.Column("text", sa.Text, nullable=False, default=""),
)

digest_posts = sa.Table(
    "digest_posts",
    metadata,
    sa.Column("digest_id", sa.ForeignKey("digests.id"), primary_key=True),
    sa.Column("section", sa.String, primary_key=True),
    sa.Column("post_key", sa.ForeignKey("posts.key"), primary_key=True),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("digest_id", sa.ForeignKey("digests.id"), primary_key=True),
    sa.Column("email", sa.String, primary_key=True),
    sa.Column("message_id", sa.String, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | deferred | failed
    sa.Column("reply", sa.Text, nullable=False, default=""),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_try", UTCDateTime),  # deferred: not before this time
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Index("deliveries_status", "status", "next_try"),
)


@dataclass(frozen=True)
class DueDelivery:
    digest_id: str
    email: str
    message_id: str
    attempts: int
    name: str
    suppressed: str | None


@dataclass(frozen=True)
class StoredDigest:
    id: str
    edition: str
    issue_number: int
    variant: str
    theme: str | None
    subject: str
    created: datetime
    html: str
    text: str


@dataclass(frozen=True)
class StoredSubscriber:
    email: str
    name: str
    themes: tuple[str, ...]
    language: str
    status: str


class Store:
    """Thin, typed access to the database. Every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, path: Path) -> Store:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store's folder: {exc.strerror}") from None
        return cls.from_url(f"sqlite:///{path}")

    @classmethod
    def from_url(cls, url: str) -> Store:
        engine = sa.create_engine(url)
        if engine.dialect.name == "sqlite":

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=5000")
                cur.close()

        try:
            metadata.create_all(engine)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{engine.url}: cannot open the store: {exc.orig or exc}") from None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StoreError(f"{self.engine.url}: {exc.orig}") from None

    # -- sources and posts ---------------------------------------------------------------

    def replay_shift(self, source: str) -> float | None:
        with self.begin() as conn:
            row = conn.execute(
                sa.select(source_state.c.replay_shift).where(source_state.c.name == source)
            ).first()
        return None if row is None else row[0]

    def record_source(
        self, source: str, *, ok: bool, error: str = "", replay_shift: float | None = None
    ) -> None:
        now = datetime.now(UTC)
        with self.begin() as conn:
            exists = conn.execute(
                sa.select(source_state.c.name).where(source_state.c.name == source)
            ).first()
            values: dict[str, Any] = {"last_error": error or None}
            if ok:
                values["last_ok"] = now
            if replay_shift is not None:
                values["replay_shift"] = replay_shift
            if exists:
                conn.execute(
                    source_state.update().where(source_state.c.name == source).values(**values)
                )
            else:
                conn.execute(source_state.insert().values(name=source, **values))

    def upsert_posts(self, items: Iterable[tuple[Post, str]]) -> tuple[int, int, int]:
        """Insert or update posts; returns (new, updated, unchanged) counts."""
        new = updated = unchanged = 0
        now = datetime.now(UTC)
        with self.begin() as conn:
            for post, content_hash in items:
                row = conn.execute(
                    sa.select(posts.c.content_hash).where(posts.c.key == post.key)
                ).first()
                values = _post_values(post) | {"content_hash": content_hash, "last_seen": now}
                if row is None:
                    conn.execute(posts.insert().values(key=post.key, first_seen=now, **values))
                    new += 1
                elif row[0] != content_hash:
                    # An edit updates the post in place; its publication date (and thus its
                    # "newness") stays what it was.
                    values.pop("published")
                    conn.execute(posts.update().where(posts.c.key == post.key).values(**values))
                    updated += 1
                else:
                    conn.execute(
                        posts.update().where(posts.c.key == post.key).values(last_seen=now)
                    )
                    unchanged += 1
        return new, updated, unchanged

    def posts_since(self, since: datetime, until: datetime) -> list[Post]:
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(posts)
                .where(posts.c.published > since, posts.c.published <= until)
                .order_by(posts.c.published.desc())
            ).all()
        return [_row_to_post(r) for r in rows]

    def get_post(self, key: str) -> Post | None:
        with self.begin() as conn:
            row = conn.execute(sa.select(posts).where(posts.c.key == key)).first()
        return None if row is None else _row_to_post(row)

    def count_posts(self) -> int:
        with self.begin() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(posts)).scalar_one())

    # -- summaries -----------------------------------------------------------------------

    def cached_summary(self, cache_key: str) -> Summary | None:
        with self.begin() as conn:
            row = conn.execute(
                sa.select(summaries).where(summaries.c.cache_key == cache_key)
            ).first()
        if row is None:
            return None
        return Summary(row.language, tuple(row.sentences), row.algorithm)

    def cache_summary(self, cache_key: str, summary: Summary) -> None:
        with self.begin() as conn:
            conn.execute(summaries.delete().where(summaries.c.cache_key == cache_key))
            conn.execute(
                summaries.insert().values(
                    cache_key=cache_key,
                    language=summary.language,
                    sentences=list(summary.sentences),
                    algorithm=summary.algorithm,
                    created=datetime.now(UTC),
                )
            )

    # -- subscribers ---------------------------------------------------------------------

    def upsert_subscribers(self, rows: Iterable[StoredSubscriber]) -> tuple[int, int, int]:
        """Insert or update subscribers; suppressed addresses are skipped.

        Returns (added, updated, suppressed_skipped).
        """
        added = updated = skipped = 0
        now = datetime.now(UTC)
        with self.begin() as conn:
            suppressed = {r[0] for r in conn.execute(sa.select(suppressions.c.email))}
            for sub in rows:
                if sub.email in suppressed:
                    skipped += 1
                    continue
                values = {
                    "name": sub.name,
                    "themes": list(sub.themes),
                    "language": sub.language,
                    "status": sub.status,
                    "updated": now,
                }
                exists = conn.execute(
                    sa.select(subscribers.c.email).where(subscribers.c.email == sub.email)
                ).first()
                if exists:
                    conn.execute(
                        subscribers.update()
                        .where(subscribers.c.email == sub.email)
                        .values(**values)
                    )
                    updated += 1
                else:
                    conn.execute(
                        subscribers.insert().values(email=sub.email, created=now, **values)
                    )
                    added += 1
        return added, updated, skipped

    def subscribers(self, *, active_only: bool = False) -> list[StoredSubscriber]:
        query = sa.select(subscribers).order_by(subscribers.c.email)
        if active_only:
            query = query.where(
                subscribers.c.status == "active",
                subscribers.c.email.not_in(sa.select(suppressions.c.email)),
            )
        with self.begin() as conn:
            rows = conn.execute(query).all()
        return [
            StoredSubscriber(r.email, r.name, tuple(r.themes), r.language, r.status) for r in rows
        ]

    def suppress(self, email: str, reason: str, detail: str = "") -> None:
        with self.begin() as conn:
            conn.execute(suppressions.delete().where(suppressions.c.email == email))
            conn.execute(
                suppressions.insert().values(
                    email=email, reason=reason, detail=detail, created=datetime.now(UTC)
                )
            )
            conn.execute(
                subscribers.update()
                .where(subscribers.c.email == email)
                .values(status=reason, updated=datetime.now(UTC))
            )

    def suppressed(self) -> dict[str, str]:
        with self.begin() as conn:
            return {r.email: r.reason for r in conn.execute(sa.select(suppressions))}

    # -- digests and deliveries ----------------------------------------------------------

    def next_issue_number(self) -> int:
        with self.begin() as conn:
            count = conn.execute(
                sa.select(sa.func.count(sa.distinct(digests.c.edition)))
            ).scalar_one()
        return int(count) + 1

    def last_sent(self, section: str) -> datetime | None:
        """When a digest that carried `section` was last composed for sending (None: never).

        A digest counts from the moment its delivery rows are written, before the first copy
        goes out: a resumed send finishes it, and the next edition never repeats its posts.
        """
        with self.begin() as conn:
            value = conn.execute(
                sa.select(sa.func.max(digests.c.created, type_=UTCDateTime))
                .select_from(digests.join(digest_posts))
                .where(digest_posts.c.section == section)
            ).scalar_one()
        return value  # type: ignore[no-any-return]

    def sent_post_keys(self, section: str) -> set[str]:
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(digest_posts.c.post_key)
                .select_from(digests.join(digest_posts))
                .where(digest_posts.c.section == section)
            )
            return {r[0] for r in rows}

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
        """Write the digest, its posts and one pending delivery per (email, message_id)."""
        now = datetime.now(UTC)
        with self.begin() as conn:
            conn.execute(
                digests.insert().values(
                    id=digest_id,
                    edition=edition,
                    issue_number=issue_number,
                    variant=variant,
                    theme=theme,
                    subject=subject,
                    created=now,
                    html=html,
                    text=text,
                )
            )
            conn.execute(
                digest_posts.insert(),
                [
                    {"digest_id": digest_id, "section": section, "post_key": key}
                    for section, keys in sections.items()
                    for key in keys
                ],
            )
            # Every recipient's row is written, pending, before the first message goes out;
            # in chunks, so 100,000 recipients never sit in memory at once.
            chunk: list[dict[str, Any]] = []
            for email, message_id in recipients:
                chunk.append(
                    {
                        "digest_id": digest_id,
                        "email": email,
                        "message_id": message_id,
                        "status": "pending",
                        "reply": "",
                        "attempts": 0,
                        "updated": now,
                    }
                )
                if len(chunk) >= 5000:
                    conn.execute(deliveries.insert(), chunk)
                    chunk = []
            if chunk:
                conn.execute(deliveries.insert(), chunk)

    def settle_delivery(
        self,
        digest_id: str,
        email: str,
        status: str,
        reply: str,
        next_try: datetime | None = None,
    ) -> None:
        """Record the server's answer for one recipient (one short transaction)."""
        now = datetime.now(UTC)
        with self.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.digest_id == digest_id, deliveries.c.email == email)
                .values(
                    status=status,
                    reply=reply,
                    attempts=deliveries.c.attempts + 1,
                    next_try=next_try,
                    updated=now,
                )
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
                deliveries.outerjoin(subscribers, subscribers.c.email == deliveries.c.email)
                .outerjoin(suppressions, suppressions.c.email == deliveries.c.email)
            )
            .where(
                deliveries.c.digest_id.in_(list(digest_ids)),
                due,
                sa.tuple_(deliveries.c.digest_id, deliveries.c.email) > sa.tuple_(*after),
            )
            .order_by(deliveries.c.digest_id, deliveries.c.email)
            .limit(limit)
        )
        with self.begin() as conn:
            return [DueDelivery(*row) for row in conn.execute(query)]

    def next_retry(self, digest_ids: Sequence[str]) -> datetime | None:
        with self.begin() as conn:
            value = conn.execute(
                sa.select(sa.func.min(deliveries.c.next_try, type_=UTCDateTime)).where(
                    deliveries.c.digest_id.in_(list(digest_ids)),
                    deliveries.c.status == "deferred",
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

    def sent_since(self, since: datetime) -> int:
        """Messages accepted by the server since `since` (for hourly and daily limits)."""
        with self.begin() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        deliveries.c.status == "sent", deliveries.c.updated >= since
                    )
                ).scalar_one()
            )

    def latest_edition(self) -> str | None:
        with self.begin() as conn:
            return conn.execute(  # type: ignore[no-any-return]
                sa.select(digests.c.edition).order_by(digests.c.created.desc()).limit(1)
            ).scalar()

    def failures(self, edition: str, limit: int = 50) -> list[tuple[str, str, str]]:
        """(email, status, reply) of recipients not (yet) sent, worst first."""
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(deliveries.c.email, deliveries.c.status, deliveries.c.reply)
                .select_from(deliveries.join(digests))
                .where(digests.c.edition == edition, deliveries.c.status != "sent")
                .order_by(deliveries.c.status, deliveries.c.email)
                .limit(limit)
            )
            return [(r[0], r[1], r[2]) for r in rows]

    def delivery_counts(self, edition: str | None = None) -> dict[str, int]:
        query = sa.select(deliveries.c.status, sa.func.count()).group_by(deliveries.c.status)
        if edition:
            query = query.select_from(deliveries.join(digests)).where(digests.c.edition == edition)
        with self.begin() as conn:
            return {status: int(n) for status, n in conn.execute(query)}

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


def _post_values(post: Post) -> dict[str, Any]:
    return {
        "source": post.source,
        "guid": post.guid,
        "url": post.url,
        "title": post.title,
        "author": post.author,
        "published": post.published,
        "updated": post.updated,
        "tags": list(post.tags),
        "text": post.text,
        "description": post.description,
        "image": post.image,
        "image_alt": post.image_alt,
        "language": post.language,
        "reactions": post.reactions,
        "comments": post.comments,
    }


def _row_to_post(row: Any) -> Post:
    return Post(
        source=row.source,
        guid=row.guid,
        url=row.url,
        title=row.title,
        text=row.text,
        published=row.published,
        author=row.author,
        updated=row.updated,
        tags=tuple(row.tags),
        description=row.description,
        image=row.image,
        image_alt=row.image_alt,
        language=row.language,
        reactions=row.reactions,
        comments=row.comments,
    )


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# -- web: subscriber self-service and the archive (digest serve, digest preview) ---------------
# One block at the end of the module, as a subclass, so it never touches the lines above; the
# web apps wrap an open store with `WebStore(store.engine)`.


@dataclass(frozen=True)
class ArchivedDigest:
    """A sent digest as the archive lists it."""

    id: str
    edition: str
    issue_number: int
    variant: str  # sorted theme keys, "" = everything
    theme: str | None
    subject: str
    sent: datetime
    sections: tuple[str, ...]  # the section keys it carried, e.g. ("ai",) or ("all",)


class WebStore(Store):
    """What the subscriber pages and the archive need beyond `Store`."""

    def subscriber(self, email: str) -> StoredSubscriber | None:
        with self.begin() as conn:
            r = conn.execute(sa.select(subscribers).where(subscribers.c.email == email)).first()
        if r is None:
            return None
        return StoredSubscriber(r.email, r.name, tuple(r.themes), r.language, r.status)

    def suppression(self, email: str) -> str | None:
        """Why `email` is suppressed (unsubscribed, bounced, complained), or None."""
        with self.begin() as conn:
            reason = conn.execute(
                sa.select(suppressions.c.reason).where(suppressions.c.email == email)
            ).scalar_one_or_none()
        return None if reason is None else str(reason)

    def set_preferences(self, email: str, themes: Iterable[str], status: str) -> bool:
        """The subscriber's own themes and status (active or paused); False if not possible.

        A suppressed address stays suppressed: only `resubscribe` lifts an unsubscribe.
        """
        if status not in ("active", "paused"):
            raise ValueError(status)
        with self.begin() as conn:
            if conn.execute(
                sa.select(suppressions.c.email).where(suppressions.c.email == email)
            ).first():
                return False
            result = conn.execute(
                subscribers.update()
                .where(subscribers.c.email == email)
                .values(themes=list(themes), status=status, updated=datetime.now(UTC))
            )
        return bool(result.rowcount)

    def resubscribe(self, email: str) -> bool:
        """Lift the subscriber's own unsubscribe (never a bounce or complaint)."""
        with self.begin() as conn:
            result = conn.execute(
                suppressions.delete().where(
                    suppressions.c.email == email, suppressions.c.reason == "unsubscribed"
                )
            )
            if not result.rowcount:
                return False
            conn.execute(
                subscribers.update()
                .where(subscribers.c.email == email)
                .values(status="active", updated=datetime.now(UTC))
            )
        return True

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
