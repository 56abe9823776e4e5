"""Language detection, sentence splitting (Korean and English) and Korean content morphemes."""

from __future__ import annotations

import re

import pytest

from digest.text import (
    analyze,
    analyze_many,
    content_morphemes,
    detect_language,
    split_sentences,
    split_spans,
    split_spans_many,
)
from digest.text.lang import hangul_share


def _covers(text: str, sentences: list[str]) -> None:
    # Every sentence is an exact substring, in order, and nothing but whitespace is lost.
    pos = 0
    for sentence in sentences:
        found = text.find(sentence, pos)
        assert found >= 0, sentence
        assert text[pos:found].strip() == ""
        pos = found + len(sentence)
    assert text[pos:].strip() == ""


# -- language -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("인공지능이 산업 전반을 바꾸고 있다.", "ko"),
        ("AI와 SaaS 시장은 Agile 방식으로 빠르게 성장하고 있습니다.", "ko"),
        ("The Fed raised rates by 0.25 points on Wednesday.", "en"),
        ("The new Samsung phone, called 갤럭시 in Korea, sold well in Europe this year.", "en"),
    ],
)
def test_detect_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected


def test_detect_language_uses_hint_when_too_short() -> None:
    assert detect_language("GPT-4", hint="ko") == "ko"
    assert detect_language("GPT-4", hint="en") == "en"
    assert detect_language("", hint="ko-KR") == "ko"
    assert detect_language("") == "en"
    # A long text wins over a wrong hint.
    assert (
        detect_language("오늘은 경제와 투자에 관한 이야기를 길게 해 보려고 합니다.", hint="en")
        == "ko"
    )


# -- Korean splitting ---------------------------------------------------------------------


def test_korean_basic_endings_and_missing_final_punctuation() -> None:
    text = "오늘은 날씨가 좋다. 내일은 비가 온다고 한다! 정말일까? 우산을 챙겨야 한다"
    assert split_sentences(text, "ko") == [
        "오늘은 날씨가 좋다.",
        "내일은 비가 온다고 한다!",
        "정말일까?",
        "우산을 챙겨야 한다",
    ]


def test_korean_decimals_and_percent_are_not_boundaries() -> None:
    text = "매출은 3.5% 늘었다. 영업이익은 2.5배 증가한 1.2조 원이었다."
    assert split_sentences(text, "ko") == [
        "매출은 3.5% 늘었다.",
        "영업이익은 2.5배 증가한 1.2조 원이었다.",
    ]


def test_korean_quotes_stay_with_their_sentence() -> None:
    text = '김 대표는 "AI는 중요하다. 투자를 늘리겠다"고 밝혔다. 이어서 계획을 발표했다.'
    assert split_sentences(text, "ko") == [
        '김 대표는 "AI는 중요하다. 투자를 늘리겠다"고 밝혔다.',
        "이어서 계획을 발표했다.",
    ]


