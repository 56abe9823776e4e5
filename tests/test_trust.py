"""Posts never lost, never repeated; editions recorded whole or not at all.

"New" is per reader: a post goes to a reader who was not sent it yet, if it arrived (was
published, or first seen if later) after the last digest of that section the reader got,
within `lookback_days`. Each case here failed before that rule.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.config import Config, load_config
from digest.edition import Edition
from digest.models import Post
from digest.outbox import MessageFactory, record_edition
from digest.pipeline import plan_edition
from digest.store import Store, StoredSubscriber

from .conftest import ROOT

TEXT = (
    "이번 글은 주제를 간단히 정리한다. 첫 문단은 배경을 설명한다. "
    "둘째 문단은 사례를 든다. 마지막 문단은 생각을 덧붙인다."
)
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


def post(guid: str, title: str, published: datetime, text: str = TEXT) -> Post:
    return Post(
        source="blog",
        guid=guid,
        url=f"https://blog.example/{guid}",
        title=title,
        text=f"{title}. {text}",
        published=published,
        language="ko",
    )


def arrive(store: Store, posts: list[Post], at: datetime) -> None:
    """Ingest `posts` at `at` (their first sighting)."""
    store.upsert_posts(
        [(p, hashlib.sha256((p.title + p.text).encode()).hexdigest()) for p in posts], at
    )


def reader(n: int, themes: tuple[str, ...] = ()) -> StoredSubscriber:
    return StoredSubscriber(f"reader{n}@example.com", "", themes, "ko", "active")


def keys(edition: Edition, email: str) -> list[str]:
    """The post guids `email` gets in `edition`, in order."""
    for variant in edition.variants:
        if any(s.email == email for s in variant.recipients):
            return [i.post.guid for s in variant.digest.sections for i in s.items]
    return []


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path)


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    s = Store.from_config(config.store)
    yield s
    s.close()


def send(config: Config, store: Store, now: datetime, readers: list[StoredSubscriber], **kw: str):  # type: ignore[no-untyped-def]
    edition = plan_edition(config, store, now=now, recipients=readers, **kw)  # type: ignore[arg-type]
    record_edition(edition, MessageFactory(config), store)
    return edition


def test_a_post_that_arrives_after_the_digest_goes_out_in_the_next_one(
    config: Config, store: Store
) -> None:
    readers = [reader(1)]
    arrive(store, [post("a", "인공지능 하나", T0 - timedelta(days=1))], T0 - timedelta(hours=1))
    first = send(config, store, T0, readers)
    assert keys(first, "reader1@example.com") == ["a"]
    # Published before the first digest, seen only after it: a late feed, a source that
    # failed last week, a backdated post.
    late = post("late", "늦게 도착한 글", T0 - timedelta(days=2))
    arrive(store, [late], T0 + timedelta(days=1))
    second = send(config, store, T0 + timedelta(days=7), readers)
    assert keys(second, "reader1@example.com") == ["late"]
    # And never again.
    third = plan_edition(config, store, now=T0 + timedelta(days=8), recipients=readers)
    assert third.variants == ()


def test_a_themed_send_then_the_regular_run_never_repeats_a_post(
    config: Config, store: Store
) -> None:
    everything, ai_only = reader(1), reader(2, ("ai",))
    arrive(
        store,
        [
            post("ai-1", "인공지능 모델 이야기", T0 - timedelta(hours=3)),
            post("ai-2", "머신러닝과 인공지능", T0 - timedelta(hours=4)),
            post("plain", "오늘의 날씨", T0 - timedelta(hours=5)),
        ],
        T0 - timedelta(hours=2),
    )
    themed = send(config, store, T0, [everything, ai_only], theme="ai")
    sent_ai = keys(themed, everything.email)
    assert sent_ai and set(sent_ai) <= {"ai-1", "ai-2"}
    assert keys(themed, ai_only.email) == sent_ai
    # Minutes later, the regular digest: the reader who chose everything gets what the
    # themed send did not carry, and nothing twice; the AI reader has nothing new.
    regular = send(config, store, T0 + timedelta(minutes=5), [everything, ai_only])
    got = keys(regular, everything.email)
    assert "plain" in got and not set(got) & set(sent_ai)
    assert ai_only.email in {s.email for s in regular.quiet}


def test_issue_numbers_are_per_list(config: Config, store: Store) -> None:
    arrive(store, [post("ai-1", "인공지능 모델 이야기", T0 - timedelta(hours=3))], T0)
    themed = send(config, store, T0 + timedelta(minutes=1), [reader(1)], theme="ai")
    assert themed.issue_number == 1
    assert "#1" in themed.variants[0].digest.subject
    arrive(store, [post("plain", "오늘의 날씨", T0 + timedelta(hours=1))], T0 + timedelta(hours=1))
    regular = send(config, store, T0 + timedelta(hours=2), [reader(1), reader(2)])
    # The regular series starts at #1, whatever themed sends went before; every variant
    # carries the edition's number.
    assert regular.issue_number == 1
    assert all("#1 " in v.digest.subject for v in regular.variants)
    arrive(store, [post("next", "다음 주의 글", T0 + timedelta(days=6))], T0 + timedelta(days=6))
    assert send(config, store, T0 + timedelta(days=7), [reader(1)]).issue_number == 2
    arrive(store, [post("ai-2", "인공지능 규제", T0 + timedelta(days=8))], T0 + timedelta(days=8))
    assert send(config, store, T0 + timedelta(days=9), [reader(1)], theme="ai").issue_number == 2


def test_an_edited_post_is_not_resent(config: Config, store: Store) -> None:
    original = post("a", "인공지능 하나", T0 - timedelta(hours=5))
    arrive(store, [original], T0 - timedelta(hours=4))
    send(config, store, T0, [reader(1)])
    edited = post("a", "인공지능 하나 (고침)", T0 - timedelta(hours=5), text=TEXT + " 덧붙임.")
    arrive(store, [edited], T0 + timedelta(days=1))  # the same guid, new content
    later = plan_edition(config, store, now=T0 + timedelta(days=7), recipients=[reader(1)])
    assert later.variants == ()


def test_a_new_reader_gets_the_lookback_and_old_readers_only_what_they_lack(
    config: Config, store: Store
) -> None:
    arrive(store, [post("a", "인공지능 하나", T0 - timedelta(hours=5))], T0 - timedelta(hours=4))
    send(config, store, T0, [reader(1)])
    arrive(store, [post("b", "오늘의 날씨", T0 + timedelta(days=2))], T0 + timedelta(days=2))
    edition = send(config, store, T0 + timedelta(days=3), [reader(1), reader(2)])
    assert keys(edition, reader(1).email) == ["b"]
    assert keys(edition, reader(2).email) == ["b", "a"]  # joined since: a is within the lookback
    assert len(edition.variants) == 2
    assert len({v.digest.id for v in edition.variants}) == 2


def test_a_failed_delivery_does_not_count_as_received(config: Config, store: Store) -> None:
    arrive(store, [post("a", "인공지능 하나", T0 - timedelta(hours=5))], T0 - timedelta(hours=4))
    first = send(config, store, T0, [reader(1)])
    store.settle_delivery(first.variants[0].digest.id, reader(1).email, "failed", "550 no")
    again = plan_edition(config, store, now=T0 + timedelta(days=1), recipients=[reader(1)])
    assert keys(again, reader(1).email) == ["a"]


# -- editions: recorded whole, or not at all -------------------------------------------------

CRASH_WHILE_RECORDING = """
import os, sys
from datetime import UTC, datetime
import sqlalchemy.engine.base as base

