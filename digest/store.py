"""The store: one SQL database (SQLite by default) through SQLAlchemy Core.

It holds posts, cached summaries, subscribers and suppressions, digests with the posts each
section carried, and one delivery row per (digest, recipient). The schema is created on first
use. Times are stored as timezone-aware UTC datetimes.
"""

from __future__ import annotations

import json
import zlib
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

# Conditional GET per fetched URL (a feed, a listing page, an article page): the validators of
# the last response that was fully processed, so an unchanged resource costs a 304.
fetch_state = sa.Table(
    "fetch_state",
    metadata,
    sa.Column("url", sa.String, primary_key=True),
    sa.Column("etag", sa.String, nullable=False, default=""),
    sa.Column("last_modified", sa.String, nullable=False, default=""),
    sa.Column("updated", UTCDateTime, nullable=False),
)

# Posts a source's first ingest found older than the lookback: recorded as already seen (never
# stored as posts, never counted as new), so the first digest is not a site's whole archive.
seen_posts = sa.Table(
    "seen_posts",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("source", sa.String, nullable=False, index=True),
    sa.Column("seen", UTCDateTime, nullable=False),
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
    sa.Column("shard", sa.Integer, nullable=False, default=0),  # crc32(email) % 1024: workers
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Index("deliveries_status", "status", "next_try"),
)

# -- scheduling: run keys and the one-scheduler-per-database lock (digest.scheduling) ----------

schedule_runs = sa.Table(
    "schedule_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("schedule", sa.String, nullable=False),
    sa.Column("period", sa.String, nullable=False),  # the scheduled local wall-clock time
    sa.Column("scheduled", UTCDateTime, nullable=False),  # the same instant, in UTC
    # running | sent | partial | skipped | quiet | missed | failed | abandoned
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String, nullable=False),  # the scheduler (or process) running it
    sa.Column("editions", sa.String, nullable=False, default=""),  # space-separated ids
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("started", UTCDateTime, nullable=False),
    sa.Column("finished", UTCDateTime),
    # The run key: one row per (schedule, period), whichever process or restart tries again.
    sa.UniqueConstraint("schedule", "period", name="schedule_runs_key"),
)

scheduler_lock = sa.Table(
    "scheduler_lock",
    metadata,
    sa.Column("name", sa.String, primary_key=True),  # always "scheduler": one row at most
    sa.Column("owner", sa.String, nullable=False),  # a random token per scheduler process
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.String, nullable=False),
    sa.Column("started", UTCDateTime, nullable=False),
    sa.Column("heartbeat", UTCDateTime, nullable=False),
)


@dataclass(frozen=True)
class ScheduleRun:
    schedule: str
    period: str
    scheduled: datetime
    status: str
    owner: str
    editions: tuple[str, ...]
    detail: str
    counts: dict[str, int]
    started: datetime
    finished: datetime | None


@dataclass(frozen=True)
class SchedulerLock:
    owner: str
    pid: int
    host: str
    started: datetime
    heartbeat: datetime


