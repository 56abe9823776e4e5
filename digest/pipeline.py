"""Planning, the first phase of a send: select, summarize and compose immutable digests.

`plan_edition` reads the store and returns an `Edition` (digest.edition): one composed
digest per variant (readers who chose the same themes, read the same language and have the
same history share one), each rendered once. The second phase, recording and delivering it,
is digest.outbox's.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta

from digest.compose.formatting import format_date, reading_minutes
from digest.compose.render import RenderedDigest, Renderer
from digest.compose.strings import EMAIL, reader_language
from digest.config import Config
from digest.edition import Edition, Readers, ReadersBuilder, Variant
from digest.models import Digest, DigestItem, Post, Section, SiteInfo, Summary
from digest.select import ALL, Pick, dedupe_sections, select_section, variant_key
from digest.store import DigestHistory, Store, StoredSubscriber
from digest.summarize import SummaryRequest, summarize_batch, summarizer_version
from digest.themes import ANALYSES, analysis_key, tokens_many
from digest.tokens import load_secret
from digest.tracking import click_links, open_pixel

# The section title, intro and subject words, with the template's (one catalog).
LABELS = EMAIL


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


def summary_request(post: Post, config: Config, shared: bool = False) -> SummaryRequest:
    """What to summarize for `post`, with its source's deck and text-kind settings (a post
    whose source is gone from the config gets the defaults); `shared`: other posts of the
    source carry the same description (`Store.shared_descriptions`)."""
    source = next((s for s in config.sources if s.name == post.source), None)
    return SummaryRequest(
        post.text,
        post.title,
        post.language,
        post.description,
        kind=source.text_kind if source else "auto",
        deck=source.deck if source else "",
        shared_description=shared,
    )


def summary_cache_key(post: Post, config: Config, shared: bool = False) -> str:
    settings = json.dumps(asdict(config.summary), sort_keys=True)
    # The source's declared language is a hint for detection, so it is part of the key too,
    # with its deck and text-kind settings and whether its description is shared; so are the
    # summarizer's and Kiwi's versions, so that an upgrade does not serve old summaries.
    request = summary_request(post, config, shared)
    hint = post.language or ""
    version = summarizer_version()
    parts = [version, settings, post.title, post.text, post.description, hint]
    extra = [request.kind, request.deck, "shared" if shared else ""]
    return hashlib.sha256("\x1e".join([*parts, *extra]).encode()).hexdigest()


def summarize_post(post: Post, config: Config, store: Store) -> Summary:
    """The post's summary, from the cache when the content and settings are unchanged."""
    return summarize_posts([post], config, store)[0]


def summarize_posts(posts: Sequence[Post], config: Config, store: Store) -> list[Summary]:
    """Summaries of `posts`, in order: cached ones from the store (keyed by content and
    settings), the rest summarized together in one batch and then cached."""
    shared = store.shared_descriptions({p.source for p in posts if p.description})
    flags = [(p.source, p.description) in shared for p in posts]
    keys = [summary_cache_key(p, config, f) for p, f in zip(posts, flags, strict=True)]
    found: dict[str, Summary] = {}
    missing: dict[str, tuple[Post, bool]] = {}
    for key, post, flag in zip(keys, posts, flags, strict=True):
        if key in found or key in missing:
            continue
        cached = store.cached_summary(key)
        if cached is not None:
            found[key] = cached
        else:
            missing[key] = (post, flag)
    if missing:
        # The source's declared language is the hint when the settings say "auto".
        requests = [summary_request(p, config, flag) for p, flag in missing.values()]
        fresh = summarize_batch(requests, config=config.summary)
        for key, summary in zip(missing, fresh, strict=True):
            store.cache_summary(key, summary)
            found[key] = summary
    return [found[key] for key in keys]


