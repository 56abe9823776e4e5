"""Ingest: real feeds from fixture copies into a real SQLite store."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.config import Config, SourceConfig, parse_config
from digest.ingest import SourceReport, content_hash, ingest_all
from digest.sources.feed import read_feed
from digest.store import Store

from .conftest import open_test_store

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
SMALL = FEEDS / "haebom-small.atom"
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
FIRST_GUID = "tag:haebom.example,2024:posts/post-01-martial-law-we-have-power"


def make_config(tmp_path: Path, sources: list[dict[str, Any]]) -> Config:
    data = {
        "site": {"name": "Test", "url": "https://example.com", "sender": "T <t@example.com>"},
        "store": {"path": "db.sqlite3"},
        "sources": sources,
    }
    return parse_config(data, tmp_path / "config.toml")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_test_store(tmp_path)
    yield s
    s.close()


@pytest.fixture
def feed_copy(tmp_path: Path) -> Path:
    path = tmp_path / "feeds" / "haebom.atom"
    path.parent.mkdir()
    shutil.copyfile(SMALL, path)
    return path


def run(config: Config, store: Store, now: datetime = NOW) -> dict[str, SourceReport]:
    return {r.name: r for r in asyncio.run(ingest_all(config, store, now))}


def test_first_and_second_run_counts(tmp_path: Path, store: Store, feed_copy: Path) -> None:
    # relative url: resolved against the config's folder (tmp_path)
    config = make_config(tmp_path, [{"name": "haebom", "url": "feeds/haebom.atom"}])
    first = run(config, store)["haebom"]
    assert (first.new, first.updated, first.unchanged) == (8, 0, 0)
    assert not first.failed and first.problems == ()
    assert store.count_posts() == 8

    second = run(config, store)["haebom"]
    assert (second.new, second.updated, second.unchanged) == (0, 0, 8)
    assert store.count_posts() == 8

    post = store.get_post(f"haebom:{FIRST_GUID}")
    assert post is not None
    assert post.title == "계엄, 우리에겐 힘이 있지"
    assert post.published == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    assert post.tags == ("사회", "정치", "인문학")
    assert (post.reactions, post.comments) == (7, 2)
    # Two paragraphs with a subheading (<h2>) between them: three blocks.
    assert post.text.split("\n\n")[1] == "정보 자본: 현대의 새로운 힘"
    assert post.text.count("\n\n") == 2


def test_edited_post_is_updated_and_keeps_published(
    tmp_path: Path, store: Store, feed_copy: Path
) -> None:
    config = make_config(tmp_path, [{"name": "haebom", "url": str(feed_copy)}])
    run(config, store)
    original = store.get_post(f"haebom:{FIRST_GUID}")
    assert original is not None

    text = feed_copy.read_text(encoding="utf-8")
    old = "개인적으로 교류하는 분 중에 May라는 분이 있다."
    assert text.count(old) == 2  # once in <summary>, once in <content>
    text = text.replace(old, "개인적으로 교류하는 분 중에 June이라는 분이 있다.")
    # the author also moved the publication date; an edit must not make the post "new" again
    text = text.replace(
        "<published>2026-11-20T09:00:00+09:00</published>",
        "<published>2026-11-25T09:00:00+09:00</published>",
        1,
    )
    feed_copy.write_text(text, encoding="utf-8")

    report = run(config, store)["haebom"]
    assert (report.new, report.updated, report.unchanged) == (0, 1, 7)
    edited = store.get_post(f"haebom:{FIRST_GUID}")
    assert edited is not None
    assert "June이라는 분" in edited.text and "May라는" not in edited.text
    assert edited.published == original.published

    again = run(config, store)["haebom"]
    assert (again.new, again.updated, again.unchanged) == (0, 0, 8)


def test_counter_change_is_not_an_edit(tmp_path: Path, store: Store, feed_copy: Path) -> None:
    config = make_config(tmp_path, [{"name": "haebom", "url": str(feed_copy)}])
    run(config, store)
    text = feed_copy.read_text(encoding="utf-8")
    feed_copy.write_text(
        text.replace(
            "<digest:reactions>7</digest:reactions>", "<digest:reactions>70</digest:reactions>", 1
        ),
        encoding="utf-8",
    )
    report = run(config, store)["haebom"]
    assert (report.new, report.updated, report.unchanged) == (0, 0, 8)


def test_content_hash_ignores_dates() -> None:
    from dataclasses import replace

    post = read_feed(SourceConfig("haebom", str(SMALL)), SMALL.read_bytes()).posts[0]
    later = replace(post, published=post.published + timedelta(days=3), reactions=99)
    assert content_hash(post) == content_hash(later)
    assert content_hash(post) != content_hash(replace(post, text=post.text + " 추가"))
    assert content_hash(post) != content_hash(replace(post, tags=(*post.tags, "new")))


def test_failing_source_does_not_stop_others(tmp_path: Path, store: Store, feed_copy: Path) -> None:
    garbage = tmp_path / "garbage.atom"
    garbage.write_bytes(b"\x00\x01 not a feed \xff")
    config = make_config(
        tmp_path,
        [
            {"name": "missing", "url": str(tmp_path / "missing.atom")},
            {"name": "haebom", "url": str(feed_copy)},
            {"name": "garbage", "url": str(garbage)},
        ],
    )
    reports = run(config, store)
    assert list(reports) == ["missing", "haebom", "garbage"]
    assert reports["missing"].failed
    assert "'missing'" in reports["missing"].error and "missing.atom" in reports["missing"].error
    assert reports["garbage"].failed and "not a valid feed" in reports["garbage"].error
    assert not reports["haebom"].failed and reports["haebom"].new == 8
    assert store.count_posts() == 8


def test_broken_feed_reports_problems_and_stores_what_it_read(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, [{"name": "broken", "url": str(FEEDS / "broken.atom")}])
    report = run(config, store)["broken"]
    assert not report.failed
    assert report.new >= 1 and store.count_posts() == report.new
    assert any("malformed" in p for p in report.problems)


def test_replay_puts_newest_post_at_now_and_keeps_the_shift(
    tmp_path: Path, store: Store, feed_copy: Path
) -> None:
    config = make_config(tmp_path, [{"name": "haebom", "url": str(feed_copy), "replay": True}])
    original = read_feed(config.sources[0], feed_copy.read_bytes()).posts
    newest = max(p.published for p in original)

    report = run(config, store, NOW)["haebom"]
    assert report.new == 8
    stored = store.posts_since(NOW - timedelta(days=365), NOW)
    assert len(stored) == 8
    assert stored[0].published == NOW  # newest first
    shift = NOW - newest
    assert store.replay_shift("haebom") == pytest.approx(shift.total_seconds())
    by_guid = {p.guid: p for p in original}
    for post in stored:
        assert post.published == by_guid[post.guid].published + shift  # spacing kept
        assert post.updated == by_guid[post.guid].updated + shift  # type: ignore[operator]

    later = NOW + timedelta(days=3, hours=5)
    report = run(config, store, later)["haebom"]
    assert (report.new, report.updated, report.unchanged) == (0, 0, 8)
    assert store.replay_shift("haebom") == pytest.approx(shift.total_seconds())
    again = store.posts_since(NOW - timedelta(days=365), later)
    assert [p.published for p in again] == [p.published for p in stored]
    assert again[0].published == NOW


def test_replay_new_entry_after_first_ingest_uses_the_same_shift(
    tmp_path: Path, store: Store, feed_copy: Path
) -> None:
    config = make_config(tmp_path, [{"name": "haebom", "url": str(feed_copy), "replay": True}])
    run(config, store, NOW)
    shift = store.replay_shift("haebom")
    assert shift is not None
    # a new entry one hour newer than the previous newest
    text = feed_copy.read_text(encoding="utf-8")
    entry = text[text.index("<entry>") : text.index("</entry>") + len("</entry>")]
    new_entry = (
        entry.replace("post-01-martial-law-we-have-power", "post-00-fresh")
        .replace("2026-11-20T09:00:00+09:00", "2026-11-20T10:00:00+09:00")
        .replace("계엄, 우리에겐 힘이 있지", "새 글")
    )
    feed_copy.write_text(text.replace("<entry>", new_entry + "\n  <entry>", 1), encoding="utf-8")
    report = run(config, store, NOW + timedelta(days=1))["haebom"]
    assert (report.new, report.unchanged) == (1, 8)
    fresh = store.get_post("haebom:tag:haebom.example,2024:posts/post-00-fresh")
    assert fresh is not None
    assert fresh.published == NOW + timedelta(hours=1)
    assert store.replay_shift("haebom") == shift
