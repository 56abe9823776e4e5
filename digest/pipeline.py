"""The two phases of a send: plan (select, summarize, compose immutable digests) then deliver.

`plan_edition` reads the store and returns an `Edition`: one composed digest per variant
(subscribers who chose the same themes share one), each rendered once. `deliver_edition`
writes a pending row per recipient before anything goes out, hands each personalized message
to a sender with bounded concurrency, and settles each row with the server's reply.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from digest.compose.formatting import format_date, reading_minutes
from digest.compose.render import RenderedDigest, Renderer
from digest.config import Config
from digest.models import Digest, DigestItem, Post, Section, SiteInfo, Summary
from digest.select import ALL, Pick, dedupe_sections, select_section, variant_key
from digest.store import Store, StoredSubscriber
from digest.summarize import SummaryRequest, summarize_batch, summarizer_version

LABELS = {
    "ko": {
        "all": "새 글",
        "intro": "이번 주 새 글 {n}편을 골라 요약했습니다.",
        "digest": "다이제스트",
    },
    "en": {"all": "New posts", "intro": "{n} new posts this week, summarized.", "digest": "digest"},
}


@dataclass(frozen=True)
class Variant:
    key: str  # sorted theme keys; "" = everything
    digest: Digest
    rendered: RenderedDigest
    sections: dict[str, list[str]]  # section key -> post keys, as recorded in the store
    recipients: tuple[StoredSubscriber, ...]


@dataclass(frozen=True)
class Edition:
    id: str
    issue_number: int
    theme: str | None
    variants: tuple[Variant, ...]
    quiet: tuple[StoredSubscriber, ...] = field(default=())  # nothing new for their themes

    @property
    def recipients(self) -> int:
        return sum(len(v.recipients) for v in self.variants)


def site_info(config: Config) -> SiteInfo:
    site = config.site
    return SiteInfo(
        name=site.name,
        url=site.url,
        language=site.language,
        timezone=site.timezone,
        description=site.description,
        postal_address=site.postal_address,
        archive_url=f"{config.web.base_url.rstrip('/')}/archive",
    )


def summary_cache_key(post: Post, config: Config) -> str:
    settings = json.dumps(asdict(config.summary), sort_keys=True)
    # The source's declared language is a hint for detection, so it is part of the key too;
    # so are the summarizer's and Kiwi's versions, so that an upgrade does not serve old
    # summaries.
    hint = post.language or ""
    version = summarizer_version()
    payload = "\x1e".join([version, settings, post.title, post.text, post.description, hint])
    return hashlib.sha256(payload.encode()).hexdigest()


def summarize_post(post: Post, config: Config, store: Store) -> Summary:
    """The post's summary, from the cache when the content and settings are unchanged."""
    return summarize_posts([post], config, store)[0]


def summarize_posts(posts: Sequence[Post], config: Config, store: Store) -> list[Summary]:
    """Summaries of `posts`, in order: cached ones from the store (keyed by content and
    settings), the rest summarized together in one batch and then cached."""
    keys = [summary_cache_key(post, config) for post in posts]
    found: dict[str, Summary] = {}
    missing: dict[str, Post] = {}
    for key, post in zip(keys, posts, strict=True):
        if key in found or key in missing:
            continue
        cached = store.cached_summary(key)
        if cached is not None:
            found[key] = cached
        else:
            missing[key] = post
    if missing:
        # The source's declared language is the hint when the settings say "auto".
        requests = [
            SummaryRequest(p.text, p.title, p.language, p.description) for p in missing.values()
        ]
        fresh = summarize_batch(requests, config=config.summary)
        for key, summary in zip(missing, fresh, strict=True):
            store.cache_summary(key, summary)
            found[key] = summary
    return [found[key] for key in keys]