def prepare_analyses(posts: Sequence[Post], config: Config, store: Store) -> None:
    """Theme matching's analyses of `posts` and of the themes' words, from the store; the
    missing ones are made in one Kiwi batch and stored. Afterwards matching these posts
    needs no analyzer: a planner whose posts were prepared (`digest ingest` does it) never
    loads Kiwi's model."""
    if not config.themes or not posts:
        return
    words = [w for theme in config.themes for w in (*theme.keywords, *theme.exclude)]
    texts = list(dict.fromkeys([*(p.title for p in posts), *(p.text for p in posts), *words]))
    keys = {analysis_key(text): text for text in texts}
    stored = store.cached_analyses(keys)
    missing = [text for key, text in keys.items() if key not in stored]
    made = tokens_many(missing) if missing else []
    store.cache_analyses({analysis_key(t): a for t, a in zip(missing, made, strict=True)})
    ANALYSES.remember(
        {keys[k]: a for k, a in stored.items()} | dict(zip(missing, made, strict=True))
    )


def prepare_posts(config: Config, store: Store, now: datetime) -> int:
    """Analyse and summarize the posts a digest could carry now (arrived within the
    lookback), so that planning finds both in the store; the number of posts."""
    window = now - timedelta(days=config.selection.lookback_days)
    posts = store.posts_arrived_since(window, now)
    prepare_analyses(posts, config, store)
    summarize_posts(posts, config, store)
    return len(posts)


def render_for_edition(
    config: Config,
    renderer: Renderer,
    edition: str,
    digest: Digest,
    secret: Callable[[], bytes],
) -> RenderedDigest:
    """`digest` rendered as edition `edition` sends it: with `[tracking] clicks`, its post
    links counted (`digest.tracking`), with `opens`, the edition's pixel. `secret` gives the
    link secret, asked for only when tracking is on."""
    tracking = config.tracking
    if not tracking.clicks and not tracking.opens:  # tracking off: the very call it always was
        return renderer.render(digest)
    base = config.web.base_url
    links = click_links(base, secret(), edition, digest) if tracking.clicks else None
    pixel = open_pixel(base, secret(), edition) if tracking.opens else ""
    return renderer.render(digest, links=links, pixel=pixel)


History = frozenset[str]  # the ids of the digests a reader got within the lookback


