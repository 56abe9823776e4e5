"""Writing many subscribers at once: a list import of a million rows in one transaction.

One read of the stored addresses and suppressions, then inserts and updates in batches of
`BATCH` rows (one executemany each: SQLite's and psycopg's fast paths), and no write at all
for a row that is stored with the same values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

import sqlalchemy as sa

from digest.store.records import StoredSubscriber
from digest.store.tables import subscribers, suppressions

BATCH = 5_000
_T = TypeVar("_T")


def _batches(items: Iterable[_T], size: int = BATCH) -> Iterator[list[_T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def upsert_subscribers(
    conn: sa.Connection, rows: Iterable[StoredSubscriber], *, update_existing: bool = True
) -> tuple[int, int, int]:
    """Insert or update `rows` on `conn` (inside the caller's transaction); suppressed
    addresses are skipped. Addresses are one subscriber whatever their case: a row updates
    every stored spelling of its address, which keeps the form it was stored with. Returns
    (added, updated, suppressed_skipped); a row for a stored address counts as updated even
    when nothing in it changed (and then nothing is written)."""
    from digest.store.content import address_key

    now = datetime.now(UTC)
    suppressed = {address_key(r[0]) for r in conn.execute(sa.select(suppressions.c.email))}
    stored: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
    columns = (
        subscribers.c.email,
        subscribers.c.name,
        subscribers.c.themes,
        subscribers.c.language,
        subscribers.c.status,
    )
    for email, name, themes, language, status in conn.execute(sa.select(*columns)):
        values = (name, tuple(themes), language, status)
        stored.setdefault(address_key(email), []).append((email, values))
    inserts: dict[str, dict[str, Any]] = {}  # by address_key: a later row for one wins
    updates: dict[str, dict[str, Any]] = {}  # by stored spelling
    added = updated = skipped = 0
    for sub in rows:
        key = address_key(sub.email)
        if key in suppressed:
            skipped += 1
            continue
        values = (sub.name, tuple(sub.themes), sub.language, sub.status)
        forms = stored.get(key)
        if forms is None:
            if key not in inserts:
                added += 1
            inserts[key] = {
                "email": sub.email,
                "name": sub.name,
                "themes": list(sub.themes),
                "language": sub.language,
                "status": sub.status,
                "created": now,
                "updated": now,
            }
            continue
        if not update_existing:
            continue
        updated += 1
        for email, current in forms:
            if current != values:
                updates[email] = {
                    "b_email": email,
                    "name": sub.name,
                    "themes": list(sub.themes),
                    "language": sub.language,
                    "status": sub.status,
                    "updated": now,
                }
    for batch in _batches(inserts.values()):
        conn.execute(subscribers.insert(), batch)
    update = subscribers.update().where(subscribers.c.email == sa.bindparam("b_email"))
    for batch in _batches(updates.values()):
        conn.execute(update, batch)
    return added, updated, skipped
