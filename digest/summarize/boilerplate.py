"""Sentences that are page furniture rather than content: captions, bylines, contact lines,
subscription pleas, copyright notices. They are never chosen and do not vote in centrality
(a byline repeated in every paragraph would otherwise look central)."""

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
# With a byline prefix, a news lead still carries its news after the prefix; only drop it
# when what is left is too short to be a sentence.
_MIN_REST = 25


def is_boilerplate(sentence: str) -> bool:
    text = sentence.strip()
    if not text:
        return True
    if _URL_ONLY.match(text) or _CAPTION.match(text):
        return True
    if _EMAIL.search(text):
        return True
    if _PLEA.search(text) and len(text) < 160:
        return True
    match = _BYLINE.match(text) or _NEWS_TAG.match(text)
    return bool(match and len(text) - match.end() < _MIN_REST)
