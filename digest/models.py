"""The data that flows through the pipeline: plain, frozen dataclasses.

Sources produce `Post`s; summarizing adds `Summary`s; selection groups them into `Section`s;
the composed, immutable `Digest` is then handed to outputs (preview, .eml, SMTP).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

ALL_SECTION = "all"  # the section key of an unthemed digest (everything)


@dataclass(frozen=True)
class Post:
    """One article as read from a source. `published` is timezone-aware (UTC)."""

    source: str
    guid: str
    url: str
    title: str
    text: str  # plain text, paragraphs separated by blank lines
    published: datetime
    author: str = ""
    updated: datetime | None = None
    tags: tuple[str, ...] = ()
    description: str = ""  # the source's own summary or teaser, if any
    image: str | None = None
    image_alt: str = ""
    language: str | None = None  # the source's declared language, if any
    reactions: int | None = None
    comments: int | None = None
    # When the store first saw it (None before it is stored): a post that arrives late (a
    # backdated post, a feed that caught up) is new from then on, whatever its date says.
    first_seen: datetime | None = None

    @property
    def arrived(self) -> datetime:
        """When the post became available to a digest: published, or first seen if later."""
        if self.first_seen is None or self.first_seen <= self.published:
            return self.published
        return self.first_seen

    @property
    def key(self) -> str:
        """Identity within the store: source name plus guid."""
        return f"{self.source}:{self.guid}"


@dataclass(frozen=True)
class Summary:
    """An extractive summary: sentences copied verbatim from the post, in the post's order."""

    language: str  # "ko" or "en"
    sentences: tuple[str, ...]
    algorithm: str = ""


@dataclass(frozen=True)
class DigestItem:
    post: Post
    summary: Summary
    reading_minutes: int
    themes: tuple[str, ...] = ()
    score: float = 0.0


@dataclass(frozen=True)
class Section:
    key: str  # a theme key, or "all" for an unthemed digest
    title: str
    items: tuple[DigestItem, ...]


@dataclass(frozen=True)
class SiteInfo:
    name: str
    url: str
    language: str  # "ko" or "en"
    timezone: str  # IANA name
    description: str = ""
    postal_address: str = ""
    archive_url: str = ""


@dataclass(frozen=True)
class Digest:
    """A complete, immutable digest: what every output renders."""

    id: str
    site: SiteInfo
    created: datetime  # timezone-aware
    issue_number: int
    subject: str
    sections: tuple[Section, ...]
    themes: tuple[str, ...] = ()  # the theme keys this digest variant serves; () = everything
    intro: str = ""
    # The editor's note for this issue (approval), shown on top of both parts; Markdown.
    note: str = ""
    overflow: tuple[DigestItem, ...] = field(default=())  # shown as title-and-link lines only
    # The readers' language ("ko" or "en") for the fixed words and dates; "" = the site's.
    language: str = ""

    @property
    def items(self) -> tuple[DigestItem, ...]:
        return tuple(item for section in self.sections for item in section.items)


@dataclass(frozen=True)
class Recipient:
    """Per-recipient values filled into a compiled digest."""

    email: str
    name: str = ""
    unsubscribe_url: str = ""
    preferences_url: str = ""
