"""The recipients of a plan, streamed: a million readers are never a list in memory.

`ContentStore.subscribers(active_only=True)` and `DeliveryStore.readers_digests` give the
same answers as lists and dicts; planning reads them from here instead, one reader at a time,
each with their history, in the order `subscribers` sorts them (by address).
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.base import StoreBase
from digest.store.content import address_key
from digest.store.records import StoredSubscriber
from digest.store.tables import deliveries, digests, subscribers, suppressions

CHUNK = 5000  # rows fetched at a time


class PlanningStore(StoreBase):
    def recipients_with_history(
        self, since: datetime
    ) -> Iterator[tuple[StoredSubscriber, frozenset[str]]]:
        """Every recipient, as `subscribers(active_only=True)` lists them (one per address in
        any case, none suppressed or with a row in any spelling that is not active, sorted
        by address), each with the digests composed after `since` that were (or are being)
        delivered to them, as `readers_digests` has it. Streamed: memory is a few thousand
        rows (and 8 bytes per subscriber while the first pass looks for addresses stored in
        more than one spelling), whatever the number of readers."""
        with self.begin() as conn:
            suppressed = {address_key(r[0]) for r in conn.execute(sa.select(suppressions.c.email))}
            chosen = _spellings(conn)
            history = _histories(conn, since)
            pending = next(history, None)
            query = sa.select(
                subscribers.c.email,
                subscribers.c.name,
                subscribers.c.themes,
                subscribers.c.language,
                subscribers.c.status,
            ).order_by(_by_code_point(conn, subscribers.c.email))
            for row in _stream(conn, query):
                email = row.email
                if row.status != "active":
                    continue
                key = address_key(email)
                if key in suppressed or chosen.get(key, email) != email:
                    continue
                while pending is not None and pending[0] < email:
                    pending = next(history, None)
                got: frozenset[str] = frozenset()
                if pending is not None and pending[0] == email:
                    got = pending[1]
                    pending = next(history, None)
                sub = StoredSubscriber(email, row.name, tuple(row.themes), row.language, "active")
                yield sub, got


def _stream(conn: Connection, query: sa.Select[Any]) -> Iterator[Any]:
    """The rows of `query` a chunk at a time (a server-side cursor on PostgreSQL)."""
    result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(query)
    with result:
        yield from result


def _by_code_point(conn: Connection, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """`column` ordered as Python compares strings (SQLite's default; PostgreSQL's "C")."""
    if conn.dialect.name == "postgresql":
        return column.collate("C")
    return column


def _spellings(conn: Connection) -> dict[str, str | None]:
    """Per address stored in more than one spelling (an older store's case variants): the one
    that is sent to (the first by address, as `subscribers` picks it), or None when any
    spelling is not active. Other addresses are not in it. Found by a first pass that keeps
    one 64-bit hash per row, then the few rows whose hash repeats."""
    query = sa.select(subscribers.c.email)
    hashes = array("q", (hash(address_key(r[0])) for r in _stream(conn, query)))
    ordered = sorted(hashes)
    del hashes
    repeated = {a for a, b in itertools.pairwise(ordered) if a == b}
    del ordered
    if not repeated:
        return {}
    forms: dict[str, list[tuple[str, str]]] = {}
    # In the database's order, as `subscribers` reads them: its first spelling is the one.
    spelled = sa.select(subscribers.c.email, subscribers.c.status).order_by(subscribers.c.email)
    for email, status in _stream(conn, spelled):
        key = address_key(email)
        if hash(key) in repeated:
            forms.setdefault(key, []).append((email, status))
    return {
        key: rows[0][0] if all(s == "active" for _, s in rows) else None
        for key, rows in forms.items()
        if len(rows) > 1
    }


def _histories(conn: Connection, since: datetime) -> Iterator[tuple[str, frozenset[str]]]:
    """(email, digest ids) per reader who was delivered a digest composed after `since`, in
    the order of `_by_code_point`; equal sets are one frozenset."""
    query = (
        sa.select(deliveries.c.email, deliveries.c.digest_id)
        .select_from(deliveries.join(digests))
        .where(digests.c.created > since, deliveries.c.status != "failed")
        .order_by(_by_code_point(conn, deliveries.c.email))
    )
    shared: dict[frozenset[str], frozenset[str]] = {}
    email: str | None = None
    ids: set[str] = set()
    for row in _stream(conn, query):
        if row[0] != email:
            if email is not None:
                got = frozenset(ids)
                yield email, shared.setdefault(got, got)
            email, ids = row[0], set()
        ids.add(row[1])
    if email is not None:
        got = frozenset(ids)
        yield email, shared.setdefault(got, got)