def test_korean_quote_after_finished_sentence_starts_a_new_one() -> None:
    text = '그는 성장했다. "정말 그렇다."라고 말했다. 다음 문장이다.'
    assert split_sentences(text, "ko") == [
        "그는 성장했다.",
        '"정말 그렇다."라고 말했다.',
        "다음 문장이다.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        # From the seed posts, with enough context that Kiwi keeps them together.
        "중간관리자에 대한 이야기는 DBR에 잘 정리된 게 있으니 한 번 읽어봅시다. (본인이 "
        "중간관리자라면 더더욱이) 근데, 이러면 이제 델포이 신탁이 시작됩니다.",
        "통해 정보를 확인할 필요가 있으며, 이는 검색 엔진이 제공하는 기능입니다. ⇒ 결국 SEO는 "
        "필요합니다. 실제로 Naver CUE;나 Perplexity를",
        "성능을 도출하는 기술이라고 정의하며, 이를 시행착오 과정에 비유했습니다. ⚙ 기존 "
        "프로그래밍과 달리, 프롬프트 엔지니어링은 반복적인 실험과 피드백을",
        "트럼프가 대통령이 될 확률이 매우 매우 높습니다. (틀리면 어쩔 수 없고) 왜 이렇게까지 "
        "확신을 하느냐 사실 밤새 이야기 나눌 수 있는 주제입니다.",
        "깊은 유대감을 형성했습니다. '다니'는 드라마의 주인공이다.",
        "우리가 언제 일하기 싫은가? “항상”이라고 말할 수도 있겠지만 잘 생각해 보자.",
    ],
)
def test_korean_finished_sentence_before_a_bracket_or_symbol_ends(text: str) -> None:
    # Kiwi keeps these together in running text; a final ending, a full stop and a space
    # end a sentence whatever follows. (What follows may be split further.)
    sentences = split_sentences(text, "ko")
    first_end = re.search(r"[.?!] ", text)
    assert first_end is not None
    assert sentences[0] == text[: first_end.start() + 1]
    assert " ".join(sentences) == text


def test_korean_full_stops_inside_quotes_and_brackets_do_not_end_the_sentence() -> None:
    quoted = '그는 "좋다. 가자. 이제 끝이다."라고 말했다.'
    for text in (quoted, "결과는 (정말 그렇다. 분명하다) 같았다."):
        assert split_sentences(text, "ko") == [text]


def test_korean_sentences_without_a_space_after_the_full_stop_stay_apart() -> None:
    # Kiwi reads 이는 as copula + ending; after a full stop it still starts a sentence.
    assert split_sentences("부흥회를 열곤 합니다.이는 주니어에게 위험합니다.", "ko") == [
        "부흥회를 열곤 합니다.",
        "이는 주니어에게 위험합니다.",
    ]


def test_korean_emoticons_stay_with_the_sentence_they_follow() -> None:
    text = "병세는 호전되었습니다. 이게 우연일까요? :) 이번 글을 요약하면 이렇습니다."
    assert split_sentences(text, "ko") == [
        "병세는 호전되었습니다.",
        "이게 우연일까요? :)",
        "이번 글을 요약하면 이렇습니다.",
    ]
    assert split_sentences("정말 좋았다. ㅋㅋ", "ko") == ["정말 좋았다. ㅋㅋ"]
    laugh = "정말 좋았다. ㅋㅋ 내일 또 가자."
    assert split_sentences(laugh, "ko") == ["정말 좋았다. ㅋㅋ", "내일 또 가자."]
    (span,) = split_spans("정말 좋았어요 :)")
    assert span.final  # a smiley is not a lead-in colon
    assert split_sentences("정말요? :( 아쉽네요.", "ko") == ["정말요? :(", "아쉽네요."]
    assert split_sentences("좋았다. :). 또 가자.", "ko") == ["좋았다. :).", "또 가자."]
    assert split_sentences("좋았다. ㅋㅋ. 또 가자.", "ko") == ["좋았다. ㅋㅋ.", "또 가자."]
    party = "정말 좋았다. 🎉 내일 또 가자."
    assert split_sentences(party, "ko") == ["정말 좋았다. 🎉", "내일 또 가자."]


def test_short_lines_that_are_not_a_wrapped_paragraph_stay_apart() -> None:
    assert split_sentences("2024년 회고\n올해는 많은 일이 있었다.", "ko") == [
        "2024년 회고",
        "올해는 많은 일이 있었다.",
    ]
    assert split_sentences("사과\n배\n포도\n귤", "ko") == ["사과", "배", "포도", "귤"]