class Planner:
    """Selects and composes the digests of one edition.

    "New" is per reader: a post goes to a reader who has not been sent it yet, if it arrived
    (was published, or first seen if later) after the last digest that reader got for that
    section, within `lookback_days`. Readers with the same history and themes share one
    selection, so each section is selected and summarized once per distinct history.
    """

    def __init__(self, config: Config, store: Store, renderer: Renderer, now: datetime) -> None:
        self.config = config
        self.store = store
        self.renderer = renderer
        self.now = now
        self.window = now - timedelta(days=config.selection.lookback_days)
        self._sections: dict[tuple[str, History, frozenset[str]], list[Pick]] = {}
        self._summaries: dict[str, Summary] = {}
        self._candidates: list[Post] | None = None
        self._digests: dict[str, DigestHistory] | None = None
        self._readers: dict[str, History] | None = None
        self._secret: bytes | None = None

    def _posts(self) -> list[Post]:
        """Posts that arrived within the lookback, up to now: loaded once."""
        if self._candidates is None:
            self._candidates = self.store.posts_arrived_since(self.window, self.now)
            prepare_analyses(self._candidates, self.config, self.store)
        return self._candidates

    def history(self, email: str) -> History:
        """The digests `email` got (or is being sent) within the lookback."""
        if self._readers is None:
            self._readers = self.store.readers_digests(self.window)
        return self._readers.get(email, frozenset())

    def _digest(self, digest_id: str) -> DigestHistory | None:
        if self._digests is None:
            self._digests = self.store.digest_history(self.window)
        return self._digests.get(digest_id)

    def section(
        self, key: str, history: History = frozenset(), extra: frozenset[str] = frozenset()
    ) -> list[Pick]:
        """Section `key` for a reader with `history`; `extra`: post keys planned for the
        same reader elsewhere in this run."""
        cache = (key, history, extra)
        if cache not in self._sections:
            theme = None if key == ALL else self.config.theme(key)
            got = [d for d in map(self._digest, sorted(history)) if d is not None]
            since = max((d.created for d in got if key in d.sections), default=self.window)
            received = set(extra).union(*(d.post_keys for d in got))
            self._sections[cache] = select_section(
                self._posts(),
                theme,
                since=max(since, self.window),
                until=self.now,
                already_sent=received,
                max_posts=self.config.selection.max_posts,
            )
        return self._sections[cache]

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

    def pick(
        self,
        themes: tuple[str, ...],
        history: History = frozenset(),
        extra: frozenset[str] = frozenset(),
    ) -> list[tuple[str, list[Pick]]]:
        """The non-empty sections for a reader who chose `themes` (() = everything)."""
        keys = list(themes) if themes else [ALL]
        picked = dedupe_sections([(k, self.section(k, history, extra)) for k in keys])
        return [(k, picks) for k, picks in picked if picks]

    def compose(
        self,
        themes: tuple[str, ...],
        *,
        edition: str,
        issue_number: int,
        theme: str | None,
        history: History = frozenset(),
        picked: list[tuple[str, list[Pick]]] | None = None,
        digest_id: str | None = None,
        language: str | None = None,
    ) -> tuple[Digest, dict[str, list[str]]] | None:
        """The digest for readers who chose `themes` (() = everything) with `history`, in
        `language` (None: the site's), or None if it would be empty."""
        lang = reader_language(language, self.config.site.language)
        if picked is None:
            picked = self.pick(themes, history)
        sections: list[Section] = []
        recorded: dict[str, list[str]] = {}
        todo = [p.post for _, picks in picked for p in picks if p.post.key not in self._summaries]
        if todo:
            # One batch for the digest's new posts: Kiwi analyses them together.
            fresh = summarize_posts(todo, self.config, self.store)
            for post, summary in zip(todo, fresh, strict=True):
                self._summaries[post.key] = summary
        for key, picks in picked:
            title = LABELS[lang]["all"] if key == ALL else self.config.theme(key).title_for(lang)
            items = tuple(self._item(p, [key] if key != ALL else []) for p in picks)
            sections.append(Section(key, title, items))
            recorded[key] = [p.post.key for p in picks]
        if not sections:
            return None
        count = sum(len(s.items) for s in sections)
        variant = variant_key(themes)
        digest = Digest(
            id=digest_id or f"{edition}-{variant.replace(',', '+') or ALL}",
            site=site_info(self.config),
            created=self.now,
            issue_number=issue_number,
            subject=self.subject(issue_number, theme, lang),
            sections=tuple(sections),
            themes=themes,
            intro=LABELS[lang]["intro"].format(n=count),
            language=lang,
        )
        return digest, recorded

    def _link_secret(self) -> bytes:
        if self._secret is None:
            self._secret = load_secret(self.config)
        return self._secret

    def render(self, edition: str, digest: Digest) -> RenderedDigest:
        """`digest` rendered as edition `edition` sends it (counted links, pixel)."""
        return render_for_edition(self.config, self.renderer, edition, digest, self._link_secret)

    def subject(self, issue_number: int, theme: str | None, language: str | None = None) -> str:
        site = self.config.site
        lang = reader_language(language, site.language)
        date = format_date(self.now, lang, site.timezone)
        label = LABELS[lang]["digest"]
        if theme:
            label = self.config.theme(theme).title_for(lang)
        return f"{site.name} {label} #{issue_number} · {date}"


