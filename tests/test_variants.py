"""Planning an edition: one digest per variant (subscribers with the same themes), composed and
rendered once; one section per chosen theme, a post once; quiet subscribers; consecutive weeks.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import digest.store.content
import digest.store.delivery
from digest.compose.render import RenderedDigest, Renderer
from digest.config import Config, load_config
from digest.edition import Edition
from digest.models import Digest, Post
from digest.outbox import MessageFactory, record_edition
from digest.pipeline import plan_edition
from digest.store import Store, StoredSubscriber

THEMES = ("ai", "economy", "humanities", "policy", "work")
TEXT = (
    "이번 글은 주제를 간단히 정리한다. 첫 문단은 배경을 설명한다. "
    "둘째 문단은 사례를 든다. 마지막 문단은 생각을 덧붙인다."
)


class CountingRenderer(Renderer):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, ...]] = []

    def render(self, digest: Digest) -> RenderedDigest:
        self.calls.append(digest.themes)
        return super().render(digest)


def make_post(guid: str, title: str, published: datetime, **kw: object) -> Post:
    return Post(
        source="blog",
        guid=guid,
        url=f"https://blog.example/{guid}",
        title=title,
        text=f"{title}. {TEXT}",
        published=published,
        language="ko",
        **kw,  # type: ignore[arg-type]
    )


def add_posts(store: Store, posts: list[Post]) -> None:
    store.upsert_posts([(p, hashlib.sha256(p.title.encode()).hexdigest()) for p in posts])


def sub(n: int, themes: tuple[str, ...]) -> StoredSubscriber:
    return StoredSubscriber(f"reader{n}@example.com", "", themes, "ko", "active")


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path)


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    s = Store.from_config(config.store)
    yield s
    s.close()


NOW = datetime.now(UTC).replace(microsecond=0)


def week_posts(now: datetime) -> list[Post]:
    """One post for each theme, and one that is both AI and policy (better policy)."""
    at = [now - timedelta(hours=h) for h in range(1, 10)]
    return [
        make_post("ai", "인공지능 이야기", at[0]),
        make_post("economy", "투자와 금리", at[1]),
        make_post("humanities", "철학 산책", at[2]),
        make_post("policy", "정부 정책", at[3]),
        make_post("work", "스타트업 제품", at[4]),
        make_post("ai-policy", "인공지능 규제 법안", at[5]),
        make_post("plain", "오늘의 날씨", at[6]),  # no theme: only for "everything"
    ]


def guids(edition: Edition, key: str) -> dict[str, list[str]]:
    (variant,) = [v for v in edition.variants if v.key == key]
    return {s.key: [i.post.guid for i in s.items] for s in variant.digest.sections}


def test_100000_subscribers_with_20_choices_compose_20_digests(
    config: Config, store: Store
) -> None:
    add_posts(store, week_posts(NOW))
    subsets = [c for r in range(len(THEMES) + 1) for c in itertools.combinations(THEMES, r)]
    choices = subsets[:20]  # includes () = everything
    rng = random.Random(7)
    subscribers = []
    for n in range(100_000):
        chosen = list(choices[n % 20])
        rng.shuffle(chosen)  # the order a subscriber lists themes in does not matter
        subscribers.append(sub(n, tuple(chosen)))
    renderer = CountingRenderer()
    started = time.perf_counter()
    edition = plan_edition(config, store, now=NOW, recipients=subscribers, renderer=renderer)
    elapsed = time.perf_counter() - started

    assert len(renderer.calls) == 20
    assert len(edition.variants) == 20
    assert len({v.digest.id for v in edition.variants}) == 20
    assert sorted(len(v.recipients) for v in edition.variants) == [5000] * 20
    assert edition.recipients == 100_000 and edition.quiet == ()
    assert {v.key for v in edition.variants} == {",".join(sorted(c)) for c in choices}
    assert elapsed < 30, f"planning took {elapsed:.1f}s"


def test_one_section_per_chosen_theme_and_a_post_once(config: Config, store: Store) -> None:
    add_posts(store, week_posts(NOW))
    subs = [
        sub(1, ("policy", "ai")),
        sub(2, ("ai",)),
        sub(3, ()),
        sub(4, ("ai", "policy")),
    ]
    edition = plan_edition(config, store, now=NOW, recipients=subs, renderer=CountingRenderer())
    assert len(edition.variants) == 3
    # sections in the config's theme order; the AI-and-policy post only in its better section
    # (both score 8 for policy, so the newer comes first; the shared post scores 4 for AI)
    assert guids(edition, "ai,policy") == {"ai": ["ai"], "policy": ["policy", "ai-policy"]}
    assert guids(edition, "ai") == {"ai": ["ai", "ai-policy"]}  # equal scores: newest first
    everything = guids(edition, "")
    assert list(everything) == ["all"] and len(everything["all"]) == 7
    (both,) = [v for v in edition.variants if v.key == "ai,policy"]
    assert {s.email for s in both.recipients} == {"reader1@example.com", "reader4@example.com"}
    assert both.sections == {"ai": ["blog:ai"], "policy": ["blog:policy", "blog:ai-policy"]}


def test_nothing_new_for_a_subscribers_themes_sends_them_nothing(
    config: Config, store: Store
) -> None:
    add_posts(store, [make_post("ai", "인공지능 이야기", NOW - timedelta(hours=2))])
    subs = [sub(1, ("work",)), sub(2, ("ai", "work")), sub(3, ("humanities", "work"))]
    renderer = CountingRenderer()
    edition = plan_edition(config, store, now=NOW, recipients=subs, renderer=renderer)
    assert [v.key for v in edition.variants] == ["ai,work"]
    assert guids(edition, "ai,work") == {"ai": ["ai"]}  # no empty work section
    assert {s.email for s in edition.quiet} == {"reader1@example.com", "reader3@example.com"}
    assert len(renderer.calls) == 1  # nothing composed or rendered for the quiet ones


class Clock:
    """Stands in for `datetime` in the store, which stamps a digest when it is recorded."""

    now = NOW

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> type[Clock]:
        cls.now = NOW

        class FakeDatetime(datetime):
            @classmethod
            def now(cls_, tz: object = None) -> FakeDatetime:  # type: ignore[override]
                return cls.now  # type: ignore[return-value]

        for module in (digest.store.content, digest.store.delivery):
            monkeypatch.setattr(module, "datetime", FakeDatetime)
        return cls


def test_consecutive_weeks_never_repeat_and_respect_lookback_and_max_posts(
    config: Config, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock.install(monkeypatch)
    config = replace(config, selection=replace(config.selection, max_posts=2))
    factory = MessageFactory(config)
    readers = [sub(1, ("ai",)), sub(2, ())]
    week1 = NOW
    add_posts(
        store,
        [
            make_post("old", "인공지능 옛날 이야기", week1 - timedelta(days=10)),  # beyond lookback
            make_post("w1-a", "인공지능 하나", week1 - timedelta(days=1), reactions=9),
            make_post("w1-b", "인공지능 둘", week1 - timedelta(days=2), comments=5),
            make_post("w1-c", "인공지능 셋", week1 - timedelta(days=3)),  # third: over max_posts
        ],
    )
    clock.now = week1
    first = plan_edition(config, store, now=week1, recipients=readers)
    assert guids(first, "ai") == {"ai": ["w1-a", "w1-b"]}  # popularity, then max_posts
    assert guids(first, "") == {"all": ["w1-a", "w1-b"]}
    record_edition(first, factory, store)

    week2 = week1 + timedelta(days=7)
    add_posts(
        store,
        [
            make_post("w2-a", "인공지능 넷", week2 - timedelta(days=1)),
            make_post("w2-b", "인공지능 다섯", week2 - timedelta(days=2)),
            make_post("w2-c", "인공지능 여섯", week2 - timedelta(days=3)),
        ],
    )
    clock.now = week2
    second = plan_edition(config, store, now=week2, recipients=readers)
    assert second.issue_number == first.issue_number + 1
    assert guids(second, "ai") == {"ai": ["w2-a", "w2-b"]}  # newest first at equal score
    assert guids(second, "") == {"all": ["w2-a", "w2-b"]}
    record_edition(second, factory, store)

    # week 3: nothing published since week 2's digest; w2-c and w1-c are never carried over
    clock.now = week2 + timedelta(days=7)
    third = plan_edition(config, store, now=clock.now, recipients=readers)
    assert third.variants == () and len(third.quiet) == 2
    history = store.digest_history(clock.now - timedelta(days=30))
    sent = set().union(*(d.post_keys for d in history.values()))
    assert sent == {"blog:w1-a", "blog:w1-b", "blog:w2-a", "blog:w2-b"}


def test_a_themed_send_goes_to_those_who_chose_it_or_everything(
    config: Config, store: Store
) -> None:
    add_posts(store, week_posts(NOW))
    subs = [sub(1, ("ai",)), sub(2, ()), sub(3, ("work",)), sub(4, ("ai", "work"))]
    renderer = CountingRenderer()
    edition = plan_edition(config, store, now=NOW, theme="ai", recipients=subs, renderer=renderer)
    (variant,) = edition.variants
    assert len(renderer.calls) == 1
    assert {s.email for s in variant.recipients} == {
        "reader1@example.com",
        "reader2@example.com",
        "reader4@example.com",
    }
    assert guids(edition, "ai") == {"ai": ["ai", "ai-policy"]}  # equal scores: newest first
