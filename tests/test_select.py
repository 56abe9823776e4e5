"""Selection: window, already-sent posts, limit, ranking, de-duplication across sections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digest.config import ThemeConfig
from digest.models import Post
from digest.select import Pick, dedupe_sections, rank_key, select_section, variant_key

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WEEK = NOW - timedelta(days=7)
AI = ThemeConfig(key="ai", title={"ko": "인공지능"}, keywords=("인공지능",), threshold=1.0)


def post(
    guid: str,
    *,
    hours_ago: float = 1,
    title: str = "오늘의 글",
    text: str = "인공지능을 쓴다.",
    reactions: int | None = None,
    comments: int | None = None,
) -> Post:
    return Post(
        source="blog",
        guid=guid,
        url=f"https://example.com/{guid}",
        title=title,
        text=text,
        published=NOW - timedelta(hours=hours_ago),
        reactions=reactions,
        comments=comments,
    )


def keys(picks: list[Pick]) -> list[str]:
    return [p.post.guid for p in picks]


def select(posts: list[Post], theme: ThemeConfig | None = AI, **kw: object) -> list[Pick]:
    args: dict = {"since": WEEK, "until": NOW, "already_sent": set(), "max_posts": 10} | kw
    return select_section(posts, theme, **args)


def test_lookback_window_is_half_open() -> None:
    posts = [
        post("inside", hours_ago=24),
        post("too-old", hours_ago=24 * 8),
        post("exactly-since", hours_ago=24 * 7),  # excluded: since < published
        post("exactly-until", hours_ago=0),  # included: published <= until
        post("future", hours_ago=-1),
    ]
    assert sorted(keys(select(posts))) == ["exactly-until", "inside"]


def test_already_sent_posts_are_skipped() -> None:
    posts = [post("a"), post("b"), post("c")]
    picks = select(posts, already_sent={"blog:b", "other:c"})
    assert sorted(keys(picks)) == ["a", "c"]  # keys are source:guid


def test_max_posts_keeps_the_best() -> None:
    posts = [post(f"p{i}", hours_ago=i + 1) for i in range(5)]
    picks = select(posts, max_posts=2)
    assert keys(picks) == ["p0", "p1"]  # equal scores and popularity: newest first


def test_posts_without_the_theme_are_left_out() -> None:
    posts = [post("on", text="인공지능을 쓴다."), post("off", text="오늘은 날씨가 좋다.")]
    picks = select(posts)
    assert keys(picks) == ["on"]
    assert picks[0].score == 1 and picks[0].match is not None
    assert picks[0].match.matched == ("인공지능",)


def test_threshold_applies() -> None:
    strict = ThemeConfig(key="ai", title={"ko": "AI"}, keywords=("인공지능",), threshold=3.0)
    posts = [post("body", text="인공지능을 쓴다."), post("title", title="인공지능 이야기")]
    assert keys(select(posts, strict)) == ["title"]


def test_unthemed_section_takes_everything_by_popularity_then_recency() -> None:
    posts = [
        post("old-popular", hours_ago=50, text="날씨", reactions=5),
        post("new", hours_ago=1, text="날씨"),
        post("older", hours_ago=2, text="날씨"),
    ]
    picks = select(posts, None)
    assert keys(picks) == ["old-popular", "new", "older"]
    assert all(p.score == 0 and p.match is None for p in picks)


def test_ranking_score_then_popularity_then_recency() -> None:
    posts = [
        # score 3 (title hit) beats any popularity
        post("title-hit", hours_ago=100, title="인공지능", text="날씨", reactions=0),
        # score 1 each below: popularity = reactions + comments decides
        post("popular", hours_ago=90, reactions=3, comments=4),
        post("reactions-only", hours_ago=80, reactions=6),
        post("tie-new", hours_ago=5, comments=2),
        post("tie-old", hours_ago=6, reactions=1, comments=1),
        post("none", hours_ago=1),
    ]
    assert keys(select(posts)) == [
        "title-hit",
        "popular",
        "reactions-only",
        "tie-new",
        "tie-old",
        "none",
    ]


def test_rank_key_rounds_scores() -> None:
    base = post("x")
    a = Pick(base, 3.2, None)
    b = Pick(post("y", reactions=10), 2.9, None)
    # 3.2 and 2.9 both round to 3, so popularity decides
    assert sorted([a, b], key=rank_key) == [b, a]
    assert sorted([Pick(base, 4.6, None), b], key=rank_key)[0].score == 4.6


def test_dedupe_puts_a_post_in_its_best_section_only() -> None:
    shared = post("shared")
    only_ai = post("only-ai")
    only_econ = post("only-econ")
    sections = [
        ("ai", [Pick(shared, 2.0, None), Pick(only_ai, 5.0, None)]),
        ("economy", [Pick(only_econ, 1.0, None), Pick(shared, 7.0, None)]),
    ]
    result = dict(dedupe_sections(sections))
    assert keys(result["ai"]) == ["only-ai"]
    assert keys(result["economy"]) == ["only-econ", "shared"]


def test_dedupe_tie_goes_to_the_first_section_and_keeps_order() -> None:
    shared = post("shared")
    sections = [
        ("work", [Pick(post("w"), 1.0, None), Pick(shared, 4.0, None)]),
        ("ai", [Pick(shared, 4.0, None)]),
        ("policy", []),
    ]
    result = dedupe_sections(sections)
    assert [k for k, _ in result] == ["work", "ai", "policy"]
    assert keys(result[0][1]) == ["w", "shared"]
    assert result[1][1] == [] and result[2][1] == []


def test_variant_key_is_order_insensitive() -> None:
    assert variant_key(["economy", "ai"]) == variant_key(["ai", "economy"]) == "ai,economy"
    assert variant_key(["ai", "ai", "work"]) == "ai,work"
    assert variant_key([]) == ""
    assert variant_key(("policy",)) == "policy"
