"""Schema migrations: a new store is created by them, an older one is upgraded in place, and
they describe exactly the tables the code uses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext

from digest.store import Store
from digest.store.migrate import BASELINE, HEAD, MIGRATIONS
from digest.store.tables import metadata

from .conftest import open_test_store, store_url


def test_a_new_store_is_made_by_the_migrations_and_matches_the_code(tmp_path: Path) -> None:
    store = open_test_store(tmp_path)
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        store.close()
    assert diff == [], diff
    assert version == HEAD


def test_a_store_made_before_migrations_is_upgraded_in_place(tmp_path: Path) -> None:
    url = store_url() or f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = sa.create_engine(url)
    # What every earlier version of digest did: create_all of the baseline schema, no
    # version table.
    with engine.begin() as conn:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, BASELINE)
        conn.execute(sa.text("DROP TABLE alembic_version"))
        conn.execute(
            sa.text(
                "INSERT INTO posts (key, source, guid, url, title, author, published, tags, "
                "text, description, image_alt, content_hash, first_seen, last_seen) VALUES "
                "('blog:g1', 'blog', 'g1', 'https://b.example/1', '제목', '', :t, '[]', "
                "'본문.', '', '', 'h', :t, :t)"
            ),
            {"t": datetime.now(UTC).isoformat(timespec="microseconds")},
        )
    engine.dispose()
    store = Store.from_url(url)
    try:
        assert store.get_post("blog:g1") is not None  # the data is kept
        with store.engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        assert version == HEAD
    finally:
        store.close()
