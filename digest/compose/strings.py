"""The email's fixed words in Korean and English: one catalog for the template's labels, the
section titles, the intro and the subject, chosen per reader (`reader_language`).

Pure data, at the bottom of the import graph: the renderer, planning and the web pages may
all read it. Post content (titles, summaries) is never translated.
"""

from __future__ import annotations

__all__ = ["EMAIL", "LANGUAGES", "NAME_TOKEN", "language_tag", "reader_language"]

LANGUAGES = ("ko", "en")

# The recipient's name as it stands in a greeting (digest.compose.render.PLACEHOLDERS["name"]).
NAME_TOKEN = "%%DIGEST_NAME%%"

EMAIL: dict[str, dict[str, str]] = {
    "ko": {
        "issue": "제{n}호",
        "greeting_named": f"{NAME_TOKEN}님, 안녕하세요.",
        "greeting": "안녕하세요.",
        "preheader": "이번 호",
        "read_more": "더 읽기",
        "by": "글",
        "more_items": "더 볼 만한 글",
        "more_in_archive": "지난 글 전체 보기 (아카이브)",
        "archive": "아카이브",
        "why": "{email} 주소로 구독 신청하신 {site} 메일입니다.",
        "why_text": "{site} 소식 받기를 신청하신 다음 주소로 보내 드린 메일입니다:",
        "unsubscribe": "구독 취소",
        "preferences": "구독 설정",
        "view_online": "웹에서 보기",
        # Planning: the everything-section's title, the intro line, the subject's word.
        "all": "새 글",
        "intro": "이번 주 새 글 {n}편을 골라 요약했습니다.",
        "digest": "다이제스트",
    },
    "en": {
        "issue": "Issue {n}",
        "greeting_named": f"Hi {NAME_TOKEN},",
        "greeting": "Hi there,",
        "preheader": "In this issue",
        "read_more": "Read more",
        "by": "by",
        "more_items": "More worth reading",
        "more_in_archive": "More in the archive",
        "archive": "Archive",
        "why": "You are receiving this because {email} subscribed to {site}.",
        "why_text": "You are receiving this because this address subscribed to {site}:",
        "unsubscribe": "Unsubscribe",
        "preferences": "Manage preferences",
        "view_online": "View online",
        "all": "New posts",
        "intro": "{n} new posts this week, summarized.",
        "digest": "digest",
    },
}


def language_tag(value: str | None) -> str:
    """The primary subtag of a language tag, lowercased: "en-US" and "EN_gb" are "en"."""
    return (value or "").strip().lower().replace("_", "-").split("-")[0]


def reader_language(value: str | None, default: str) -> str:
    """The language a reader gets: theirs when it is one the catalog has ("ko", "en", or a
    tag like "en-US"), else `default` (the site's)."""
    tag = language_tag(value)
    return tag if tag in EMAIL else default
