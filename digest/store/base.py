"""Opening the database and running short transactions."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.config import StoreConfig
from digest.errors import StoreError
from digest.store.migrate import upgrade


class StoreBase:
    """Thin, typed access to the database. Every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._settle: Connection | None = None
        self._marked_sent: set[str] = set()

    @classmethod
    def open(cls, path: Path) -> Self:
        """The store in the SQLite file `path`, created (with its folder) if there is none."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store's folder: {exc.strerror}") from None
        return cls.from_url(f"sqlite:///{path}")

    @classmethod
    def from_config(cls, config: StoreConfig) -> Self:
        """The configured store: `url` (PostgreSQL, say) if set, else the SQLite `path`."""
        if not config.url:
            return cls.open(config.path)
        url = sa.engine.make_url(config.url)
        if config.password_env:
            password = os.environ.get(config.password_env, "")
            if not password:
                raise StoreError(
                    f"{url.render_as_string()}: the environment variable "
                    f"{config.password_env} (store.password_env) is not set"
                )
            url = url.set(password=password)
        timeout = config.idle_transaction_timeout_seconds
        if url.get_backend_name() == "postgresql" and timeout > 0:
            return cls.from_url(url, idle_transaction_timeout=timeout)
        return cls.from_url(url)

    @classmethod
    def from_url(cls, url: str | sa.URL, *, idle_transaction_timeout: float = 0) -> Self:
        """A store on `url`; on PostgreSQL, `idle_transaction_timeout` seconds (0: the
        server's setting) is the session's `idle_in_transaction_session_timeout`."""
        connect_args: dict[str, Any] = {}
        if idle_transaction_timeout > 0:
            ms = max(1, round(idle_transaction_timeout * 1000))
            # Added to the URL's own `options` (a search_path, say), which it would replace.
            given = sa.engine.make_url(url).query.get("options", "")
            given = given if isinstance(given, str) else " ".join(given)
            connect_args["options"] = f"{given} -c idle_in_transaction_session_timeout={ms}".strip()
        engine = sa.create_engine(url, connect_args=connect_args)
        # An SQLite file by its path (not in memory, not a `file:` URI): named in errors, and
        # refused when empty, which SQLite would take for a new database and fill silently.
        database = engine.url.database or ""
        file: Path | None = None
        if (
            engine.dialect.name == "sqlite"
            and not engine.url.query.get("uri")
            and database not in ("", ":memory:")
            and not database.startswith("file:")
        ):
            file = Path(database)
            try:
                size: int | None = file.stat().st_size
            except FileNotFoundError:
                size = None  # a new store
            except OSError as exc:
                raise StoreError(f"{file}: cannot open the store: {exc.strerror or exc}") from None
            if size == 0 and file.is_file():
                raise StoreError(
                    f"{file}: the store file is empty (0 bytes); not a digest database. "
                    "Move it away to start a new store"
                )
        where = str(file) if file is not None else str(engine.url)
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
            upgrade(engine)
        except sa.exc.SQLAlchemyError as exc:
            engine.dispose()
            reason = getattr(exc, "orig", None) or exc
            code = getattr(reason, "sqlite_errorcode", 0) & 0xFF  # primary code of an extended one
            if file is not None and code == sqlite3.SQLITE_NOTADB:
                raise StoreError(
                    f"{file}: not a SQLite database (a corrupt file, or one of another kind); "
                    "restore it from a backup, or move it away to start a new store"
                ) from None
            if file is not None and code == sqlite3.SQLITE_CORRUPT:
                raise StoreError(
                    f"{file}: the store file is corrupt ({reason}); restore it from a backup, "
                    "or move it away to start a new store"
                ) from None
            raise StoreError(f"{where}: cannot open the store: {reason}") from None
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
        except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
            # InternalError: PostgreSQL ended the session (idle_in_transaction_session_timeout
            # after the process was frozen inside this transaction, an admin's kill).
            reason = " ".join(str(exc.orig).split())  # libpq's are several lines: one
            raise StoreError(f"{self.engine.url}: {reason}") from None
