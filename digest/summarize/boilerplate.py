"""Sentences that are page furniture rather than content: captions, bylines, contact lines,
subscription pleas, copyright notices, table rows. They are never chosen and do not vote in
centrality (a byline repeated in every paragraph would otherwise look central)."""

from __future__ import annotations

import re

# The lookbehind keeps it linear: without it, a 200,000-letter word takes minutes.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL_ONLY = re.compile(r"^\W*(?:https?://|www\.)\S+\W*$", re.IGNORECASE)
_CAPTION = re.compile(
    r"^\s*[\[(<【]?\s*(?:사진|이미지|그래픽|자료|출처|영상|캡처|제공|일러스트|photo|image|source|credit|getty)"
    r"\s*(?:=|:|／|/|제공|출처|\]|\))",
    re.IGNORECASE,
)
_BYLINE = re.compile(
    r"^\s*(?:[\[(【]\s*[^\])】]{1,20}=\s*[^\])】]{1,15}[\])】]\s*)?"  # (서울=연합뉴스)
    r"(?:[가-힣]{2,4}\s*(?:기자|특파원|객원기자|선임기자|논설위원|에디터|리포터)\s*=?"
    r"|by\s+[A-Z][\w.\- ]{1,40}$)",
    re.IGNORECASE,
)
_NEWS_TAG = re.compile(r"^\s*[\[(【][^\])】]{1,25}=[^\])】]{1,15}[\])】]")
_PLEA = re.compile(
    # Narrow patterns: "구독 경제" or a post about newsletters is content, "구독 부탁" is not.
    r"구독(?:과|하기|하세요|해\s*주|버튼|신청|부탁)|좋아요(?:와|랑|\s*부탁)|알림\s*설정|무단\s*전재|재배포\s*금지|"
    r"저작권자|ⓒ|©|copyright|all rights reserved|"
    r"^(?:subscribe|sign up)\b|subscribe (?:now|today|here|to (?:our|my|the|this) newsletter)|"
    r"sign up for (?:our|my|the|this) newsletter|follow us|click here|read more|share this|"
    r"관련\s*기사|기사\s*제보|제보하기|광고\s*문의|앱\s*다운로드",
    re.IGNORECASE,
)
# Captions that do not start with a credit word: Korean news marks them with a triangle
# (`▲ 14일 서울 ...`) or ends them with the credit (`... 모습. /사진=홍길동 기자`,
# `(사진=연합뉴스)`).
_CAPTION_MARK = re.compile(r"^\s*[▲△▶▷]")
_CAPTION_CREDIT = re.compile(
    r"[/(\[]\s*(?:사진|그래픽|자료|이미지|영상)\s*[=:／]\s*[^)\]]{0,40}[)\]]?\s*$"
    r"|^\s*(?:photo|image|illustration|graphic|video)s?\s*(?:by|credit|courtesy)\b",
    re.IGNORECASE,
)


# A table row flattened into text: cells separated by bars or tabs
# (`2사분면 | 소비자 우위 (...): 애플 (Apple): (4, -2)`). Counted, not matched: a regular
# expression that looks for the separators from every position is quadratic on long text.
def _table_row(text: str) -> bool:
    return (
        text.count(" | ") >= 2
        or text.count("\t") >= 2
        or text.startswith("|")
        or text.endswith("|")
    )


# One bar between a label and values (`label | a: b: (4, -2)`): a row of a two-column table.
_TABLE_PAIR = re.compile(r"^[^|]{1,30}\s\|\s(?=.*(?::.*:|\(\s*-?\d+(?:\.\d+)?\s*,\s*-?\d))")
# Sign-offs: thanks and farewells close a post; they are not what it says.
_SIGN_OFF = re.compile(
    r"^\s*(?:(?:special|many|huge|big) )?thanks?(?: you)?\b|^\s*we(?:'d| would) like to thank\b"
    r"|읽어\s*주셔서\s*(?:감사|고맙)|(?:^|\s)(?:감사|고맙)(?:합니다|드립니다|습니다)[.!~]*\s*$"
    r"|다음\s*(?:글|편|시간)에서\s*(?:만나|뵙|뵐)",
    re.IGNORECASE,
)
_SIGN_OFF_CHARS = 200
# With a byline prefix, a news lead still carries its news after the prefix; only drop it
# when what is left is too short to be a sentence.
_MIN_REST = 25


def is_boilerplate(sentence: str) -> bool:
    text = sentence.strip()
    if not text:
        return True
    if _URL_ONLY.match(text) or _CAPTION.match(text) or _CAPTION_MARK.match(text):
        return True
    if _CAPTION_CREDIT.search(text) or _table_row(text) or _TABLE_PAIR.search(text):
        return True
    if _EMAIL.search(text):
        return True
    if _PLEA.search(text) and len(text) < 160:
        return True
    if _SIGN_OFF.search(text) and len(text) < _SIGN_OFF_CHARS:
        return True
    match = _BYLINE.match(text) or _NEWS_TAG.match(text)
    return bool(match and len(text) - match.end() < _MIN_REST)