def test_korean_text_hard_wrapped_at_a_narrow_width_keeps_its_sentences() -> None:
    lines = [  # wrapped at 30 characters, so every line is shorter than a "short line"
        "오늘날 정보 자본은 현대 사회에서 가장 중요한 자본으로",
        "자리 잡았다. 정보를 다루는 힘은 비판적으로 읽는",
        "습관에서 나온다.",
    ]
    text = "정보 자본: 새로운 힘\n" + "\n".join(lines)
    sentences = [" ".join(s.split()) for s in split_sentences(text, "ko")]
    assert sentences == [
        "정보 자본: 새로운 힘",
        "오늘날 정보 자본은 현대 사회에서 가장 중요한 자본으로 자리 잡았다.",
        "정보를 다루는 힘은 비판적으로 읽는 습관에서 나온다.",
    ]


def test_korean_opening_quote_is_not_left_behind() -> None:
    sentences = split_sentences('그는 말했다."좋아." 그리고 떠났다', "ko")
    assert sentences[0] == "그는 말했다."
    assert sentences[1].startswith('"')


def test_korean_da_endings_without_space() -> None:
    text = "첫 번째 문장입니다.두 번째 문장입니다. 세 번째다."
    sentences = split_sentences(text, "ko")
    _covers(text, sentences)
    assert sentences[-1] == "세 번째다."
    assert len(sentences) == 3


def test_paragraph_breaks_and_list_items_are_boundaries() -> None:
    text = (
        "정리하면 다음과 같다\n\n"
        "- 첫째 항목은 비용이다\n- 둘째 항목은 속도다\n1. 번호 항목\n\n"
        "끝이다"
    )
    assert split_sentences(text, "ko") == [
        "정리하면 다음과 같다",
        "- 첫째 항목은 비용이다",
        "- 둘째 항목은 속도다",
        "1. 번호 항목",
        "끝이다",
    ]


@pytest.mark.parametrize(
    ("text", "final"),
    [
        ("정보 자본: 현대의 새로운 힘", False),  # a heading ends in a noun
        ("1. 학습 방법을 이해하라: 자신만의 학습 스타일 찾기", False),
        ("결론은 이렇다:", False),  # a lead-in to what follows
        ("이 글은 2024년 12월 3일…", False),
        ("그래서 나는 떠났다", True),  # a final ending without a full stop
        ("정말 그럴까요?", True),
        ('그는 "좋아."라고 말했다', True),
        ("Why it matters", False),
        ("The release is out.", True),
        ('He said "yes."', True),
    ],
)
def test_spans_say_whether_they_end_like_a_sentence(text: str, final: bool) -> None:
    (span,) = split_spans(text)
    assert span.text == text
    assert span.final is final


def test_list_markers() -> None:
    from digest.text.sentences import starts_list_item

    for item in ("- 비용", "• 속도", "1. 학습 방법", "2) 정보", "(3) 실천", "가. 첫째", "하) 끝"):
        assert starts_list_item(item), item
    not_items = ("네. 맞습니다.", "예) 사과와 배는 과일이다.", "3.5%가 늘었다.", "2024. 12. 3.")
    for sentence in not_items:
        assert not starts_list_item(sentence), sentence


def test_split_keeps_original_spacing_and_offsets() -> None:
    # Kiwi normalises some forms internally (e.g. 입니다 -> 이 + ᆸ니다); output must not.
    text = "이건  두 칸 띄어쓰기입니다.   그리고ㅋㅋ 이상한맞춤법도있음.\n\n마지막"
    spans = split_spans(text, "ko")
    for span in spans:
        assert text[span.start : span.end] == span.text
    assert [s.text for s in spans] == [
        "이건  두 칸 띄어쓰기입니다.",
        "그리고ㅋㅋ 이상한맞춤법도있음.",
        "마지막",
    ]


def test_mixed_korean_and_english_paragraphs() -> None:
    text = (
        "이 글은 한국어로 시작한다. 두 번째 문장이다.\n\n"
        "Dr. Smith moved to the U.S. in 2020. He likes it."
    )
    spans = split_spans(text)
    assert [s.language for s in spans] == ["ko", "ko", "en", "en"]
    assert [s.text for s in spans][2:] == ["Dr. Smith moved to the U.S. in 2020.", "He likes it."]


