"""Planning streams its readers: `Store.recipients_with_history` gives what
`subscribers(active_only=True)` and `readers_digests` give as a list and a dict, one reader at a
time; `Readers` packs a variant's readers and gives them back unchanged; an edition planned
from the store is the one planned from the same readers passed as a list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import Config, load_config
from digest.edition import Readers, ReadersBuilder
from digest.pipeline import plan_edition
from digest.store import DigestRecord, Store, StoredSubscriber, subscribers
from tests.conftest import open_test_store

BOTH = pytest.mark.parametrize("store_backend", ["sqlite", "postgresql"], indirect=True)
NOW = datetime.now(UTC).replace(microsecond=0)


def reader(email: str, themes: tuple[str, ...] = (), name: str = "") -> StoredSubscriber:
    return StoredSubscriber(email, name, themes, "ko", "active")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_test_store(tmp_path)
    yield s
    s.close()


def test_readers_pack_and_give_back_every_subscriber_in_order() -> None:
    subs = [
        StoredSubscriber(f"r{i}@example.com", f"독자 {i}" if i % 3 else "", ("ai",) * (i % 2),
                         "ko" if i % 5 else "en", "active")
        for i in range(2500)
    ]  # fmt: skip
    packed = Readers(subs)
    assert len(packed) == 2500
    assert list(packed) == subs and packed == tuple(subs) and packed == subs
    assert packed[0] == subs[0] and packed[-1] == subs[-1] and packed[1500] == subs[1500]
    assert packed[:10] == tuple(subs[:10]) and packed[2490:3000] == tuple(subs[2490:])
    assert packed[::1000] == tuple(subs[::1000])
    with pytest.raises(IndexError):
        packed[2500]
    assert Readers() == () and len(Readers()) == 0 and Readers() != packed
    # Joined parts read as one sequence, short and packed chunks alike.
    builder = ReadersBuilder()
    for sub in subs[:7]:
        builder.append(sub)
    joined = Readers.join([builder.build(), packed, Readers(subs[:3])])
    assert list(joined) == subs[:7] + subs + subs[:3] and len(joined) == 2510
    assert joined[7 + 2500] == subs[0]


def _insert(store: Store, rows: list[tuple[str, str, list[str]]]) -> None:
    """Rows written as an older store could hold them (several spellings of one address)."""
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        for email, status, themes in rows:
            conn.execute(
                subscribers.insert().values(
                    email=email, name=email[:3], themes=themes, language="ko", status=status,
                    created=now, updated=now,
                )
            )  # fmt: skip


@BOTH
def test_streamed_recipients_are_the_active_subscribers_with_their_history(store: Store) -> None:
    _insert(
        store,
        [
            ("Lee@example.com", "active", []),
            ("lee@example.com", "active", ["ai"]),  # one recipient: the first spelling
            ("Park@example.com", "active", []),
            ("park@example.com", "unsubscribed", []),  # no recipient
            ("JÖRG@example.com", "active", []),
            ("jörg@example.com", "active", []),
            ("user@xn--bcher-kva.example", "active", ["work"]),
            ("User@bücher.example", "active", []),
            ("paused@example.com", "paused", []),
            ("gone@example.com", "active", []),
            ("zed@example.com", "active", ["economy", "ai"]),
            ("Ann@example.com", "active", []),
            ("ann.b@example.com", "active", []),
        ]
        + [(f"reader{i:05d}@example.com", "active", ["policy"]) for i in range(12000)],
    )
    store.suppress("GONE@example.com", "unsubscribed")
    since = NOW - timedelta(days=7)
    old, new, failed = NOW - timedelta(days=9), NOW - timedelta(days=1), NOW - timedelta(hours=1)
    for digest_id, created, who in [
        ("old", old, ["zed@example.com", "Ann@example.com"]),
        ("new", new, ["zed@example.com", "Ann@example.com", "reader00007@example.com",
                      "nobody@example.com", "Lee@example.com"]),
        ("other", new, ["zed@example.com", "reader00007@example.com"]),
        ("failed", failed, ["Ann@example.com"]),
    ]:  # fmt: skip
        rows = [(e, f"<{e}>") for e in who]
        record = DigestRecord(digest_id, digest_id, 1, "", None, digest_id, {}, rows)
        store.record_editions([replace(record, created=created)])
    store.settle_delivery("failed", "Ann@example.com", "failed", "550")
    # Case variants (Ann, ann.b) interleave with the lower-case block in code-point order.
    expected = store.subscribers(active_only=True)
    histories = store.readers_digests(since)
    streamed = list(store.recipients_with_history(since))
    assert [s for s, _ in streamed] == expected
    assert [h for _, h in streamed] == [histories.get(s.email, frozenset()) for s in expected]
    got = dict((s.email, h) for s, h in streamed)
    assert got["zed@example.com"] == {"new", "other"} and got["Ann@example.com"] == {"new"}
    assert got["Lee@example.com"] == {"new"} and "lee@example.com" not in got
    assert got["reader00007@example.com"] is got["zed@example.com"]  # equal sets: one object
    assert "park@example.com" not in got and "Park@example.com" not in got
    assert "gone@example.com" not in got and "paused@example.com" not in got


@BOTH
def test_an_edition_planned_from_the_store_is_the_one_planned_from_the_list(
    config_path: Path,
) -> None:
    from tests.test_variants import add_posts, week_posts

    config: Config = load_config(config_path)
    store = Store.from_config(config.store)
    try:
        add_posts(store, week_posts(NOW))
        themes = [(), ("ai",), ("policy", "ai"), ("economy",), ("unknown",)]  # unknown: all
        store.upsert_subscribers(
            [reader(f"r{i:04d}@example.com", themes[i % 5], f"독자 {i}") for i in range(3000)]
        )
        everyone = store.subscribers(active_only=True)
        listed = plan_edition(config, store, now=NOW, recipients=everyone)
        streamed = plan_edition(config, store, now=NOW)
        assert [v.key for v in streamed.variants] == [v.key for v in listed.variants]
        for a, b in zip(streamed.variants, listed.variants, strict=True):
            assert list(a.recipients) == list(b.recipients) and a.sections == b.sections
        assert list(streamed.quiet) == list(listed.quiet)
        assert streamed.recipients == listed.recipients == 3000
    finally:
        store.close()
