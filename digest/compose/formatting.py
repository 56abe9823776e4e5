"""Pure formatting helpers for the compose stage: dates, reading time, text wrapping.

Nothing here depends on the process locale; Korean and English labels are spelled out.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = [
    "display_width",
    "format_date",
    "format_reading_time",
    "reading_minutes",
    "wrap",
]

_KO_WEEKDAYS = ("월", "화", "수", "목", "금", "토", "일")
_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

KO_CHARS_PER_MINUTE = 500
EN_WORDS_PER_MINUTE = 230


def _is_korean(language: str | None) -> bool:
    return (language or "").lower().split("-")[0] == "ko"


def _localize(dt: datetime, timezone: str) -> datetime:
    if dt.tzinfo is None:  # naive datetimes are taken as UTC, like everything in the store
        dt = dt.replace(tzinfo=ZoneInfo("UTC"))
    return dt.astimezone(ZoneInfo(timezone))


def format_date(dt: datetime, language: str, timezone: str, *, short: bool = False) -> str:
    """A human date in the site's language and time zone.

    ko: "2026년 11월 23일 (월)"        (short: "2026년 11월 23일")
    en: "Monday, November 23, 2026"   (short: "23 Nov 2026")
    """
    local = _localize(dt, timezone)
    if _is_korean(language):
        base = f"{local.year}년 {local.month}월 {local.day}일"
        return base if short else f"{base} ({_KO_WEEKDAYS[local.weekday()]})"
    if short:
        return f"{local.day} {_EN_MONTHS[local.month - 1][:3]} {local.year}"
    weekday = _EN_WEEKDAYS[local.weekday()]
    return f"{weekday}, {_EN_MONTHS[local.month - 1]} {local.day}, {local.year}"


def reading_minutes(text: str, language: str | None) -> int:
    """Estimated reading time: Korean ~500 characters/min, others ~230 words/min; at least 1."""
    if _is_korean(language):
        count = sum(1 for ch in text if not ch.isspace())
        minutes = count / KO_CHARS_PER_MINUTE
    else:
        minutes = len(text.split()) / EN_WORDS_PER_MINUTE
    return max(1, math.floor(minutes + 0.5))


def format_reading_time(minutes: int, language: str) -> str:
    """ "5분" (ko) or "5 min read" (en)."""
    minutes = max(1, int(minutes))
    return f"{minutes}분" if _is_korean(language) else f"{minutes} min read"


# --- wrapping ------------------------------------------------------------------------------

_URL_RE = re.compile(r"^[<(\[]?(?:https?://|mailto:|www\.)", re.IGNORECASE)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or ch in "\u200b\u200c\u200d\ufeff":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Terminal columns taken by `text` (Hangul and other wide characters count as 2)."""
    return sum(_char_width(ch) for ch in text)


def _is_url(token: str) -> bool:
    return bool(_URL_RE.match(token)) or "%%DIGEST_" in token


def _split_long(token: str, width: int) -> list[str]:
    """Hard-break a token wider than `width` into pieces (never used for URLs)."""
    pieces: list[str] = []
    current, cur_w = "", 0
    for ch in token:
        w = _char_width(ch)
        if current and cur_w + w > width:
            pieces.append(current)
            current, cur_w = "", 0
        current += ch
        cur_w += w
    if current:
        pieces.append(current)
    return pieces


def _wrap_paragraph(text: str, width: int, initial: str, subsequent: str) -> list[str]:
    lines: list[str] = []
    prefix = initial
    current: list[str] = []
    cur_w = 0

    def flush() -> None:
        nonlocal prefix, current, cur_w
        lines.append(prefix + " ".join(current))
        prefix, current, cur_w = subsequent, [], 0

    for token in text.split():
        tw = display_width(token)
        avail = width - display_width(prefix)
        if current and cur_w + 1 + tw > avail:
            flush()
            avail = width - display_width(prefix)
        if tw > avail and not _is_url(token):
            # Korean words are separated by spaces, so this only hits very long runs
            # (unspaced CJK text, long identifiers): break them by characters.
            for piece in _split_long(token, avail):
                if current:
                    flush()
                current, cur_w = [piece], display_width(piece)
            continue
        if current:
            cur_w += 1 + tw
            current.append(token)
        else:
            current, cur_w = [token], tw  # a URL wider than the line stays whole, alone
    if current:
        flush()
    return lines


def wrap(
    text: str,
    width: int = 76,
    indent: str = "",
    subsequent_indent: str | None = None,
) -> str:
    """Wrap `text` to `width` terminal columns.

    Breaks at spaces (Korean eojeol boundaries, like CSS `word-break: keep-all`), counts wide
    characters as two columns, never breaks inside a URL (a URL longer than the line gets a
    line to itself), and keeps paragraph breaks. Unspaced runs longer than a line are split.
    """
    if subsequent_indent is None:
        subsequent_indent = indent
    out: list[str] = []
    first = indent
    for paragraph in text.splitlines():
        if not paragraph.strip():
            out.append("")
            continue
        out.extend(_wrap_paragraph(paragraph, width, first, subsequent_indent))
        first = subsequent_indent
    return "\n".join(out)
