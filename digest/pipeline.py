"""The two phases of a send: plan (select, summarize, compose immutable digests) then deliver.

`plan_edition` reads the store and returns an `Edition`: one composed digest per variant
(subscribers who chose the same themes share one), each rendered once. `deliver_edition`
writes a pending row per recipient before anything goes out, hands each personalized message
to a sender with bounded concurrency, and settles each row with the server's reply.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta

from digest.compose.formatting import format_date, reading_minutes
from digest.compose.message import Envelope, MessageTemplate, message_id, parse_sender
from digest.compose.render import RenderedDigest, Renderer
from digest.config import Config
from digest.models import Digest, DigestItem, Post, Recipient, Section, SiteInfo, Summary
from digest.select import ALL, Pick, dedupe_sections, select_section, variant_key
from digest.send import Sender
from digest.send.dkim import DKIMSigner
from digest.send.delivery import Clock, DeliveryReport, run_deliveries
from digest.store import Store, StoredSubscriber
from digest.summarize import summarize
from digest.text.lang import detect_language
from digest.tokens import load_secret, make_token

LABELS = {
    "ko": {"all": "새 글", "intro": "이번 주 새 글 {n}편을 골라 요약했습니다.", "digest": "다이제스트"},
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
    payload = "\x1e".join([settings, post.title, post.text, post.description])
    return hashlib.sha256(payload.encode()).hexdigest()


def summarize_post(post: Post, config: Config, store: Store) -> Summary:
    """The post's summary, from the cache when the content and settings are unchanged."""
    key = summary_cache_key(post, config)
    cached = store.cached_summary(key)
    if cached is not None:
        return cached
    language = config.summary.language
    summary = summarize(
        post.text,
        title=post.title,
        config=config.summary,
        language=None if language == "auto" else language,
        description=post.description,
    )
    store.cache_summary(key, summary)
    return summary


class Planner:
    """Selects and composes the digests of one edition; sections are computed once each."""

    def __init__(self, config: Config, store: Store, renderer: Renderer, now: datetime) -> None:
        self.config = config
        self.store = store
        self.renderer = renderer
        self.now = now
        self._sections: dict[str, list[Pick]] = {}
        self._summaries: dict[str, Summary] = {}
        self._candidates: list[Post] | None = None

    def _posts(self, since: datetime) -> list[Post]:
        if self._candidates is None:
            oldest = self.now - timedelta(days=3650)
            self._candidates = self.store.posts_since(oldest, self.now)
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
        language = post.language or detect_language(post.text, self.config.site.language)
        return DigestItem(
            post=post,
            summary=summary,
            reading_minutes=reading_minutes(post.text, language),
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
) -> Edition:
    """Group recipients by their chosen themes and compose one digest per group.

    With `theme`, the edition is that theme's digest for every subscriber who chose it or
    chose nothing (everything).
    """
    if theme is not None:
        config.theme(theme)  # unknown theme: ConfigError naming the known ones
    renderer = renderer or Renderer(config.templates.folder)
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
    planner = Planner(config, store, renderer, now)
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
    config: Config, store: Store, *, now: datetime, theme: str | None = None
) -> tuple[Digest, RenderedDigest] | None:
    """What the next digest (of `theme`, or of everything) would look like, sending nothing."""
    renderer = Renderer(config.templates.folder)
    planner = Planner(config, store, renderer, now)
    themes = (theme,) if theme else ()
    if theme:
        config.theme(theme)
    composed = planner.compose(
        themes, edition=new_edition_id(now), issue_number=store.next_issue_number(), theme=theme
    )
    if composed is None:
        return None
    return composed[0], renderer.render(composed[0])


class MessageFactory:
    """Per-recipient values for one config: links signed with the store's secret."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.secret = load_secret(config)
        self.base = config.web.base_url.rstrip("/")
        self.domain = parse_sender(config.site.sender)[1].rpartition("@")[2]
        self._templates: dict[str, MessageTemplate] = {}
        d = config.delivery
        self.signer = (
            DKIMSigner.from_file(d.dkim_selector, d.dkim_domain or self.domain, d.dkim_key_file)
            if d.dkim_selector and d.dkim_key_file
            else None
        )

    def recipient(self, email: str, name: str = "") -> Recipient:
        return Recipient(
            email=email,
            name=name,
            unsubscribe_url=f"{self.base}/u/{make_token(self.secret, 'unsubscribe', email)}",
            preferences_url=f"{self.base}/p/{make_token(self.secret, 'preferences', email)}",
        )

    def template(self, digest_id: str, rendered: RenderedDigest, date: datetime) -> MessageTemplate:
        """The encoded message of one digest variant, made once and kept."""
        if digest_id not in self._templates:
            self._templates[digest_id] = MessageTemplate(
                rendered,
                digest_id=digest_id,
                sender=self.config.site.sender,
                list_id=self.config.site.name,
                date=date,
                reply_to=self.config.site.reply_to,
            )
        return self._templates[digest_id]

    def message_id(self, variant: Variant, email: str) -> str:
        return message_id(variant.digest.id, email, self.domain)

    def envelope(self, variant: Variant, sub: StoredSubscriber) -> Envelope:
        template = self.template(variant.digest.id, variant.rendered, variant.digest.created)
        return template.build(self.recipient(sub.email, sub.name))


def record_edition(edition: Edition, factory: MessageFactory, store: Store) -> None:
    """Write every variant and one pending row per recipient, before anything is sent."""
    for variant in edition.variants:
        store.record_digest(
            digest_id=variant.digest.id,
            edition=edition.id,
            issue_number=edition.issue_number,
            variant=variant.key,
            theme=edition.theme,
            subject=variant.rendered.subject,
            sections=variant.sections,
            html=variant.rendered.html,
            text=variant.rendered.text,
            recipients=(
                (s.email, factory.message_id(variant, s.email)) for s in variant.recipients
            ),
        )


async def deliver_recorded(
    edition_id: str,
    factory: MessageFactory,
    sender: Sender,
    store: Store,
    *,
    clock: Clock | None = None,
    on_progress: Callable[[DeliveryReport], None] | None = None,
    stop: asyncio.Event | None = None,
) -> DeliveryReport:
    """Send what is still pending or due in a recorded edition: a first send or a resume.

    The messages are rebuilt from the stored digests, so a resumed message is byte for byte
    the one the first attempt would have sent (same Message-ID, same Date).
    """
    stored = store.edition_digests(edition_id)
    templates = {
        d.id: factory.template(d.id, RenderedDigest(d.subject, d.html, d.text, ""), d.created)
        for d in stored
    }
    return await run_deliveries(
        store,
        templates,
        {d.id: d.created for d in stored},
        factory.recipient,
        sender,
        config=factory.config.delivery,
        concurrency=factory.config.smtp.concurrency,
        clock=clock,
        on_progress=on_progress,
        stop=stop,
        signer=factory.signer,
    )


async def send_test_copies(
    edition: Edition, factory: MessageFactory, sender: Sender
) -> DeliveryReport:
    """Send without recording anything (test copies): one message per listed recipient."""
    report = DeliveryReport()
    for variant in edition.variants:
        for sub in variant.recipients:
            try:
                envelope = factory.envelope(variant, sub)
            except ValueError as exc:
                report.add(sub.email, "failed", f"not sent: {exc}")
                continue
            if factory.signer is not None:
                envelope = replace(envelope, data=factory.signer.sign(envelope.data))
            outcome = await sender.send(envelope)
            report.add(sub.email, outcome.status, outcome.reply)
    return report