# -- English splitting --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Dr. Smith went to Washington. He arrived at 3 p.m. on Monday.",
            ["Dr. Smith went to Washington.", "He arrived at 3 p.m. on Monday."],
        ),
        (
            "The U.S. economy grew 3.5% last year. Analysts at J.P. Morgan expected less.",
            ["The U.S. economy grew 3.5% last year.", "Analysts at J.P. Morgan expected less."],
        ),
        (
            '"We are done," she said. "Really?" he asked. Then they left.',
            ['"We are done," she said.', '"Really?" he asked.', "Then they left."],
        ),
        (
            "He works for Apple Inc. in California. The vote was 5-4",
            ["He works for Apple Inc. in California.", "The vote was 5-4"],
        ),
        (
            "See e.g. the report, i.e. the main one. It is long.",
            ["See e.g. the report, i.e. the main one.", "It is long."],
        ),
    ],
)
def test_english_hard_cases(text: str, expected: list[str]) -> None:
    assert split_sentences(text, "en") == expected


def test_english_hard_wrapped_lines_are_joined() -> None:
    text = (
        "This sentence was hard-wrapped by an editor at a fixed width of\n"
        "seventy-two columns, as plain-text mail often is. A second one follows."
    )
    sentences = split_sentences(text, "en")
    assert len(sentences) == 2
    assert "\n" in sentences[0]  # original text kept, line break included
    _covers(text, sentences)


# -- Kiwi analysis -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("인공지능은", ["인공지능"]),
        ("인공지능을", ["인공지능"]),
        ("인공지능의", ["인공지능"]),
        ("투자하는", ["투자"]),
        ("투자를", ["투자"]),
        ("GPT-4를 바꿨다", ["gpt", "4", "바꾸다"]),
        ("정책과 규제가 중요하다", ["정책", "규제", "중요"]),
    ],
)
def test_content_morphemes_inflections(text: str, expected: list[str]) -> None:
    assert content_morphemes(text) == expected


def test_analyze_one_pass_gives_sentences_and_morphemes() -> None:
    text = "인공지능은 투자를 바꾼다. 경제 정책도 바뀐다."
    analysis = analyze(text)
    assert [s.text for s in analysis.sentences] == [
        "인공지능은 투자를 바꾼다.",
        "경제 정책도 바뀐다.",
    ]
    assert analysis.sentences[0].morphemes == ("인공지능", "투자", "바꾸다")
    assert "정책" in analysis.sentences[1].morphemes
    assert analysis.morphemes[:2] == ["인공지능", "투자"]
    assert analyze("   ").sentences == ()


def test_batches_give_what_one_text_at_a_time_gives() -> None:
    texts = [
        "인공지능은 투자를 바꾼다. 경제 정책도 바뀐다.",
        "",
        "   ",
        '그는 말했다."좋아." 그리고 떠났다',
        "오늘은 날씨가 좋다. 내일은 비가 온다고 한다! 정말일까? 우산을 챙겨야 한다",
    ]
    assert analyze_many(texts) == [analyze(t) for t in texts]
    assert analyze_many([]) == []
    mixed = [
        *texts,
        "이 글은 한국어로 시작한다. 두 번째 문장이다.\n\nDr. Smith moved to the U.S. in 2020.",
        "The U.S. economy grew 3.5% last year. Analysts at J.P. Morgan expected less.",
    ]
    hints: list[str | None] = [None, "ko", "en", "auto", "ko", None, "en"]
    assert split_spans_many(mixed, hints) == [
        split_spans(t, h) for t, h in zip(mixed, hints, strict=True)
    ]


def test_hangul_share_counts_syllables_and_jamo() -> None:
    assert hangul_share("ㅋㅋ 좋아 ok") == (4 / 6, 6)
    assert hangul_share("123 !!") == (0.0, 0)
