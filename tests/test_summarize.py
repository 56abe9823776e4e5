"""Summaries: original text, budget, order, boilerplate, every algorithm, English fixtures."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest import pipeline
from digest.config import SummaryConfig, load_config
from digest.errors import SummaryError
from digest.models import Post, Summary
from digest.store import Store
from digest.summarize import (
    ALGORITHMS,
    Summarizer,
    SummaryRequest,
    summarize,
    summarize_batch,
    summarize_many,
)
from digest.summarize.boilerplate import is_boilerplate
from digest.summarize.centrality import textrank_scores
from digest.summarize.core import Candidate
from digest.summarize.sumy_adapter import sumy_scores
from digest.text.english import english_terms
from digest.text.kiwi import get_kiwi
from digest.text.sentences import split_spans

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = Path(__file__).resolve().parent / "data" / "english"

KOREAN_NEWS = "\n".join(
    [
        "(서울=연합뉴스) 김민수 기자 = 정부가 인공지능 반도체 산업에 "
        "5년간 3조 원을 투자하기로 했다.",
        "",
        "사진=연합뉴스",
        "",
        "과학기술정보통신부는 12일 인공지능 반도체 육성 전략을 발표하고 국산 칩의 데이터센터 "
        "적용을 늘리겠다고 밝혔다. 정부는 2030년까지 국산 인공지능 반도체의 국내 점유율을 "
        "80%로 끌어올린다는 목표를 세웠다. 이를 위해 설계 인력 7천 명을 양성하고 검증용 "
        "데이터센터를 구축한다.",
        "",
        '업계는 환영하면서도 속도를 요구했다. 한 반도체 업체 대표는 "투자 규모보다 중요한 것은 '
        '실제 수요를 만드는 것"이라고 말했다. 전문가들은 해외 빅테크와의 격차가 3.5년 '
        "수준이라고 분석했다.",
        "",
        "김민수 기자 kms@example.co.kr",
        "ⓒ 예시뉴스, 무단전재 및 재배포 금지",
    ]
)

KOREAN_TITLE = "정부, 인공지능 반도체에 3조 원 투자"


def _in_order(text: str, sentences: tuple[str, ...]) -> bool:
    pos = 0
    for sentence in sentences:
        found = text.find(sentence, pos)
        if found < 0:
            return False
        pos = found + len(sentence)
    return True


def _joined_length(sentences: tuple[str, ...]) -> int:
    return len(" ".join(sentences))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_keeps_text_order_and_budget(algorithm: str) -> None:
    config = SummaryConfig(algorithm=algorithm, sentences=3, max_chars=200)
    summary = summarize(KOREAN_NEWS, title=KOREAN_TITLE, config=config)
    assert summary.language == "ko"
    assert summary.algorithm == algorithm
    assert 1 <= len(summary.sentences) <= 3
    assert _in_order(KOREAN_NEWS, summary.sentences)
    assert _joined_length(summary.sentences) <= 200


def test_boilerplate_is_never_chosen() -> None:
    config = SummaryConfig(sentences=10, max_chars=2000)
    summary = summarize(KOREAN_NEWS, title=KOREAN_TITLE, config=config)
    joined = "\n".join(summary.sentences)
    assert "사진=" not in joined
    assert "@" not in joined
    assert "무단전재" not in joined
    # The byline-prefixed news lead carries the news, so it stays eligible.
    assert summary.sentences[0].startswith("(서울=연합뉴스)")


def test_hybrid_picks_the_news_lead() -> None:
    summary = summarize(KOREAN_NEWS, title=KOREAN_TITLE, config=SummaryConfig(algorithm="hybrid"))
    assert any("3조 원을 투자" in s for s in summary.sentences)


def test_budget_is_met_by_choosing_not_cutting() -> None:
    long_first = "가" * 50 + "는 아주 긴 첫 문장이다. "
    text = long_first + "짧은 두 번째 문장은 핵심이다. 세 번째 문장도 핵심을 말한다. " * 3
    summary = summarize(text, config=SummaryConfig(sentences=3, max_chars=60))
    assert summary.sentences
    assert _joined_length(summary.sentences) <= 60
    assert all(s in text for s in summary.sentences)


def test_nothing_fits_gives_an_empty_summary_rather_than_a_cut_sentence() -> None:
    text = ("이 문장은 예산보다 훨씬 길어서 어떤 경우에도 들어갈 수 없는 문장이다. " * 2) * 3
    summary = summarize(text, config=SummaryConfig(max_chars=20))
    assert summary.sentences == ()


def test_short_text_is_its_own_summary() -> None:
    text = "짧은 글이다. 두 문장뿐이다."
    summary = summarize(text, config=SummaryConfig(sentences=1, max_chars=400))
    assert summary.sentences == ("짧은 글이다.", "두 문장뿐이다.")
    assert summary.algorithm == "full"


def test_short_text_still_drops_boilerplate() -> None:
    summary = summarize("사진=게티이미지\n\n본문은 한 문장이다.", config=SummaryConfig())
    assert summary.sentences == ("본문은 한 문장이다.",)


# A blog post with subheadings (as HTML <h2>s come out of ingestion: blocks of their own).
# The second subheading repeats the title's words, so the title boost alone would pick it.
KOREAN_ESSAY_WITH_HEADINGS = "\n\n".join(
    [
        "지난주 동네 도서관에서 오래된 신문 스크랩을 발견했다. 누군가 십 년 동안 모은 것이었다.",
        "정보 자본: 현대의 새로운 힘",
        "오늘날 정보 자본은 현대 사회에서 가장 중요한 자본으로 자리 잡았다. 정보를 다루는 힘은 "
        "비판적으로 읽는 습관에서 나온다. 스크랩을 모은 사람도 매일 신문을 비판적으로 읽었을 "
        "것이다.",
        "우리에게 정보의 힘이 있다",
        "정보가 민주화된 사회에서 우리는 단순한 소비자가 아니라 정보의 주체로서 그 힘을 이해해야 "
        "한다. 그래서 오늘도 신문을 펼친다",
        "- 매일 한 편 읽기",
        "- 출처 확인하기",
    ]
)


def test_headings_and_list_items_are_not_quoted() -> None:
    config = SummaryConfig(sentences=3, max_chars=150)
    title = "우리에게 정보의 힘이 있다"
    summary = summarize(KOREAN_ESSAY_WITH_HEADINGS, title=title, config=config)
    assert summary.algorithm == "hybrid" and len(summary.sentences) == 3
    for fragment in ("정보 자본: 현대의 새로운 힘", title, "- 매일 한 편 읽기"):
        assert fragment not in summary.sentences
    english = "Why it matters\n\nThe release makes builds twice as fast. It also fixes the cache.\n"
    english += "\nWhat changed under the hood\n\nWe rewrote the scheduler from scratch this spring."
    summary = summarize(english, title="Why the release matters", config=SummaryConfig())
    assert summary.sentences and "Why it matters" not in summary.sentences
    assert "What changed under the hood" not in summary.sentences


def test_a_short_post_with_headings_is_its_own_summary_without_them() -> None:
    summary = summarize(KOREAN_ESSAY_WITH_HEADINGS, config=SummaryConfig(max_chars=2000))
    assert summary.algorithm == "full"
    assert not {"정보 자본: 현대의 새로운 힘", "우리에게 정보의 힘이 있다"} & set(summary.sentences)
    # List items are content: a short post keeps them in its own summary.
    assert summary.sentences[-2:] == ("- 매일 한 편 읽기", "- 출처 확인하기")
    # A line without a full stop that ends in a final ending is still a sentence.
    assert summary.sentences[-3] == "그래서 오늘도 신문을 펼친다"
    assert len(summary.sentences) == 9
    # In a post that never uses full stops, a lone line without a final ending may be a
    # heading or the author's style: ranking passes it over, a short post keeps it.
    text = "정보 자본: 새로운 힘\n\n정보는 누구에게나 열려 있다\n\n다루는 능력은 다르다"
    assert summarize(text, config=SummaryConfig()).sentences == tuple(text.split("\n\n"))
    config = SummaryConfig(sentences=1, max_chars=20)
    summary = summarize(text, title="정보 자본의 새로운 힘", config=config)
    assert summary.sentences == ("정보는 누구에게나 열려 있다",)


def test_list_items_are_passed_over_but_kept_in_a_short_posts_own_summary() -> None:
    text = (
        "기술 변화에 대처하는 방법을 정리했다. 무엇보다 자신에게 맞는 학습 방법을 찾는 것이 "
        "중요하다. 1. 학습 방법을 이해하라: 자신만의 학습 스타일 찾기 우리는 모두 다른 방식으로 "
        "배우고 이해합니다. 2. 정보 과잉에서 벗어나라: 트렌드에 휩쓸리지 않기 새로운 기술이 "
        "나올 때마다 모두가 달아오른다. 결국 꾸준히 배우는 사람이 학습 방법의 변화에 적응한다."
    )
    summary = summarize(text, title="학습 방법을 학습하기", config=SummaryConfig(max_chars=150))
    assert summary.algorithm == "hybrid" and summary.sentences
    assert not any(s[0].isdigit() for s in summary.sentences)
    summary = summarize(text, config=SummaryConfig(max_chars=1000))
    assert summary.algorithm == "full"
    assert sum(s[0].isdigit() for s in summary.sentences) == 2


def test_release_notes_quote_their_items_not_their_headings() -> None:
    text = (
        "새 기능\n\n- 검색 속도를 두 배로 개선\n- 다크 모드를 새로 추가\n- 설정 화면 전면 개편"
        "\n\n버그 수정\n\n- 로그인 오류 해결\n- 알림이 두 번 오는 문제 수정\n"
        "- 첨부 파일 미리보기 오류 수정"
    )
    summary = summarize(text, title="3.0 릴리스", config=SummaryConfig(max_chars=60))
    assert summary.algorithm == "hybrid" and summary.sentences
    assert all(s.startswith("- ") for s in summary.sentences)
    summary = summarize("릴리스 노트입니다.\n\n- 새 기능 추가\n- 버그 수정", config=SummaryConfig())
    assert summary.sentences == ("릴리스 노트입니다.", "- 새 기능 추가", "- 버그 수정")


def test_headings_on_a_line_of_their_own_and_headings_that_outnumber_sentences() -> None:
    summary = summarize("서론\n이 글은 짧다.\n\n본론\n내용이 있다.", config=SummaryConfig())
    assert summary.sentences == ("이 글은 짧다.", "내용이 있다.")
    text = "업데이트 안내입니다.\n\n새 기능\n\n- 검색 개선\n\n버그 수정\n\n- 로그인 오류"
    summary = summarize(text, config=SummaryConfig())
    assert summary.sentences == ("업데이트 안내입니다.", "- 검색 개선", "- 로그인 오류")


def test_lines_without_a_word_are_never_quoted() -> None:
    text = "오늘 정말 좋았다.\n\n🎉🎉\n\n...\n\n\u200b\u200b\ufeff\n\n내일 또 가자."
    summary = summarize(text, config=SummaryConfig())
    assert summary.sentences == ("오늘 정말 좋았다.", "내일 또 가자.")


def test_a_casual_post_without_full_stops_keeps_its_lines() -> None:
    text = "오늘 카페에 갔다\n\n커피도 맛있고 디저트도 최고\n\n또 가고 싶다\n\n정말 좋았어요 :)"
    summary = summarize(text, config=SummaryConfig())
    assert summary.sentences == tuple(text.split("\n\n"))


def test_a_post_that_is_only_a_list_is_still_summarized() -> None:
    summary = summarize("- 새 기능 추가\n- 버그 수정\n- 문서 보강", config=SummaryConfig())
    assert summary.sentences == ("- 새 기능 추가", "- 버그 수정", "- 문서 보강")


def test_empty_text() -> None:
    assert summarize("", config=SummaryConfig()).sentences == ()


def test_language_setting_and_hint() -> None:
    text = "짧은 글이다."
    assert summarize(text, config=SummaryConfig(language="en")).language == "en"
    assert summarize("OK", config=SummaryConfig(), language="ko").language == "ko"


def test_unknown_algorithm_is_a_summary_error() -> None:
    with pytest.raises(SummaryError):
        summarize(KOREAN_NEWS, config=SummaryConfig(algorithm="nope"))


def test_description_used_only_when_not_a_teaser() -> None:
    config = SummaryConfig()  # deck = "auto"
    written = "정부가 인공지능 반도체에 5년간 3조 원을 투입해 국산 칩 점유율을 높인다."
    assert summarize(KOREAN_NEWS, config=config, description=written).sentences == (written,)
    teaser = "과학기술정보통신부는 12일 인공지능 반도체 육성 전략을 발표하고…"
    assert summarize(KOREAN_NEWS, config=config, description=teaser).algorithm != "description"
    prefix = KOREAN_NEWS[:60]
    assert summarize(KOREAN_NEWS, config=config, description=prefix).algorithm != "description"
    off = SummaryConfig(deck="never")
    assert summarize(KOREAN_NEWS, config=off, description=written).algorithm != "description"


def test_deck_modes() -> None:
    """auto: a deck that restates the article; never a site's blurb, a copied sentence or a
    teaser. prefer: whatever the publisher wrote, unless it is a teaser. A subheadline the
    page also shows as its own paragraph is still a deck."""
    auto = SummaryConfig()
    blurb = "매일 아침 새로운 소식을 전하는 온라인 매체, 지금 만나 보세요."
    assert summarize(KOREAN_NEWS, config=auto, description=blurb).algorithm != "description"
    prefer = SummaryConfig(deck="prefer")
    assert summarize(KOREAN_NEWS, config=prefer, description=blurb).sentences == (blurb,)
    teaser = "과학기술정보통신부는 12일 인공지능 반도체 육성 전략을 발표하고…"
    assert summarize(KOREAN_NEWS, config=prefer, description=teaser).algorithm != "description"
    copied = KOREAN_NEWS.split("\n\n")[2].split(". ")[0] + "."
    assert copied in KOREAN_NEWS and len(copied) > 20
    assert summarize(KOREAN_NEWS, config=auto, description=copied).algorithm != "description"
    deck = "정부가 인공지능 반도체에 5년간 3조 원을 투입해 국산 칩 점유율을 높인다"
    page = f"{deck}\n\n{KOREAN_NEWS}"
    assert summarize(page, config=auto, description=deck).sentences == (deck,)


def test_repeated_sentences_are_not_chosen_twice() -> None:
    repeated = "인공지능 투자가 늘고 있다는 점이 가장 중요하다."
    others = [
        "반도체 설계 인력이 부족하다.",
        "데이터센터 전력 수요도 커진다.",
        "정부는 전력망 투자 계획을 다시 검토한다.",
        "기업들은 인공지능 인재 채용을 늘리고 있다.",
    ]
    text = " ".join([repeated, others[0], repeated, others[1], repeated, *others[2:]])
    summary = summarize(text, config=SummaryConfig(sentences=3, max_chars=120))
    assert summary.algorithm == "hybrid"
    assert Counter(summary.sentences)[repeated] <= 1


def test_summarizer_and_summarize_many() -> None:
    config = SummaryConfig(sentences=2, max_chars=150)
    summarizer = Summarizer(config)
    one = summarizer(KOREAN_NEWS, title=KOREAN_TITLE)
    many = summarize_many([(KOREAN_TITLE, KOREAN_NEWS), ("", "짧다.")], config=config)
    assert many[0] == one
    assert many[1].sentences == ("짧다.",)


def _english_fixtures() -> list[dict[str, str]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(ENGLISH.glob("*.json"))]


def test_english_fixtures_exist() -> None:
    assert len(_english_fixtures()) >= 2


@pytest.mark.parametrize("doc", _english_fixtures(), ids=lambda d: d["title"][:30])
def test_english_summaries(doc: dict[str, str]) -> None:
    config = SummaryConfig(sentences=3, max_chars=400)
    summary = summarize(doc["text"], title=doc["title"], config=config)
    assert summary.language == "en"
    assert _in_order(doc["text"], summary.sentences)
    assert _joined_length(summary.sentences) <= 400
    joined = " ".join(summary.sentences)
    assert "Subscribe" not in joined and "Photo:" not in joined and not joined.startswith("By ")
    # The chosen sentences share a good part of the author's own summary's content words.
    ours, theirs = set(english_terms(joined)), set(english_terms(doc["summary"]))
    assert len(ours & theirs) / len(theirs) >= 0.3


# -- ranking, batches, caching, offline -------------------------------------------------------


def _candidates(text: str, language: str) -> list[Candidate]:
    return [
        Candidate(s.text, s.terms, i, is_boilerplate(s.text))
        for i, s in enumerate(split_spans(text, language))
    ]


@pytest.mark.parametrize("which", ["ko", *[p.stem for p in sorted(ENGLISH.glob("*.json"))]])
def test_numpy_textrank_gives_sumys_ratings(which: str) -> None:
    if which == "ko":
        candidates = _candidates(KOREAN_NEWS, "ko")
    else:
        doc = json.loads((ENGLISH / f"{which}.json").read_text(encoding="utf-8"))
        candidates = _candidates(doc["text"], "en")
    terms = [c.terms for c in candidates]
    ours = textrank_scores(terms)
    theirs = sumy_scores("textrank", [c.text for c in candidates], terms)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    # Degenerate inputs: one-word sentences (sumy's log-norm of 0), empty ones, nothing.
    tiny = [("가",), ("가",), (), ("나", "가")]
    assert textrank_scores(tiny) == pytest.approx(
        sumy_scores("textrank", ["a", "b", "c", "d"], tiny), rel=1e-12
    )
    assert textrank_scores([]) == []
    assert textrank_scores([(), ()]) == [0.0, 0.0]


def test_a_batch_gives_what_one_at_a_time_gives() -> None:
    english = _english_fixtures()[0]
    written = "정부가 인공지능 반도체에 5년간 3조 원을 투입해 국산 칩 점유율을 높인다."
    requests = [
        SummaryRequest(KOREAN_NEWS, KOREAN_TITLE),
        SummaryRequest(english["text"], english["title"]),
        SummaryRequest(""),
        SummaryRequest("짧은 글이다."),
        SummaryRequest(KOREAN_NEWS, description=written),
        SummaryRequest("OK", language="ko"),
    ]
    for config in (SummaryConfig(), SummaryConfig(prefer_description=True, algorithm="lexrank")):
        one_by_one = [
            summarize(
                r.text, title=r.title, config=config, language=r.language, description=r.description
            )
            for r in requests
        ]
        assert summarize_batch(requests, config=config) == one_by_one
    assert summarize_batch([], config=SummaryConfig()) == []


def test_one_kiwi_pass_per_text_and_one_batch_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    kiwi = get_kiwi()
    calls: list[tuple[str, list[str]]] = []

    def counting(name: str) -> Callable[..., Any]:
        original = getattr(kiwi, name)

        def wrapper(text: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append((name, [text] if isinstance(text, str) else list(text)))
            return original(text, *args, **kwargs)

        return wrapper

    for name in ("split_into_sents", "tokenize", "analyze"):
        monkeypatch.setattr(kiwi, name, counting(name))
    config = SummaryConfig(max_chars=150)  # too long to be its own summary: ranked
    summarize(KOREAN_NEWS, title=KOREAN_TITLE, config=config)
    # One call analyses the title; one more the body's paragraphs, each character once,
    # giving sentences and morphemes together.
    assert [name for name, _ in calls] == ["tokenize", "tokenize"]
    assert calls[0][1] == [KOREAN_TITLE]
    assert sum(map(len, calls[1][1])) <= len(KOREAN_NEWS)
    calls.clear()
    other = KOREAN_NEWS.replace("3조", "4조")
    summarize_many([(KOREAN_TITLE, KOREAN_NEWS), (KOREAN_TITLE, other)], config=config)
    # Two posts: still two calls, each a batch over both.
    assert [name for name, _ in calls] == ["tokenize", "tokenize"]
    assert len(calls[0][1]) == 2
    assert sum(map(len, calls[1][1])) <= 2 * len(KOREAN_NEWS)


def test_planning_again_does_not_summarize_unchanged_posts(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from digest.ingest import ingest_all

    # The sources only: `digest ingest` would also summarize them ahead (prepare_posts).
    config = load_config(config_path)
    with contextlib.closing(Store.from_config(config.store)) as ingesting:
        asyncio.run(ingest_all(config, ingesting, datetime.now(UTC)))
    summarized: list[int] = []
    real = pipeline.summarize_batch

    def counting(requests: Sequence[SummaryRequest], *, config: SummaryConfig) -> list[Summary]:
        summarized.append(len(requests))
        return real(requests, config=config)

    monkeypatch.setattr(pipeline, "summarize_batch", counting)
    now = datetime.now(UTC)
    store = Store.from_config(config.store)
    try:
        first = pipeline.preview_digest(config, store, now=now)
        assert first is not None
        count = sum(len(s.items) for s in first[0].sections)
        assert summarized == [count]  # the digest's posts, summarized in one batch
        second = pipeline.preview_digest(config, store, now=now)  # a new run, same posts
        assert second is not None
        assert summarized == [count]  # all from the cache
        assert second[0].sections == first[0].sections
        # An edited post is summarized again, and only it; so is any post under new settings.
        post = first[0].sections[0].items[0].post
        edited = replace(post, text=post.text + "\n\n편집자 주: 이 글은 수정되었습니다.")
        store.upsert_posts([(edited, "edited")])
        pipeline.preview_digest(config, store, now=now)
        assert summarized == [count, 1]
        shorter = replace(config, summary=replace(config.summary, sentences=2))
        pipeline.preview_digest(shorter, store, now=now)
        assert summarized == [count, 1, count]
        # A summarizer that would summarize differently does not reuse the old summaries.
        newer = pipeline.summarizer_version().replace("summary-v", "summary-v9")
        monkeypatch.setattr(pipeline, "summarizer_version", lambda: newer)
        pipeline.preview_digest(config, store, now=now)
        assert summarized == [count, 1, count, count]
    finally:
        store.close()


_OFFLINE = """
import json, socket, sys