from digest.config import load_config
from digest.outbox import MessageFactory, record_edition
from digest.pipeline import plan_edition
from digest.store import Store, StoredSubscriber

config = load_config(sys.argv[1])
store = Store.from_config(config.store)
readers = [
    StoredSubscriber(f"r{n}@example.com", "", (("ai",), ())[n % 2], "ko", "active")
    for n in range(3000)
]
edition = plan_edition(config, store, now=datetime.now(UTC), recipients=readers)
assert len(edition.variants) == 2, edition.variants
execute = base.Connection.execute
digests_written = 0

def crash_on_second_digest(self, statement, *args, **kw):
    global digests_written
    if getattr(statement, "table", None) is not None and statement.table.name == "digests":
        digests_written += 1
        if digests_written == 2:
            os._exit(9)  # killed: nothing after this line runs
    return execute(self, statement, *args, **kw)

base.Connection.execute = crash_on_second_digest
record_edition(edition, MessageFactory(config), store)
print("not killed")
"""


def test_a_crash_while_an_edition_is_recorded_leaves_nothing(
    config_path: Path, config: Config, store: Store, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    arrive(
        store,
        [
            post("ai-1", "인공지능 모델 이야기", now - timedelta(hours=3)),
            post("plain", "오늘의 날씨", now - timedelta(hours=4)),
        ],
        now - timedelta(hours=2),
    )
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(CRASH_WHILE_RECORDING), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(config_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 9, done.stdout + done.stderr
    # The first variant (1,500 readers) is not there alone: nothing is, so the next run plans
    # the same posts for all 3,000.
    assert store.delivery_counts() == {}
    assert store.latest_edition() is None
    again = plan_edition(
        config,
        store,
        now=datetime.now(UTC),
        recipients=[reader(1), reader(2, ("ai",))],
    )
    assert keys(again, reader(1).email) and keys(again, reader(2).email) == ["ai-1"]


def test_the_cli_never_repeats_a_post_after_a_themed_send(config_path: Path) -> None:
    def cli(*args: str) -> str:
        result = CliRunner().invoke(main, ["--config", str(config_path), *args])
        assert result.exit_code == 0, result.output
        return result.output

    cli("ingest")
    cli("send", "--dry-run")
    out = cli("send", "--theme", "ai")
    assert "ai issue #1" in out or "issue #1" in out
    regular = cli("send")
    assert "issue #1" in regular  # the regular series starts at #1
    config = load_config(config_path)
    store = Store.from_config(config.store)
    try:
        history = store.digest_history(datetime(2000, 1, 1, tzinfo=UTC))
        per_reader: dict[str, list[str]] = {}
        for email, ids in store.readers_digests(datetime(2000, 1, 1, tzinfo=UTC)).items():
            for digest_id in ids:
                per_reader.setdefault(email, []).extend(history[digest_id].post_keys)
    finally:
        store.close()
    assert per_reader
    for email, got in per_reader.items():
        assert len(got) == len(set(got)), f"{email} got a post twice: {sorted(got)}"