class Planner:
    """Selects and composes the digests of one edition; sections are computed once each."""

    def __init__(self, config: Config, store: Store, renderer: Renderer, now: datetime) -> None:
        self.config = config
        self.store = store
        self.renderer = renderer
        self.now = now
        self._sections: dict[str, list[Pick]] = {}
        self._summaries: dict[str, Summary] = {}
        self._candidates: list[Post] = []
        self._loaded_since: datetime | None = None

    def _posts(self, since: datetime) -> list[Post]:
        """Posts published after `since`, up to now. Loaded once for the oldest `since` asked
        so far (sections usually share one), never the whole archive."""
        if self._loaded_since is None or since < self._loaded_since:
            self._candidates = self.store.posts_since(since, self.now)
            self._loaded_since = since
        return [p for p in self._candidates if p.published > since]

    def section(self, key: str) -> list[Pick]:
        if key not in self._sections:
            theme = None if key == ALL else self.config.theme(key)
            last = self.store.last_sent(key)
            lookback = self.now - timedelta(days=self.config.selection.lookback_days)
            since = last if last is not None else lookback
            self._sections[key] = select_section(
                self._posts(since),
                theme,
                since=since,
                until=self.now,
                already_sent=self.store.sent_post_keys(key),
                max_posts=self.config.selection.max_posts,
            )
        return self._sections[key]

    def _item(self, pick: Pick, themes: Sequence[str]) -> DigestItem:
        post = pick.post
        if post.key not in self._summaries:
            self._summaries[post.key] = summarize_post(post, self.config, self.store)
        summary = self._summaries[post.key]
        # The summary already carries the post's detected language.
        return DigestItem(
            post=post,
            summary=summary,
            reading_minutes=reading_minutes(post.text, post.language or summary.language),
            themes=tuple(themes),
            score=pick.score,
        )

    def compose(
        self, themes: tuple[str, ...], *, edition: str, issue_number: int, theme: str | None
    ) -> tuple[Digest, dict[str, list[str]]] | None:
        """The digest for subscribers who chose `themes` (() = everything), or None if empty."""
        lang = self.config.site.language
        keys = list(themes) if themes else [ALL]
        picked = dedupe_sections([(k, self.section(k)) for k in keys])
        sections: list[Section] = []
        recorded: dict[str, list[str]] = {}
        todo = [p.post for _, picks in picked for p in picks if p.post.key not in self._summaries]
        if todo:
            # One batch for the digest's new posts: Kiwi analyses them together.
            fresh = summarize_posts(todo, self.config, self.store)
            for post, summary in zip(todo, fresh, strict=True):
                self._summaries[post.key] = summary
        for key, picks in picked:
            if not picks:
                continue
            title = LABELS[lang]["all"] if key == ALL else self.config.theme(key).title_for(lang)
            items = tuple(self._item(p, [key] if key != ALL else []) for p in picks)
            sections.append(Section(key, title, items))
            recorded[key] = [p.post.key for p in picks]
        if not sections:
            return None
        count = sum(len(s.items) for s in sections)
        variant = variant_key(themes)
        digest = Digest(
            id=f"{edition}-{variant.replace(',', '+') or ALL}",
            site=site_info(self.config),
            created=self.now,
            issue_number=issue_number,
            subject=self.subject(issue_number, theme),
            sections=tuple(sections),
            themes=themes,
            intro=LABELS[lang]["intro"].format(n=count),
        )
        return digest, recorded

    def subject(self, issue_number: int, theme: str | None) -> str:
        site = self.config.site
        date = format_date(self.now, site.language, site.timezone)
        label = LABELS[site.language]["digest"]
        if theme:
            label = self.config.theme(theme).title_for(site.language)
        return f"{site.name} {label} #{issue_number} · {date}"


def new_edition_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def plan_edition(
    config: Config,
    store: Store,
    *,
    now: datetime,
    theme: str | None = None,
    recipients: Sequence[StoredSubscriber] | None = None,
    renderer: Renderer | None = None,
    planner: Planner | None = None,
) -> Edition:
    """Group recipients by their chosen themes and compose one digest per group.

    With `theme`, the edition is that theme's digest for every subscriber who chose it or
    chose nothing (everything). A `planner` shared between calls (the preview's many views)
    selects and summarizes each section once.
    """
    if theme is not None:
        config.theme(theme)  # unknown theme: ConfigError naming the known ones
    if planner is None:
        planner = Planner(config, store, renderer or Renderer(config.templates.folder), now)
    renderer = planner.renderer
    subs = list(recipients) if recipients is not None else store.subscribers(active_only=True)
    groups: dict[tuple[str, ...], list[StoredSubscriber]] = {}
    for sub in subs:
        if theme is not None:
            if sub.themes and theme not in sub.themes:
                continue
            wanted: tuple[str, ...] = (theme,)
        else:
            wanted = tuple(k for k in (t.key for t in config.themes) if k in sub.themes)
        groups.setdefault(wanted, []).append(sub)
    edition = new_edition_id(now)
    issue = store.next_issue_number()
    variants: list[Variant] = []
    quiet: list[StoredSubscriber] = []
    for wanted, members in groups.items():
        composed = planner.compose(wanted, edition=edition, issue_number=issue, theme=theme)
        if composed is None:
            quiet.extend(members)
            continue
        digest, recorded = composed
        rendered = renderer.render(digest)
        variants.append(Variant(variant_key(wanted), digest, rendered, recorded, tuple(members)))
    return Edition(edition, issue, theme, tuple(variants), tuple(quiet))


def preview_digest(
    config: Config,
    store: Store,
    *,
    now: datetime,
    theme: str | None = None,
    planner: Planner | None = None,
) -> tuple[Digest, RenderedDigest] | None:
    """What the next digest (of `theme`, or of everything) would look like, sending nothing."""
    planner = planner or Planner(config, store, Renderer(config.templates.folder), now)
    renderer = planner.renderer
    themes = (theme,) if theme else ()
    if theme:
        config.theme(theme)
    composed = planner.compose(
        themes, edition=new_edition_id(now), issue_number=store.next_issue_number(), theme=theme
    )
    if composed is None:
        return None
    return composed[0], renderer.render(composed[0])


# The delivery half lives in digest.outbox (it never imports the NLP stack); kept importable
# from here for callers that plan and send in one place.
from digest.outbox import (  # noqa: E402
    MessageFactory,
    deliver_recorded,
    record_edition,
    send_test_copies,
)

__all__ = [
    "Edition",
    "MessageFactory",
    "Planner",
    "Variant",
    "deliver_recorded",
    "plan_edition",
    "preview_digest",
    "record_edition",
    "send_test_copies",
]
