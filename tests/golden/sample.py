"""The sample digests the email tests, goldens, screenshots and benchmark share.

Everything is pinned: the posts come from the bundled feed (`samples/haebom/feed.atom`), the
clock is fixed (Monday 23 November 2026, 08:00 in Seoul), summaries are the posts' lead
sentences (no summarizer, so a change there cannot move the goldens) and sections come from a
fixed tag-to-section table. Nothing here reads the process locale or the current time.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.compose.formatting import reading_minutes
from digest.compose.message import MessageTemplate
from digest.compose.render import RenderedDigest, Renderer
from digest.config import SourceConfig
from digest.models import Digest, DigestItem, Post, Recipient, Section, SiteInfo, Summary
from digest.sources.feed import read_feed

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "samples" / "haebom" / "feed.atom"

# Monday 23 November 2026, 08:00 Asia/Seoul: the sample schedule's send time.
CREATED = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
SITE = SiteInfo(
    name="해봄의 아카이브",
    url="https://haebom.example",
    language="ko",
    timezone="Asia/Seoul",
    description="IT, 경제, 인문학에 대한 이야기를 남깁니다.",
    postal_address="서울특별시 중구 세종대로 110, 04524",
    archive_url="https://haebom.example/digest/archive",
)
SENDER = "해봄의 아카이브 <digest@haebom.example>"
COVER_IMAGE = "https://haebom.example/images/cover-01.png"
COVER_ALT = "노트 위에 놓인 펜과 커피잔"

# First matching tag wins; posts with none of these land in "새 글".
SECTIONS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("ai", "인공지능", frozenset({"인공지능", "LLM", "에이전트", "프롬프트", "멀티모달"})),
    ("economy", "경제·투자", frozenset({"경제", "투자", "반도체", "빅테크"})),
    ("humanities", "인문학", frozenset({"인문학", "철학", "역사", "사회", "윤리"})),
    ("work", "업무와 제품", frozenset({"업무", "제품", "스타트업", "애자일", "UX", "SaaS"})),
)
OTHER = ("all", "새 글")

_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")


def sample_posts() -> list[Post]:
    """The 35 posts of the sample feed, newest first."""
    source = SourceConfig(name="haebom", url=str(FEED), language="ko")
    result = read_feed(source, FEED.read_bytes())
    return sorted(result.posts, key=lambda p: p.published, reverse=True)


def lead_summary(post: Post, sentences: int = 3, max_chars: int = 400) -> Summary:
    """The post's first sentences, as many as fit in `max_chars` (at least one)."""
    picked: list[str] = []
    total = 0
    for paragraph in post.text.split("\n\n"):
        for sentence in _SENTENCE_END.split(paragraph.strip()):
            if not sentence:
                continue
            if picked and (len(picked) >= sentences or total + len(sentence) > max_chars):
                return Summary("ko", tuple(picked), "lead")
            picked.append(sentence)
            total += len(sentence)
    return Summary("ko", tuple(picked), "lead")


def _section_of(post: Post) -> tuple[str, str]:
    for tag in post.tags:
        for key, title, tags in SECTIONS:
            if tag in tags:
                return key, title
    return OTHER


def build_digest(
    posts: list[Post],
    *,
    issue_number: int = 42,
    created: datetime = CREATED,
    digest_id: str = "20261122T230000Z-sample-all",
) -> Digest:
    grouped: dict[tuple[str, str], list[DigestItem]] = {}
    order = [(key, title) for key, title, _ in SECTIONS] + [OTHER]
    for post in posts:
        item = DigestItem(
            post=post,
            summary=lead_summary(post),
            reading_minutes=reading_minutes(post.text, "ko"),
        )
        grouped.setdefault(_section_of(post), []).append(item)
    sections = tuple(
        Section(key, title, tuple(grouped[(key, title)]))
        for key, title in order
        if grouped.get((key, title))
    )
    count = sum(len(s.items) for s in sections)
    return Digest(
        id=digest_id,
        site=SITE,
        created=created,
        issue_number=issue_number,
        subject=f"{SITE.name} 다이제스트 #{issue_number} · 2026년 11월 23일 (월)",
        sections=sections,
        intro=f"이번 주 새 글 {count}편을 골라 요약했습니다.",
    )


def sample_digest() -> Digest:
    """A typical week: the six newest posts, the first with a cover image."""
    posts = sample_posts()[:6]
    posts[0] = replace(posts[0], image=COVER_IMAGE, image_alt=COVER_ALT)
    return build_digest(posts)


def largest_week_digest() -> Digest:
    """All 35 sample posts published in the same week: the largest digest the sample makes."""
    posts = sample_posts()
    step = timedelta(days=7) / (len(posts) + 1)
    week = [replace(p, published=CREATED - step * (i + 1)) for i, p in enumerate(posts)]
    return build_digest(week, digest_id="20261122T230000Z-largest-all")


# --- what the goldens, screenshots, spam check and benchmark are made of ------------------

GOLDEN_DIR = Path(__file__).resolve().parent
SCREENSHOT_DIR = ROOT / "docs" / "screenshots"
RECIPIENT = Recipient(
    email="minji.kim@example.com",
    name="김민지",
    unsubscribe_url="https://haebom.example/digest/u/bWluamkua2ltQGV4YW1wbGUuY29t.q2Wd3b7Ls1k0Xy9f",
    preferences_url="https://haebom.example/digest/p/bWluamkua2ltQGV4YW1wbGUuY29t.Zt8Jd0pQx4c2Mv1a",
)


def golden_outputs() -> dict[str, str]:
    """File name in tests/golden/ -> its expected content."""
    rendered = Renderer().render(sample_digest())
    return {"sample.html": rendered.html, "sample.txt": rendered.text}


def message_template(rendered: RenderedDigest, digest: Digest) -> MessageTemplate:
    return MessageTemplate(
        rendered,
        digest_id=digest.id,
        sender=SENDER,
        list_id=SITE.name,
        date=digest.created,
        reply_to="",
    )


def sample_message(recipient: Recipient = RECIPIENT) -> bytes:
    """The sample digest as one recipient receives it: exactly what MessageTemplate builds,
    with the Return-Path the final delivery adds. No Received lines: a made-up relay path
    would only earn or lose SpamAssassin's network-trust points, which say nothing about
    the message."""
    digest = sample_digest()
    envelope = message_template(Renderer().render(digest), digest).build(recipient)
    return f"Return-Path: <{envelope.sender}>\r\n".encode("ascii") + envelope.data


def cover_png(width: int = 552, height: int = 276) -> bytes:
    """A small, soft gradient PNG standing in for the sample cover image (no network)."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            t = (x / width + y / height) / 2
            rows += bytes((int(30 + 60 * t), int(64 + 100 * t), int(175 + 60 * t)))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )
