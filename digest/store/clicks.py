"""Click counters, one row per (edition, post) whose link was followed, and open counters,
one row per edition whose pixel was loaded (digest.tracking). Nothing about who."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from digest.store.base import StoreBase
from digest.store.tables import clicks, digest_posts, digests, opens, posts


@dataclass(frozen=True)
class PostClicks:
    """One post of an edition and how often its links were followed."""

    post_key: str
    title: str
    url: str
    clicks: int


class ClickStore(StoreBase):
    def follow_click(self, edition: str, post_key: str, *, count: bool = True) -> str | None:
        """The stored URL of the post `post_key` (None: no such post), counting one click for
        (`edition`, post) when `count` and the edition carried the post. One transaction; the
        counter is one upsert, so concurrent clicks never lose one."""
        with self.begin() as conn:
            url = conn.execute(sa.select(posts.c.url).where(posts.c.key == post_key)).scalar()
            if url is None:
                return None
            if count and _carried(conn, edition, post_key):
                conn.execute(_increment(conn, edition, post_key))
        return str(url)

    def count_open(self, edition: str) -> bool:
        """One more load of `edition`'s open pixel; False (nothing counted) for an edition
        that was never recorded."""
        with self.begin() as conn:
            known = conn.execute(
                sa.select(sa.literal(1)).where(digests.c.edition == edition).limit(1)
            ).first()
            if known is None:
                return False
            conn.execute(_upsert(conn, opens, {"edition": edition}, opens.c.opens))
        return True

    def edition_opens(self, edition: str) -> int:
        with self.begin() as conn:
            found = conn.execute(sa.select(opens.c.opens).where(opens.c.edition == edition))
            return int(found.scalar() or 0)

    def edition_clicks(self, edition: str) -> list[PostClicks]:
        """Every post `edition` carried (in any variant) with its clicks, most first."""
        carried = (
            sa.select(digest_posts.c.post_key)
            .join(digests, digests.c.id == digest_posts.c.digest_id)
            .where(digests.c.edition == edition)
            .distinct()
            .subquery()
        )
        counted = sa.func.coalesce(clicks.c.clicks, 0)
        query = (
            sa.select(posts.c.key, posts.c.title, posts.c.url, counted)
            .join(carried, carried.c.post_key == posts.c.key)
            .outerjoin(
                clicks, sa.and_(clicks.c.edition == edition, clicks.c.post_key == posts.c.key)
            )
            .order_by(counted.desc(), posts.c.published.desc(), posts.c.key)
        )
        with self.begin() as conn:
            return [
                PostClicks(str(k), str(t), str(u), int(n)) for k, t, u, n in conn.execute(query)
            ]

    def recent_clicks(self, limit: int = 5) -> list[tuple[str, int, str | None, int]]:
        """(edition, issue number, theme, clicks in all) of the latest `limit` editions,
        newest first."""
        latest = (
            sa.select(
                digests.c.edition,
                sa.func.min(digests.c.issue_number).label("issue"),
                sa.func.min(digests.c.theme).label("theme"),
                sa.func.max(digests.c.created).label("created"),
            )
            .group_by(digests.c.edition)
            .order_by(sa.desc("created"))
            .limit(limit)
            .subquery()
        )
        totals = (
            sa.select(clicks.c.edition, sa.func.sum(clicks.c.clicks).label("n"))
            .group_by(clicks.c.edition)
            .subquery()
        )
        query = (
            sa.select(
                latest.c.edition, latest.c.issue, latest.c.theme, sa.func.coalesce(totals.c.n, 0)
            )
            .outerjoin(totals, totals.c.edition == latest.c.edition)
            .order_by(latest.c.created.desc())
        )
        with self.begin() as conn:
            return [(str(e), int(i), t, int(n)) for e, i, t, n in conn.execute(query)]


def _carried(conn: Connection, edition: str, post_key: str) -> bool:
    found = conn.execute(
        sa.select(sa.literal(1))
        .select_from(digest_posts.join(digests, digests.c.id == digest_posts.c.digest_id))
        .where(digests.c.edition == edition, digest_posts.c.post_key == post_key)
        .limit(1)
    ).first()
    return found is not None


def _increment(conn: Connection, edition: str, post_key: str) -> Any:
    return _upsert(conn, clicks, {"edition": edition, "post_key": post_key}, clicks.c.clicks)


def _upsert(conn: Connection, table: sa.Table, key: dict[str, str], counter: sa.Column[Any]) -> Any:
    """INSERT the row `key` with `counter` at 1, or add 1 to it: one statement, so two
    concurrent counts never lose one."""
    insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**key, **{counter.name: 1})
    return statement.on_conflict_do_update(
        index_elements=[table.c[name] for name in key],
        set_={counter.name: counter + 1},
    )
