"""Theme matching with the real Kiwi analyzer: Korean morphemes, English stems, weights."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.config import ThemeConfig, load_config
from digest.models import Post
from digest.sources.feed import read_feed
from digest.store import Store
from digest.themes import (
    BODY_CAP,
    TAG_WEIGHT,
    TITLE_WEIGHT,
    analysis_key,
    find_post,
    format_post_report,
    format_theme_report,
    match_theme,
    post_report,
    post_themes,
    short_id,
    theme_report,
    tokens,
)
from tests.conftest import write_config

REPO = Path(__file__).resolve().parent.parent


def post(title: str = "제목", text: str = "", tags: tuple[str, ...] = ()) -> Post:
    return Post(
        source="t",
        guid=title + text,
        url="https://example.com/p",
        title=title,
        text=text,
        published=datetime(2026, 1, 1, tzinfo=UTC),
        tags=tags,
    )


def theme(*keywords: str, **kw: object) -> ThemeConfig:
    return ThemeConfig(key=str(kw.pop("key", "t")), title={"ko": "테마"}, keywords=keywords, **kw)  # type: ignore[arg-type]


def body_score(text: str, keyword: str) -> float:
    return match_theme(post("무관한 제목", text), theme(keyword)).score


# -- Korean ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["인공지능은 빠르게 발전한다.", "우리는 인공지능을 쓴다.", "인공지능의 미래를 본다."],
)
def test_korean_keyword_matches_inflected_forms(text: str) -> None:
    assert body_score(text, "인공지능") == 1


@pytest.mark.parametrize("text", ["장기적으로 투자하는 사람이 많다.", "그는 투자를 늘렸다."])
def test_투자_matches_verb_and_object_forms(text: str) -> None:
    assert body_score(text, "투자") == 1


def test_a_longer_word_kiwi_keeps_whole_is_not_a_match() -> None:
    # Kiwi keeps 투자자 ("investor") and 자본주의 ("capitalism") as their own nouns.
    assert tokens("투자자가 많다") == ("투자자", "많다")
    assert body_score("투자자가 많다.", "투자") == 0
    assert body_score("투자자들이 모였다.", "투자") == 0
    assert body_score("자본주의는 변한다.", "자본") == 0
    assert body_score("투자자가 투자를 했다.", "투자") == 1


def test_compound_written_together_is_not_its_parts() -> None:
    # 비상계엄 / 계엄령 are single Kiwi nouns: the keyword 계엄 does not find them.
    assert body_score("비상계엄을 선포했다.", "계엄") == 0
    assert body_score("계엄령이 내려졌다.", "계엄") == 0
    assert body_score("계엄을 선포했다.", "계엄") == 1


def test_letters_inside_another_word_do_not_match() -> None:
    # a substring search would find 문학 inside 인문학; morphemes do not
    assert body_score("인문학을 좋아한다.", "문학") == 0
    assert body_score("문학을 좋아한다.", "문학") == 1
    assert body_score("문학을 좋아한다.", "인문학") == 0


# -- English --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Agents are everywhere now.", 1),
        ("The agent's memory is short.", 1),
        ("An AGENT acts.", 1),
        ("The agency hired more staff.", 0),
        ("Reagents in chemistry.", 0),
    ],
)
def test_english_whole_word_and_inflection(text: str, expected: int) -> None:
    assert body_score(text, "agent") == expected


def test_english_inside_korean_text() -> None:
    assert body_score("요즘 AI가 화제다. AI를 쓰면 편하다.", "AI") == 2
    assert body_score("에이전트가 일을 한다.", "에이전트") == 1
    assert body_score("AI PC는 새롭다", "AI PC") == 1
    assert body_score("PC와 AI", "AI PC") == 0  # a phrase needs its tokens in order


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Machine learning is old.", 1),
        ("Two machine-learning models.", 1),
        ("Machine Learnings.", 1),  # the plural of the last word
        ("Learning about machines.", 0),  # the words, but not in order
    ],
)
def test_english_phrases(text: str, expected: int) -> None:
    assert body_score(text, "machine learning") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("생성형 AI를 쓴다.", 1),
        ("생성형 AI가 바꾼 일.", 1),
        ("AI가 생성형이다.", 0),
        ("생성형 인공지능을 쓴다.", 0),  # another phrase
    ],
)
def test_korean_english_mixed_phrases(text: str, expected: int) -> None:
    assert body_score(text, "생성형 AI") == expected


def test_korean_phrase_with_particles() -> None:
    assert body_score("기본 소득을 실험했다.", "기본 소득") == 1
    assert body_score("소득 기본을 말했다.", "기본 소득") == 0


@pytest.mark.parametrize(
    ("keyword", "text"),
    [
        ("policy", "New policies arrived."),
        ("regulation", "Regulations, again."),
        ("model", "Large language models."),
        ("company", "Two companies merged."),
    ],
)
def test_english_plurals(keyword: str, text: str) -> None:
    assert body_score(text, keyword) == 1


# -- scoring --------------------------------------------------------------------------------


def test_title_hits_weigh_more_than_body_hits() -> None:
    t = theme("인공지능")
    in_title = match_theme(post("인공지능의 미래", "오늘은 날씨가 좋다."), t)
    in_body = match_theme(post("오늘의 생각", "인공지능의 미래를 생각한다."), t)
    assert in_title.score == TITLE_WEIGHT
    assert in_body.score == 1
    assert in_title.matched == in_body.matched == ("인공지능",)


def test_body_hits_are_capped_per_keyword() -> None:
    text = " ".join(["인공지능을 쓴다."] * 10)
    assert body_score(text, "인공지능") == BODY_CAP


def test_tags_count_case_insensitively() -> None:
    t = theme("블록체인", tags=("AI", "인공지능"))
    m = match_theme(post("오늘", "날씨", tags=("ai", "잡담")), t)
    assert m.score == TAG_WEIGHT
    assert m.matched == ("#ai",)
    assert not match_theme(post("오늘", "날씨", tags=("잡담",)), t)


def test_scores_add_up() -> None:
    t = theme("인공지능", "AI", tags=("기술",))
    p = post("인공지능 이야기", "AI를 쓴다. 인공지능은 좋다.", tags=("기술",))
    m = match_theme(p, t)
    assert m.score == TITLE_WEIGHT + 1 + 1 + TAG_WEIGHT
    assert m.matched == ("인공지능", "AI", "#기술")


def test_exclude_keyword_zeroes_the_score() -> None:
    t = theme("인공지능", tags=("AI",), exclude=("광고",))
    p = post("인공지능 신제품", "광고입니다. 인공지능을 써 보세요.", tags=("AI",))
    m = match_theme(p, t)
    assert m.score == 0 and m.matched == () and not m
    assert match_theme(replace(p, text="인공지능을 써 보세요."), t).score > 0
    assert match_theme(replace(p, title="광고: 인공지능", text=""), t).score == 0


def test_threshold_and_order_in_post_themes() -> None:
    ai = theme("인공지능", key="ai", threshold=3.0)
    econ = theme("투자", key="economy", threshold=1.0)
    p = post("투자 이야기", "인공지능 투자를 했다.")
    # ai: one body hit (1) < 3; economy: title 3 + body 1 = 4
    assert [m.theme for m in post_themes(p, [ai, econ])] == ["economy"]
    p2 = post("인공지능과 투자", "인공지능")
    assert [m.theme for m in post_themes(p2, [econ, ai])] == ["ai", "economy"]
    assert post_themes(post("날씨", "맑음"), [ai, econ]) == []


# -- the sample blog with the sample config -------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> tuple[dict[str, Post], dict[str, ThemeConfig]]:
    config = load_config(REPO / "config.toml")
    src = config.sources[0]
    result = read_feed(src, Path(src.url).read_bytes())
    assert len(result.posts) == 35 and result.problems == ()
    return {p.title: p for p in result.posts}, {t.key: t for t in config.themes}


def themes_of(sample: tuple[dict[str, Post], dict[str, ThemeConfig]], title: str) -> set[str]:
    posts, themes = sample
    return {m.theme for m in post_themes(posts[title], list(themes.values()))}


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ('"국내 최초의 인공지능 기본법"의 매력', {"ai", "policy"}),
        ("인공지능을 인용할 때는 Prompt를 함께 첨부하기", {"ai", "policy"}),
        ("AI 에이전트의 협업과 오케스트레이션", {"ai"}),
        ('"프롬프트 엔지니어링" 그래서 필요해요?', {"ai"}),
        ("투자 전략 정리", {"economy"}),
        ("탐욕자와 위선자의 대결", {"economy"}),
        ("애자일(Agile) : 우리가 실패하는 이유", {"work"}),
        ("당신이 SaaS 제품을 만든다면...", {"work"}),
        ('우리가 "통 속의 뇌"라면?', {"humanities"}),
        ("계엄, 우리에겐 힘이 있지", {"policy", "humanities"}),
    ],
)
def test_sample_posts_get_their_obvious_themes(
    sample: tuple[dict[str, Post], dict[str, ThemeConfig]], title: str, expected: set[str]
) -> None:
    assert expected <= themes_of(sample, title)


def test_sample_ai_basic_act_ranks_ai_first(
    sample: tuple[dict[str, Post], dict[str, ThemeConfig]],
) -> None:
    posts, themes = sample
    matches = post_themes(posts['"국내 최초의 인공지능 기본법"의 매력'], list(themes.values()))
    assert [m.theme for m in matches] == ["ai", "policy"]


def test_sample_martial_law_post_is_not_ai(
    sample: tuple[dict[str, Post], dict[str, ThemeConfig]],
) -> None:
    assert "ai" not in themes_of(sample, "계엄, 우리에겐 힘이 있지")


def test_sample_investment_post_is_not_work(
    sample: tuple[dict[str, Post], dict[str, ThemeConfig]],
) -> None:
    assert "work" not in themes_of(sample, "투자 전략 정리")


def test_sample_config_themes(
    sample: tuple[dict[str, Post], dict[str, ThemeConfig]],
) -> None:
    posts, fixed = sample

    def of(title: str) -> set[str]:
        return {m.theme for m in post_themes(posts[title], list(fixed.values()))}

    assert of("계엄, 우리에겐 힘이 있지") == {"policy", "humanities"}
    assert of("투자 전략 정리") == {"economy"}
    assert of('"국내 최초의 인공지능 기본법"의 매력') == {"ai", "policy"}
    assert "ai" not in of("다른 회사, 같은 문제")
    assert "ai" not in of("Producer의 시대가 온다.")
    assert "policy" in of("탐욕자와 위선자의 대결")
    assert "economy" in of("기본소득을 3년 동안 3,000명에게 실험해 보았다.")
    assert "economy" in of("누가 데이터 센터를 만드는가?")
    assert "ai" in of("??? : 메타나 오픈에이아이 처럼 멀티 모달하자")


def test_every_sample_post_tokenizes(
    sample: tuple[dict[str, Post], dict[str, ThemeConfig]],
) -> None:
    posts, _ = sample
    for p in posts.values():
        assert tokens(p.title), p.title
        assert len(tokens(p.text)) > 20, p.title


# -- `digest themes`: the report ------------------------------------------------------------


def test_hits_say_where_and_how_much() -> None:
    t = theme("인공지능", "AI", tags=("기술",))
    text = " ".join(["인공지능을 쓴다."] * 5)
    m = match_theme(post("인공지능 이야기", text, tags=("기술",)), t)
    assert [(h.word, h.title, h.body, h.points) for h in m.hits] == [
        ("인공지능", 1, 5, TITLE_WEIGHT + BODY_CAP),
        ("#기술", 0, 0, TAG_WEIGHT),
    ]
    assert m.score == sum(h.points for h in m.hits)
    assert m.hits[0].describe() == "인공지능 (title x1, body x5) +6"
    assert m.hits[1].describe() == "#기술 +3"


def test_excluded_word_is_reported() -> None:
    t = theme("인공지능", exclude=("광고",))
    m = match_theme(post("인공지능 광고", ""), t)
    assert m.score == 0 and m.excluded == "광고"


def test_short_ids_are_stable_and_findable() -> None:
    a, b = post("하나", "x"), post("둘", "y")
    assert short_id(a) == short_id(post("하나", "x")) and len(short_id(a)) == 8
    assert short_id(a) != short_id(b)
    assert find_post([a, b], short_id(b)) is b
    assert find_post([a, b], short_id(b)[:5]) is b
    assert find_post([a, b], a.key) is a
    assert find_post([a, b], "zzzzzzzz") is None
    assert find_post([a, b], short_id(b)[:2]) is None  # too short to be a prefix


def test_theme_report_lists_taken_posts_best_first() -> None:
    ai = theme("인공지능", key="ai", threshold=3.0)
    work = theme("업무", key="work")
    posts = [
        post("인공지능 이야기", "인공지능을 쓴다."),
        post("오늘", "인공지능을 쓴다."),  # 1 < threshold 3: not taken
        post("인공지능과 인공지능", ""),
    ]
    report = theme_report(posts, [ai, work])
    assert [t.theme.key for t in report] == ["ai", "work"]
    assert [(p.title, m.score) for p, m in report[0].posts] == [
        ("인공지능과 인공지능", 6.0),
        ("인공지능 이야기", 4.0),
    ]
    assert report[1].posts == ()
    lines = format_theme_report(report, "ko")
    assert lines[0] == "ai · 테마 (threshold 3): 2 post(s)"
    assert short_id(posts[2]) in lines[1] and "인공지능과 인공지능" in lines[1]
    assert "인공지능 (title x2) +6" in lines[2]
    assert lines[-1] == "work · 테마 (threshold 1): 0 post(s)"


def test_post_report_shows_every_theme() -> None:
    ai = theme("인공지능", key="ai", threshold=3.0)
    econ = theme("투자", key="economy", exclude=("광고",))
    p = post("인공지능", "투자 광고")
    matches = post_report(p, [econ, ai])
    assert [(t.key, m.score) for t, m in matches] == [("ai", 3.0), ("economy", 0.0)]
    text = "\n".join(format_post_report(p, matches, "ko"))
    assert "ai · 테마: score 3 (threshold 3) → takes it" in text
    assert "economy · 테마: score 0 (threshold 1) → no" in text
    assert "excluded by '광고'" in text


def test_analyses_in_one_batch_match_one_by_one(
    sample: tuple[dict[str, Post], dict[str, ThemeConfig]],
) -> None:
    """The stored analyses (made in one Kiwi batch) are the ones matching would make."""
    from digest.themes import _analysed, tokens_many

    posts = list(sample[0].values())[:12]
    texts = [p.title for p in posts] + [p.text for p in posts]
    texts += ["AI 에이전트와 models. 인공지능은", "Agents are coming.", "투자하는 투자자"]
    assert tokens_many(texts) == [_analysed(t) for t in texts]


def test_a_planner_finds_prepared_analyses_and_never_loads_kiwi(tmp_path: Path) -> None:
    """`digest ingest` stores theme matching's analyses and the summaries; a later send in a
    fresh process plans from them without loading Kiwi's model, and matches the same."""
    config = write_config(tmp_path)
    result = CliRunner().invoke(main, ["--config", str(config), "ingest"])
    assert result.exit_code == 0, result.output
    script = (
        "import sys\n"
        "from digest.cli import main\n"
        "from digest.text.kiwi import get_kiwi\n"
        "try:\n"
        f"    main(['--config', {str(config)!r}, 'send', '--dry-run'], standalone_mode=False)\n"
        "finally:\n"
        "    print('KIWI LOADED', get_kiwi.cache_info().currsize)\n"
    )
    env = {
        **os.environ,
        "DIGEST_TEST_SECRET": os.environ.get("DIGEST_TEST_SECRET", "s" * 32),
        "PYTHONPATH": str(REPO),
    }
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "KIWI LOADED 0" in run.stdout, run.stdout + run.stderr
    planned = re.search(r"(\d+) message", run.stdout)
    assert planned and int(planned.group(1)) > 0, run.stdout
    store = Store.from_config(load_config(config).store)
    try:
        assert len(store.cached_analyses([analysis_key("인공지능")])) == 1
    finally:
        store.close()
