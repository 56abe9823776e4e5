"""Schema migrations (Alembic), run when a store is opened: an upgrade of digest never needs a
fresh database.

`digest/store/migrations/versions/` holds one revision per schema change; `HEAD` names the
newest. A store created before migrations existed (tables, no `alembic_version`) is stamped
with the baseline first. A store already at `HEAD` costs one SELECT.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Connection, Engine

HEAD = "0003c"
BASELINE = "0001"
MIGRATIONS = Path(__file__).with_name("migrations")


def _current(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Bring the store's schema to `HEAD`, in one transaction."""
    with engine.connect() as conn:
        if _current(conn) == HEAD:
            return
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One process migrates; the others wait here, then find the schema current.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7245004)"))
        current = _current(conn)
        if current == HEAD:
            return
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        if current is None and sa.inspect(conn).has_table("posts"):
            command.stamp(config, BASELINE)  # made by create_all, before migrations
        command.upgrade(config, "head")
