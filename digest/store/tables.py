"""The schema: every table, on one `metadata`, created on first use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


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

# Theme matching's analyses of titles, bodies and keywords (Kiwi morphemes, English stems),
# keyed by the analyzer's version and the text: a planner that finds them here never loads
# Kiwi's model (about 530 MB).
analyses = sa.Table(
    "analyses",
    metadata,
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("tokens", sa.JSON, nullable=False),
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
    # pending | sent | deferred | failed; held: a draft's, claimed by nobody until approved
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reply", sa.Text, nullable=False, default=""),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_try", UTCDateTime),  # deferred: not before this time
    sa.Column("shard", sa.Integer, nullable=False, default=0),  # crc32(email) % 1024 (unused)
    sa.Column("updated", UTCDateTime, nullable=False),
    # The sender that claimed the row, until when: only it may settle the row, and an expired
    # lease (its sender died or froze) is claimed again by another, exactly once.
    sa.Column("lease_owner", sa.String),
    sa.Column("lease_until", UTCDateTime),
    sa.Index("deliveries_status", "status", "next_try"),
    # Rows still to send, in keyset order per digest: a claim reads only these, however many
    # rows of the edition are settled already.
    sa.Index(
        "deliveries_due",
        "digest_id",
        "email",
        sqlite_where=sa.text("status IN ('pending', 'deferred')"),
        postgresql_where=sa.text("status IN ('pending', 'deferred')"),
    ),
    # Hourly and daily limits count the last hour's or day's sent rows only.
    sa.Index("deliveries_sent", "status", "updated"),
)

# Per digest, what its delivery rows add up to: kept in the settle transaction, so progress
# and `digest status` read one row instead of counting a million.
digest_counts = sa.Table(
    "digest_counts",
    metadata,
    sa.Column("digest_id", sa.ForeignKey("digests.id"), primary_key=True),
    sa.Column("pending", sa.Integer, nullable=False, default=0),
    sa.Column("sent", sa.Integer, nullable=False, default=0),
    sa.Column("deferred", sa.Integer, nullable=False, default=0),
    sa.Column("failed", sa.Integer, nullable=False, default=0),
    sa.Column("held", sa.Integer, nullable=False, default=0, server_default="0"),
)

# Editions composed as drafts (a schedule with `approval = "draft"`): their delivery rows are
# written `held`, which no claim ever reads, until the editor approves (or the deadline
# passes) and one transaction turns them pending. `snapshot` keeps each variant's composed
# digest (JSON), so approving with a note renders it again with the note on top.
drafts = sa.Table(
    "drafts",
    metadata,
    sa.Column("edition", sa.String, primary_key=True),
    sa.Column("schedule", sa.String),  # None: composed by hand
    sa.Column("period", sa.String),
    sa.Column("status", sa.String(16), nullable=False),  # held | released | rejected
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("deadline", UTCDateTime),  # None: wait for the editor
    sa.Column("notify", sa.String, nullable=False, default=""),  # the editor's address
    sa.Column("snapshot", sa.JSON, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("notified", UTCDateTime),  # when the editor's notification was accepted
    sa.Column("decided", UTCDateTime),
    sa.Column("decided_by", sa.String, nullable=False, default=""),  # editor | deadline
)

# Followed post links per (edition, post) when `[tracking] clicks` is on (digest.tracking):
# one counter row per post an edition carried, at most, and nothing about who clicked.
clicks = sa.Table(
    "clicks",
    metadata,
    sa.Column("edition", sa.String, primary_key=True),
    sa.Column("post_key", sa.ForeignKey("posts.key"), primary_key=True),
    sa.Column("clicks", sa.Integer, nullable=False, default=0),
)

# Loads of an edition's open pixel when `[tracking] opens` is on: one counter per edition.
opens = sa.Table(
    "opens",
    metadata,
    sa.Column("edition", sa.String, primary_key=True),
    sa.Column("opens", sa.Integer, nullable=False, default=0),
)

# Values the whole installation shares, whatever host reads them (the link secret).
settings = sa.Table(
    "settings",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
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

# Quiet-week notes, one row per (schedule, period, reader), written before the note goes out
# and settled after: a run made up after a crash or a stop sends each note once.
quiet_notes = sa.Table(
    "quiet_notes",
    metadata,
    sa.Column("schedule", sa.String, primary_key=True),
    sa.Column("period", sa.String, primary_key=True),
    sa.Column("email", sa.String, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | deferred | failed
    sa.Column("reply", sa.Text, nullable=False, default=""),
    sa.Column("updated", UTCDateTime, nullable=False),
)

scheduler_lock = sa.Table(
    "scheduler_lock",
    metadata,
    sa.Column("name", sa.String, primary_key=True),  # "scheduler" or "sender": one row each
    sa.Column("owner", sa.String, nullable=False),  # a random token per scheduler process
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.String, nullable=False),
    sa.Column("started", UTCDateTime, nullable=False),
    sa.Column("heartbeat", UTCDateTime, nullable=False),
)


SHARDS = 1024


def _in_shard(shard: tuple[int, int] | None) -> sa.ColumnElement[bool]:
    """Rows of worker `index` out of `count` (every row when there is one worker)."""
    if shard is None or shard[1] <= 1:
        return sa.true()
    index, count = shard
    return (deliveries.c.shard % count) == index
