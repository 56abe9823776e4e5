"""Alembic's environment for digest's store: run in-process by `digest.store.migrate`, on the
connection it is handed (never from alembic.ini)."""

from __future__ import annotations

from alembic import context

from digest.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