def refuse(*args, **kwargs):
    raise OSError("network disabled in this test")

class NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        refuse()

socket.socket = NoSocket
socket.create_connection = refuse
socket.getaddrinfo = refuse

import kiwipiepy

made = []
original_init = kiwipiepy.Kiwi.__init__

def counting_init(self, *args, **kwargs):
    made.append(1)
    original_init(self, *args, **kwargs)

kiwipiepy.Kiwi.__init__ = counting_init

from digest.config import SummaryConfig
from digest.summarize import summarize, summarize_many
from digest.text import content_morphemes, split_sentences

english, korean = json.loads(sys.stdin.read())
config = SummaryConfig(sentences=2, max_chars=300)
results = [summarize(english["text"], title=english["title"], config=config)]
results.append(summarize(korean, config=config))
results += summarize_many([("", korean), ("", english["text"])], config=config)
content_morphemes("인공지능은")
split_sentences("Dr. Smith arrived. He left.", "en")
print(json.dumps({
    "kiwi_instances": len(made),
    "summaries": [[r.language, list(r.sentences)] for r in results],
    "nltk_path": __import__("nltk").data.path[0] if "nltk" in sys.modules else None,
}))
"""


def test_summarizes_without_network_or_nltk_data(tmp_path: Path) -> None:
    # A fresh process: nothing downloaded at import or first use, NLTK's data path empty,
    # and the Kiwi analyzer built once however many texts are summarized.
    empty = tmp_path / "nltk_data"
    empty.mkdir()
    env = {**os.environ, "NLTK_DATA": str(empty), "HOME": str(tmp_path)}
    payload = json.dumps([_english_fixtures()[0], KOREAN_NEWS])
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["kiwi_instances"] == 1
    assert report["nltk_path"] in (None, str(empty))  # NLTK could only look in the empty dir
    languages = [language for language, _ in report["summaries"]]
    assert languages == ["en", "ko", "ko", "en"]
    assert all(sentences for _, sentences in report["summaries"])
    assert list(os.scandir(empty)) == []  # nothing was downloaded into it


# A news report with everything around it that a summary must not quote: a series
# preamble, a question used as a subheading, a photo caption marked with a triangle and a
# table row. Each of them shares the title's words, so a ranking that let them in would
# pick them.
FURNISHED_NEWS = "\n\n".join(
    [
        "[반도체 산업]은 반도체 투자와 반도체 산업의 흐름을 매주 골라 담았습니다.",
        "정부가 반도체 산업에 5년간 3조 원을 투자하기로 했다. 과학기술정보통신부는 12일 "
        "반도체 육성 전략을 발표하고 국산 칩의 데이터센터 적용을 늘리겠다고 밝혔다.",
        "▲ 12일 반도체 산업 투자 전략 발표회에서 장관이 반도체 투자 계획을 설명하고 있다.",
        "왜 지금 반도체 산업 투자인가?",
        "정부는 2030년까지 국산 반도체의 국내 점유율을 80%로 끌어올린다는 목표를 세웠다. "
        "이를 위해 설계 인력 7천 명을 양성하고 검증용 데이터센터를 구축한다고 전했다.",
        "반도체 투자 | 2025년: 1조 원: 2026년: 2조 원 (반도체 산업, 투자)",
        "업계는 환영하면서도 속도를 요구했다. 한 업체 대표는 투자 규모보다 실제 수요를 "
        "만드는 것이 중요하다고 말했다. 전문가들은 해외 기업과의 격차가 3년 수준이라고 "
        "분석했다.",
    ]
)


def test_preambles_question_headings_captions_and_tables_are_never_quoted() -> None:
    for algorithm in ("hybrid", "lead", "textrank"):
        config = SummaryConfig(algorithm=algorithm, sentences=3, max_chars=300)
        summary = summarize(FURNISHED_NEWS, title="반도체 산업 투자", config=config)
        assert summary.sentences, algorithm
        quoted = " ".join(summary.sentences)
        for furniture in ("담았습니다", "▲", "인가?", " | "):
            assert furniture not in quoted, (algorithm, summary.sentences)


def test_text_kind_is_read_from_the_text() -> None:
    from digest.summarize.kinds import ESSAY, NEWS, detect_kind
    from digest.text.sentences import split_sentences

    assert detect_kind(split_sentences(FURNISHED_NEWS, "ko"), "ko") == NEWS
    blog = (
        "요즘 아침마다 커피를 직접 내려 마시고 있습니다. 원두를 고르는 재미가 생각보다 "
        "큽니다. 산미가 있는 원두는 아침에 잘 어울린다고 생각해요. 여러분은 어떤 원두를 "
        "좋아하시나요? 다음 글에서는 드리퍼를 비교해 보겠습니다."
    )
    assert detect_kind(split_sentences(blog, "ko"), "ko") == ESSAY
    report = (
        "LONDON (Reuters) - The central bank raised rates on Thursday. The governor said "
        "inflation was still too high. Markets fell after the announcement, according to "
        "traders. A spokesperson said more data would follow."
    )
    assert detect_kind(split_sentences(report, "en"), "en") == NEWS
    essay = (
        "I have been writing software for twenty years. My first programs were games. "
        "What I learned is that we rarely know what we want until we build it. Our tools "
        "shape our thinking more than we admit."
    )
    assert detect_kind(split_sentences(essay, "en"), "en") == ESSAY


def test_a_source_sets_the_deck_and_the_text_kind(tmp_path: Path) -> None:
    """`[[sources]] deck` and `text_kind` are read from config.toml and reach the
    summarizer and its cache key; a bad value names the key."""
    from digest.config import load_config
    from digest.errors import ConfigError
    from digest.pipeline import summary_cache_key, summary_request

    def config(extra: str):  # type: ignore[no-untyped-def]
        path = tmp_path / "config.toml"
        path.write_text(
            '[site]\nname = "N"\nurl = "https://example.com"\nsender = "N <n@example.com>"\n'
            '[[sources]]\nname = "news"\nurl = "https://example.com/rss"\n' + extra,
            "utf-8",
        )
        return load_config(path)

    post = Post(
        source="news",
        guid="g1",
        url="https://example.com/1",
        title="반도체 투자",
        text=KOREAN_NEWS,
        published=datetime(2026, 12, 1, tzinfo=UTC),
        description="정부가 반도체에 3조 원",
    )
    base = config("")
    assert (summary_request(post, base).kind, summary_request(post, base).deck) == ("auto", "")
    tuned = config('deck = "prefer"\ntext_kind = "news"\n')
    assert (summary_request(post, tuned).kind, summary_request(post, tuned).deck) == (
        "news",
        "prefer",
    )
    assert summary_cache_key(post, tuned) != summary_cache_key(post, base)
    with pytest.raises(ConfigError, match=r"sources\[0\]\.text_kind"):
        config('text_kind = "poem"\n')
    with pytest.raises(ConfigError, match=r"sources\[0\]\.deck"):
        config('deck = "always"\n')


@pytest.mark.parametrize(
    ("sentence", "furniture"),
    [
        ("Thanks to everyone who contributed to this release by writing code.", True),
        ("We would like to thank the community for the feedback.", True),
        ("읽어주셔서 감사합니다.", True),
        ("도와주신 모든 분께 감사합니다.", True),
        ("다음 글에서 만나요.", True),
        ("▲ 12일 서울 광화문에서 시민들이 걷고 있다.", True),
        ("시민들이 광화문 광장을 걷고 있다. /사진=홍길동 기자", True),
        ("Photo by Jane Doe for the Riverside Times.", True),
        ("| 구분 | 2025년 | 2026년 |", True),
        ("2사분면 | 소비자 우위 (...): 애플 (Apple): (4, -2) - 충성도가 높다", True),
        ("Thanksgiving is a holiday when many people in the US travel home.", False),
        ("정부는 업계의 협조에 감사를 표했다고 전했다.", False),
        ("A | B is how a shell connects the output of one command to another.", False),
        ("The ratio fell to 3/4 of its peak, or (4, -2) on the chart, said analysts.", False),
    ],
)
def test_page_furniture(sentence: str, furniture: bool) -> None:
    assert is_boilerplate(sentence) is furniture


def test_a_description_on_many_pages_is_a_blurb_not_a_deck(config_path: Path) -> None:
    """The same og:description on several posts of a source is the site's blurb, never a
    summary; a description written for one article that restates it is its deck."""
    config = load_config(config_path)
    blurb = "정부와 산업의 소식을 가장 빠르게 전하는 인공지능 반도체 전문 매체입니다"
    deck = "정부가 반도체에 5년간 3조 원을 투입해 국산 칩 점유율을 높인다"

    def post(guid: str, description: str) -> Post:
        return Post(
            source="haebom",
            guid=guid,
            url=f"https://example.com/{guid}",
            title="반도체 투자",
            text=KOREAN_NEWS,
            published=datetime(2026, 12, 1, tzinfo=UTC),
            description=description,
        )

    alone = post("g1", blurb)
    with contextlib.closing(Store.from_config(config.store)) as store:
        store.upsert_posts([(alone, "one")])
        # One post with it: it reads as a deck (it shares the article's words).
        assert pipeline.summarize_posts([alone], config, store)[0].algorithm == "description"
        others = [post("g2", blurb), post("g3", deck)]
        store.upsert_posts([(p, p.guid) for p in others])
        first, second, third = pipeline.summarize_posts([alone, *others], config, store)
        assert first.algorithm != "description" and second.algorithm != "description"
        assert third.sentences == (deck,)