def digest_base_id(edition: str, key: str, language: str, site_language: str) -> str:
    """The id of an edition's digest for the themes `key` in `language`. The site language's
    copy has the plain id, which sorts before the others, so the archive (which prefers the
    lowest id among equals) shows the site's language."""
    base = f"{edition}-{key.replace(',', '+') or ALL}"
    return base if language == site_language else f"{base}_{language}"


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
    planned: Mapping[str, frozenset[str]] | None = None,
) -> Edition:
    """Group recipients by what they get and compose one digest per group.

    With `theme`, the edition is that theme's digest for every subscriber who chose it or
    chose nothing (everything). Readers share a variant when their chosen themes, their
    language (theirs if ko or en, else the site's) and their selections are the same;
    readers whose history differs (one missed last week's digest) may get different posts
    under the same themes. `planned`: post keys already planned for a reader in this run
    (another edition of the same schedule), never repeated. A `planner` shared between calls
    (the preview's many views) selects and summarizes each section once per history.
    """
    if theme is not None:
        config.theme(theme)  # unknown theme: ConfigError naming the known ones
    if planner is None:
        planner = Planner(config, store, renderer or Renderer(config.templates.folder), now)
    # Streamed from the store (or the given list), each reader with their history; a group's
    # readers are packed as they come (digest.edition.Readers): memory grows with the
    # variants, and by some 20 bytes per reader, not with a list of a million objects.
    readers: Iterable[tuple[StoredSubscriber, History]] = (
        ((sub, planner.history(sub.email)) for sub in recipients)
        if recipients is not None
        else store.recipients_with_history(planner.window)
    )
    planned = planned or {}
    # Readers who chose the same themes, read the same language and have the same history
    # get the same digest.
    groups: dict[tuple[tuple[str, ...], str, History, frozenset[str]], ReadersBuilder] = {}
    site_language = config.site.language
    order = [t.key for t in config.themes]
    for sub, history in readers:
        if theme is not None:
            if sub.themes and theme not in sub.themes:
                continue
            wanted: tuple[str, ...] = (theme,)
        else:
            wanted = tuple(k for k in order if k in sub.themes)
        extra = planned.get(sub.email, frozenset())
        lang = reader_language(sub.language, site_language)
        group = groups.get((wanted, lang, history, extra))
        if group is None:
            group = groups[wanted, lang, history, extra] = ReadersBuilder()
        group.append(sub)
    # Groups whose selections (and language) came out the same share one variant.
    selections: dict[tuple[tuple[str, ...], str, tuple[tuple[str, tuple[str, ...]], ...]], int] = {}
    picked_for: list[list[tuple[str, list[Pick]]]] = []
    members_of: list[list[Readers]] = []
    wanted_of: list[tuple[tuple[str, ...], str]] = []
    quiet: list[Readers] = []
    for (wanted, lang, history, extra), group in groups.items():
        packed = group.build()
        picked = planner.pick(wanted, history, extra)
        if not picked:
            quiet.append(packed)
            continue
        signature = (wanted, lang, tuple((k, tuple(p.post.key for p in ps)) for k, ps in picked))
        if signature in selections:
            members_of[selections[signature]].append(packed)
            continue
        selections[signature] = len(picked_for)
        picked_for.append(picked)
        members_of.append([packed])
        wanted_of.append((wanted, lang))
    groups.clear()
    edition = new_edition_id(now)
    issue = store.next_issue_number(theme)
    variants: list[Variant] = []
    used: dict[str, int] = {}
    for picked, members, (wanted, lang) in zip(picked_for, members_of, wanted_of, strict=True):
        key = variant_key(wanted)
        base = digest_base_id(edition, key, lang, site_language)
        used[base] = used.get(base, 0) + 1
        digest_id = base if used[base] == 1 else f"{base}.{used[base]}"
        composed = planner.compose(
            wanted, edition=edition, issue_number=issue, theme=theme, picked=picked,
            digest_id=digest_id, language=lang,
        )  # fmt: skip
        assert composed is not None  # `picked` is not empty
        digest, recorded = composed
        rendered = planner.render(edition, digest)
        variants.append(Variant(key, digest, rendered, recorded, Readers.join(members)))
    return Edition(edition, issue, theme, tuple(variants), Readers.join(quiet))


def preview_digest(
    config: Config,
    store: Store,
    *,
    now: datetime,
    theme: str | None = None,
    planner: Planner | None = None,
    language: str | None = None,
) -> tuple[Digest, RenderedDigest] | None:
    """What the next digest (of `theme`, or of everything) would look like in `language`
    (None: the site's), sending nothing."""
    planner = planner or Planner(config, store, Renderer(config.templates.folder), now)
    themes = (theme,) if theme else ()
    if theme:
        config.theme(theme)
    edition = new_edition_id(now)
    composed = planner.compose(
        themes,
        edition=edition,
        issue_number=store.next_issue_number(theme),
        theme=theme,
        language=language,
    )
    if composed is None:
        return None
    return composed[0], planner.render(edition, composed[0])


__all__ = [
    "Edition",
    "Planner",
    "Variant",
    "plan_edition",
    "preview_digest",
    "summarize_posts",
]