_SETTLE = sa.text(
    "UPDATE deliveries SET status = :status, reply = :reply, attempts = attempts + 1,"
    " next_try = :next_try, updated = :updated"
    " WHERE digest_id = :digest_id AND email = :email"
)
_MARK_SENT = sa.text("UPDATE digests SET sent = :sent WHERE id = :digest_id AND sent IS NULL")


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
        self._settle: Connection | None = None
        self._marked_sent: set[str] = set()

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
                # In WAL mode, NORMAL syncs at checkpoints, not at every commit: a commit
                # survives the process being killed (kill -9), and only an OS crash or power
                # loss can lose the last few. Per-recipient rows are committed one by one, so
                # this is what keeps a send near the wire's speed.
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=5000")
                cur.close()

        try:
            metadata.create_all(engine)
        except sa.exc.SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"{engine.url}: cannot open the store: {reason}") from None
        return cls(engine)

    def close(self) -> None:
        if self._settle is not None:
            self._settle.close()
            self._settle = None
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

    def source_ingested_before(self, source: str) -> bool:
        """True once an ingest of `source` has succeeded."""
        with self.begin() as conn:
            row = conn.execute(
                sa.select(source_state.c.last_ok).where(source_state.c.name == source)
            ).first()
        return row is not None and row[0] is not None

    def fetch_validators(self, url: str) -> tuple[str, str]:
        """(etag, last_modified) stored for `url`; empty strings when none."""
        with self.begin() as conn:
            row = conn.execute(
                sa.select(fetch_state.c.etag, fetch_state.c.last_modified).where(
                    fetch_state.c.url == url
                )
            ).first()
        return ("", "") if row is None else (row[0], row[1])

    def save_fetch_validators(self, url: str, etag: str, last_modified: str) -> None:
        with self.begin() as conn:
            conn.execute(fetch_state.delete().where(fetch_state.c.url == url))
            if etag or last_modified:
                conn.execute(
                    fetch_state.insert().values(
                        url=url, etag=etag, last_modified=last_modified, updated=datetime.now(UTC)
                    )
                )

    def mark_seen(self, source: str, keys: Iterable[str]) -> None:
        now = datetime.now(UTC)
        with self.begin() as conn:
            known = {
                r[0]
                for r in conn.execute(
                    sa.select(seen_posts.c.key).where(seen_posts.c.source == source)
                )
            }
            rows = [{"key": k, "source": source, "seen": now} for k in keys if k not in known]
            if rows:
                conn.execute(seen_posts.insert(), rows)

    def seen_keys(self, source: str) -> set[str]:
        with self.begin() as conn:
            return {
                r[0]
                for r in conn.execute(
                    sa.select(seen_posts.c.key).where(seen_posts.c.source == source)
                )
            }

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

    def upsert_subscribers(
        self, rows: Iterable[StoredSubscriber], *, update_existing: bool = True
    ) -> tuple[int, int, int]:
        """Insert or update subscribers; suppressed addresses are skipped.

        With `update_existing=False` (the automatic sync of `subscribers.files` before each
        send) only new addresses are added: choices a subscriber saved on the preferences page
        are never overwritten by a list file. Returns (added, updated, suppressed_skipped).
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
                if exists and not update_existing:
                    continue
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
                        "shard": zlib.crc32(email.encode()) % SHARDS,
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
        """Record the server's answer for one recipient: one short transaction, committed
        before the next message goes out. On the hot path of a send, so the statements are
        prepared once and run on a connection kept for that purpose."""
        now = datetime.now(UTC)
        stamp = UTCDateTime().process_bind_param
        conn = self._settle_conn()
        try:
            conn.execute(
                _SETTLE,
                {
                    "status": status,
                    "reply": reply,
                    "next_try": stamp(next_try, None),
                    "updated": stamp(now, None),
                    "digest_id": digest_id,
                    "email": email,
                },
            )
            if status == "sent" and digest_id not in self._marked_sent:
                conn.execute(_MARK_SENT, {"sent": stamp(now, None), "digest_id": digest_id})
                self._marked_sent.add(digest_id)
            conn.commit()
        except sa.exc.OperationalError as exc:
            conn.rollback()
            raise StoreError(f"{self.engine.url}: {exc.orig}") from None

    def _settle_conn(self) -> Connection:
        if self._settle is None:
            self._settle = self.engine.connect()
        return self._settle

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
            return conn.execute(
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

    # -- subscriber records and bounces (digest subscribers show, digest bounces) ----------

    def suppression_record(self, email: str) -> tuple[str, str, datetime] | None:
        """(reason, detail, when) if `email` is on the suppression list."""
        with self.begin() as conn:
            row = conn.execute(
                sa.select(
                    suppressions.c.reason, suppressions.c.detail, suppressions.c.created
                ).where(suppressions.c.email == email)
            ).first()
        return None if row is None else (str(row[0]), str(row[1]), row[2])

    def recipients_by_message_id(self, message_ids: Iterable[str]) -> dict[str, str]:
        """Message-ID (with angle brackets) -> the recipient it was sent to."""
        wanted = sorted(set(message_ids))
        found: dict[str, str] = {}
        with self.begin() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(
                    sa.select(deliveries.c.message_id, deliveries.c.email).where(
                        deliveries.c.message_id.in_(wanted[start : start + 500])
                    )
                )
                found.update({r[0]: r[1] for r in rows})
        return found

    def known_addresses(self, emails: Iterable[str]) -> dict[str, str]:
        """Lowercased address -> the stored form, for addresses that are subscribers or
        were sent a digest (compared case-insensitively)."""
        wanted = sorted({e.lower() for e in emails})
        found: dict[str, str] = {}
        with self.begin() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for column in (subscribers.c.email, deliveries.c.email):
                    rows = conn.execute(
                        sa.select(column).distinct().where(sa.func.lower(column).in_(chunk))
                    )
                    for (email,) in rows:
                        found.setdefault(email.lower(), email)
        return found

    # -- scheduling: run keys (digest.scheduling) ----------------------------------------

    def insert_run(
        self,
        schedule: str,
        period: str,
        *,
        scheduled: datetime,
        owner: str,
        status: str,
        now: datetime,
        detail: str = "",
    ) -> bool:
        """Claim the run key (schedule, period); False when it is already taken."""
        try:
            with self.begin() as conn:
                conn.execute(
                    schedule_runs.insert().values(
                        schedule=schedule,
                        period=period,
                        scheduled=scheduled,
                        status=status,
                        owner=owner,
                        editions="",
                        detail=detail,
                        counts={},
                        started=now,
                        finished=None if status == "running" else now,
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def retake_run(self, expected: ScheduleRun, *, owner: str, now: datetime) -> bool:
        """Take over a run that recorded no edition (so sent nothing) if it is still exactly
        `expected`: compare-and-set, so of two processes trying, one wins."""
        with self.begin() as conn:
            result = conn.execute(
                schedule_runs.update()
                .where(
                    schedule_runs.c.schedule == expected.schedule,
                    schedule_runs.c.period == expected.period,
                    schedule_runs.c.status == expected.status,
                    schedule_runs.c.owner == expected.owner,
                    schedule_runs.c.started == expected.started,
                    schedule_runs.c.editions == "",
                )
                .values(status="running", owner=owner, started=now, finished=None, detail="")
            )
        return bool(result.rowcount)

    def update_run(self, schedule: str, period: str, owner: str, **values: Any) -> bool:
        """Change a run `owner` holds: status, editions (a sequence), detail, counts, finished."""
        if "editions" in values:
            values["editions"] = " ".join(values["editions"])
        with self.begin() as conn:
            result = conn.execute(
                schedule_runs.update()
                .where(
                    schedule_runs.c.schedule == schedule,
                    schedule_runs.c.period == period,
                    schedule_runs.c.owner == owner,
                )
                .values(**values)
            )
        return bool(result.rowcount)

    def get_run(self, schedule: str, period: str) -> ScheduleRun | None:
        with self.begin() as conn:
            row = conn.execute(
                sa.select(schedule_runs).where(
                    schedule_runs.c.schedule == schedule, schedule_runs.c.period == period
                )
            ).first()
        return None if row is None else _row_to_run(row)

    def schedule_runs(
        self, schedule: str | None = None, *, statuses: Sequence[str] = (), limit: int = 100
    ) -> list[ScheduleRun]:
        """Runs, the latest scheduled first; of one schedule, or in some statuses."""
        query = sa.select(schedule_runs).order_by(schedule_runs.c.scheduled.desc()).limit(limit)
        if schedule is not None:
            query = query.where(schedule_runs.c.schedule == schedule)
        if statuses:
            query = query.where(schedule_runs.c.status.in_(list(statuses)))
        with self.begin() as conn:
            return [_row_to_run(r) for r in conn.execute(query)]

    # -- scheduling: one scheduler per database (digest.scheduling) ----------------------

    def scheduler_lock(self) -> SchedulerLock | None:
        with self.begin() as conn:
            row = conn.execute(
                sa.select(scheduler_lock).where(scheduler_lock.c.name == "scheduler")
            ).first()
        if row is None:
            return None
        return SchedulerLock(row.owner, row.pid, row.host, row.started, row.heartbeat)

    def take_scheduler_lock(
        self, owner: str, *, pid: int, host: str, now: datetime, replacing: SchedulerLock | None
    ) -> bool:
        """Become the scheduler: insert the lock, or replace exactly `replacing` (a holder
        found stale). Compare-and-set: of two processes trying at once, one wins."""
        values = {"owner": owner, "pid": pid, "host": host, "started": now, "heartbeat": now}
        try:
            with self.begin() as conn:
                if replacing is None:
                    conn.execute(scheduler_lock.insert().values(name="scheduler", **values))
                    return True
                result = conn.execute(
                    scheduler_lock.update()
                    .where(
                        scheduler_lock.c.name == "scheduler",
                        scheduler_lock.c.owner == replacing.owner,
                        scheduler_lock.c.heartbeat == replacing.heartbeat,
                    )
                    .values(**values)
                )
                return bool(result.rowcount)
        except sa.exc.IntegrityError:
            return False

    def beat_scheduler_lock(self, owner: str, now: datetime) -> bool:
        """Refresh the holder's heartbeat; False when `owner` no longer holds the lock."""
        with self.begin() as conn:
            result = conn.execute(
                scheduler_lock.update()
                .where(scheduler_lock.c.name == "scheduler", scheduler_lock.c.owner == owner)
                .values(heartbeat=now)
            )
        return bool(result.rowcount)

    def release_scheduler_lock(self, owner: str) -> None:
        with self.begin() as conn:
            conn.execute(
                scheduler_lock.delete().where(
                    scheduler_lock.c.name == "scheduler", scheduler_lock.c.owner == owner
                )
            )


def _row_to_run(row: Any) -> ScheduleRun:
    return ScheduleRun(
        schedule=row.schedule,
        period=row.period,
        scheduled=row.scheduled,
        status=row.status,
        owner=row.owner,
        editions=tuple(row.editions.split()),
        detail=row.detail,
        counts=dict(row.counts),
        started=row.started,
        finished=row.finished,
    )


SHARDS = 1024


def _in_shard(shard: tuple[int, int] | None) -> sa.ColumnElement[bool]:
    """Rows of worker `index` out of `count` (every row when there is one worker)."""
    if shard is None or shard[1] <= 1:
        return sa.true()
    index, count = shard
    return (deliveries.c.shard % count) == index


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
