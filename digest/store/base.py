"""Opening the database and running short transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.errors import StoreError
from digest.store.tables import (
    metadata,
)


class StoreBase:
    """Thin, typed access to the database. Every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._settle: Connection | None = None
        self._marked_sent: set[str] = set()

    @classmethod
    def open(cls, path: Path) -> Self:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store's folder: {exc.strerror}") from None
        return cls.from_url(f"sqlite:///{path}")

    @classmethod
    def from_url(cls, url: str) -> Self:
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
