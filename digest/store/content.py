"""Posts, sources, cached summaries, subscribers and suppressions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from digest.models import Post, Summary
from digest.store.base import StoreBase
from digest.store.records import (
    StoredSubscriber,
)
from digest.store.tables import (
    analyses,
    deliveries,
    fetch_state,
    posts,
    seen_posts,
    source_state,
    subscribers,
    summaries,
    suppressions,
)


class ContentStore(StoreBase):
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

    def upsert_posts(
        self, items: Iterable[tuple[Post, str]], now: datetime | None = None
    ) -> tuple[int, int, int]:
        """Insert or update posts; returns (new, updated, unchanged) counts. A new post is
        first seen at `now` (the ingest's clock); an edit keeps its first sighting."""
        new = updated = unchanged = 0
        now = now or datetime.now(UTC)
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

    def shared_descriptions(self, sources: Iterable[str]) -> set[tuple[str, str]]:
        """(source, description) pairs that more than one post of the source carries: a
        site's blurb in every page's og:description, not a deck written for one article."""
        wanted = sorted(set(sources))
        if not wanted:
            return set()
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(posts.c.source, posts.c.description)
                .where(posts.c.source.in_(wanted), posts.c.description != "")
                .group_by(posts.c.source, posts.c.description)
                .having(sa.func.count() > 1)
            ).all()
        return {(row.source, row.description) for row in rows}

    def posts_arrived_since(self, since: datetime, until: datetime) -> list[Post]:
        """Posts that became available after `since` (published, or first seen if later) and
        are published by `until`: the candidates of a digest planned at `until`."""
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(posts)
                .where(
                    sa.or_(posts.c.published > since, posts.c.first_seen > since),
                    posts.c.published <= until,
                )
                .order_by(posts.c.published.desc())
            ).all()
        found = [_row_to_post(r) for r in rows]
        return [p for p in found if p.arrived > since]

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

    # -- theme matching's analyses ---------------------------------------------------------

    def cached_analyses(self, keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The stored analyses among `keys` (see `digest.themes.analysis_key`)."""
        wanted = sorted(set(keys))
        found: dict[str, tuple[str, ...]] = {}
        with self.begin() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(
                    sa.select(analyses.c.cache_key, analyses.c.tokens).where(
                        analyses.c.cache_key.in_(wanted[start : start + 500])
                    )
                )
                found.update((row.cache_key, tuple(row.tokens)) for row in rows)
        return found

    def cache_analyses(self, items: Mapping[str, Sequence[str]]) -> None:
        """Store analyses; one already stored (by another process, meanwhile) is kept."""
        if not items:
            return
        rows = [
            {"cache_key": key, "tokens": list(tokens), "created": datetime.now(UTC)}
            for key, tokens in items.items()
        ]
        with self.begin() as conn:
            insert: Any
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            conn.execute(insert(analyses).on_conflict_do_nothing(), rows)

    # -- subscribers ---------------------------------------------------------------------

    def upsert_subscribers(
        self, rows: Iterable[StoredSubscriber], *, update_existing: bool = True
    ) -> tuple[int, int, int]:
        """Insert or update subscribers; suppressed addresses are skipped.

        Addresses are one subscriber whatever their case (see `address_key`): a row for
        `Kim@example.com` updates the stored `kim@example.com`, which keeps the form it was
        stored with, and a suppression of either is a suppression of both.

        With `update_existing=False` (the automatic sync of `subscribers.files` before each
        send) only new addresses are added: choices a subscriber saved on the preferences page
        are never overwritten by a list file. Returns (added, updated, suppressed_skipped).
        """
        from digest.store.bulk import upsert_subscribers

        with self.begin() as conn:
            return upsert_subscribers(conn, rows, update_existing=update_existing)

    def subscribers(self, *, active_only: bool = False) -> list[StoredSubscriber]:
        """Every stored row; or (`active_only`) the recipients: one per address whatever its
        case (see `address_key`), none whose address is suppressed or whose row in any
        spelling is not active (an older store may hold several spellings of one address)."""
        query = sa.select(subscribers).order_by(subscribers.c.email)
        with self.begin() as conn:
            rows = conn.execute(query).all()
            suppressed = (
                {address_key(r[0]) for r in conn.execute(sa.select(suppressions.c.email))}
                if active_only
                else set()
            )
        found = [
            StoredSubscriber(r.email, r.name, tuple(r.themes), r.language, r.status) for r in rows
        ]
        if not active_only:
            return found
        by_key: dict[str, list[StoredSubscriber]] = {}
        for sub in found:
            by_key.setdefault(address_key(sub.email), []).append(sub)
        return sorted(
            (
                forms[0]
                for key, forms in by_key.items()
                if key not in suppressed and all(f.status == "active" for f in forms)
            ),
            key=lambda sub: sub.email,
        )

    def suppress(self, email: str, reason: str, detail: str = "") -> None:
        """Put `email` on the suppression list, in any case of its letters.

        The row is written under the form given and under each form the subscriber list
        holds (a list or a link may spell the address differently), so that whatever
        compares addresses exactly (the send's own check) still finds it.
        """
        now = datetime.now(UTC)
        with self.begin() as conn:
            forms = {email, *_matching(conn, subscribers.c.email, email)}
            found = _matching(conn, suppressions.c.email, email)
            if found:
                conn.execute(suppressions.delete().where(suppressions.c.email.in_(found)))
            conn.execute(
                suppressions.insert(),
                [
                    {"email": form, "reason": reason, "detail": detail, "created": now}
                    for form in sorted(forms)
                ],
            )
            conn.execute(
                subscribers.update()
                .where(subscribers.c.email.in_(sorted(forms)))
                .values(status=reason, updated=now)
            )

    def suppressed(self) -> dict[str, str]:
        """Suppressed address -> reason. Looking an address up ignores case (`AddressMap`)."""
        with self.begin() as conn:
            return AddressMap({r.email: r.reason for r in conn.execute(sa.select(suppressions))})

    # -- subscriber records and bounces (digest subscribers show, digest bounces) ----------

    def suppression_record(self, email: str) -> tuple[str, str, datetime] | None:
        """(reason, detail, when) if `email`, in any case, is on the suppression list."""
        with self.begin() as conn:
            forms = _matching(conn, suppressions.c.email, email)
            if not forms:
                return None
            row = conn.execute(
                sa.select(suppressions.c.reason, suppressions.c.detail, suppressions.c.created)
                .where(suppressions.c.email.in_(forms))
                .order_by(suppressions.c.created, suppressions.c.email)
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
        given = {e for e in emails}
        wanted = sorted({e.lower() for e in given} | given)
        found: dict[str, str] = {}
        with self.begin() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for column in (subscribers.c.email, deliveries.c.email):
                    # SQLite's lower() folds ASCII letters only: a non-ASCII address is
                    # also looked up as given.
                    rows = conn.execute(
                        sa.select(column)
                        .distinct()
                        .where(sa.or_(sa.func.lower(column).in_(chunk), column.in_(chunk)))
                    )
                    for (email,) in rows:
                        found.setdefault(email.lower(), email)
        return found


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
        first_seen=row.first_seen,
    )


# -- addresses: one subscriber whatever the case of its letters --------------------------------


def address_key(email: str) -> str:
    """What makes two addresses the same subscriber: the whole address lowercased, its domain
    in IDNA (ASCII) form.

    RFC 5321 lets a server treat `Kim@` and `kim@` as different mailboxes; no mail provider in
    practice does, and a list that did would let an unsubscribed address come back in another
    case. So lists, suppressions and the subscriber pages compare addresses by this key; the
    address is still sent to as it was written.
    """
    local, at, domain = email.strip().rpartition("@")
    if not at:
        return email.strip().lower()
    if not domain.isascii():
        import idna

        with contextlib.suppress(idna.IDNAError, UnicodeError):  # not IDNA: kept as written
            domain = idna.encode(domain, uts46=True).decode("ascii")
    return f"{local.lower()}@{domain.lower()}"


class AddressMap(dict[str, str]):
    """Stored address -> value, looked up by `address_key` (any case, either domain form)."""

    def __init__(self, items: dict[str, str]) -> None:
        super().__init__(items)
        self._by_key = {address_key(k): v for k, v in sorted(items.items())}

    def __missing__(self, key: str) -> str:
        try:
            return self._by_key[address_key(key)]
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and address_key(key) in self._by_key

    def get(self, key: str, default: Any = None) -> Any:
        return self._by_key.get(address_key(key), default) if isinstance(key, str) else default


def _like_local_part(email: str) -> str:
    """A LIKE pattern (escape "\\") matched by every stored form of `email` lowercased by
    the database: its local part, ASCII letters in lower case and each run of other
    characters as "%" (SQLite lowers ASCII only), then any domain (which may be stored in
    Unicode or in IDNA form)."""
    local = email.strip().rpartition("@")[0]
    out: list[str] = []
    for ch in local:
        if not ch.isascii():
            if not out or out[-1] != "%":
                out.append("%")
        elif ch in "%_\\":
            out.append("\\" + ch)
        else:
            out.append(ch.lower())
    return "".join(out) + "@%"


def _matching(conn: Any, column: Any, email: str) -> list[str]:
    """The stored forms in `column` of the address `email` (compared by `address_key`): the
    database narrows by local part, Python decides."""
    key = address_key(email)
    if "@" not in email:
        rows = conn.execute(sa.select(column).where(column == email))
    else:
        pattern = _like_local_part(email)
        rows = conn.execute(
            sa.select(column).where(
                sa.or_(column == email, sa.func.lower(column).like(pattern, escape="\\"))
            )
        )
    return sorted({r[0] for r in rows if address_key(r[0]) == key})
