"""`digest preview`: what the next send would produce, for the editor, on 127.0.0.1.

Every request re-reads the config and the templates and plans afresh with the pipeline's own
`plan_edition` / `preview_digest` and `MessageFactory`, so what is shown is what a send would
carry, and edits show up on reload. The views:

- each distinct variant the subscribers' preferences create (with the CSV lists in
  `subscribers.files` read as the next send would import them, without writing anything),
- each theme's digest (what `digest send --theme KEY` would send),
- the everything-digest,
- with `--subscriber EMAIL`, that subscriber's own copy.

Each view shows the email in a frame (desktop or phone width), its plain-text part, the real
message's headers, the HTML size against Gmail's clipping limit and warnings; it can be
downloaded as .eml or sent as a test copy (through the configured SMTP server, or the
embedded catcher), which records nothing.
"""

from __future__ import annotations

import asyncio
import email
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from digest.compose.message import Envelope, parse_sender
from digest.compose.render import RenderedDigest, Renderer
from digest.compose.strings import LANGUAGES, reader_language
from digest.config import Config, base_url_problem, load_config
from digest.edition import Variant
from digest.errors import DigestError, SubscriberError
from digest.models import Digest
from digest.outbox import MessageFactory
from digest.pipeline import Planner, plan_edition, preview_digest
from digest.select import variant_key
from digest.send import Outcome
from digest.store import PostClicks, Store, StoredSubscriber
from digest.web.common import (
    CSP_EMAIL,
    CSP_PAGE,
    Csrf,
    PageError,
    Pages,
    SecurityMiddleware,
    css_response,
    error_handlers,
)
from digest.web.drafts import DraftPages
from digest.web.labels import preview_labels_for

GMAIL_CLIP_BYTES = 102 * 1024  # Gmail cuts the HTML part off ("[Message clipped]") above this
SHOWN_HEADERS = (
    "Subject",
    "From",
    "To",
    "Reply-To",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)


@dataclass(frozen=True)
class PreviewView:
    slug: str
    label: str
    kind: str  # subscriber | variant | theme | all
    recipients: int  # how many subscribers the next send gives this copy
    shown_for: StoredSubscriber  # whose copy is shown
    variant: Variant | None = None  # None: nothing to send (an empty theme)
    envelope: Envelope | None = None
    html: str = ""
    text: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(self.html.encode("utf-8"))

    @property
    def titles(self) -> list[str]:
        return [] if self.variant is None else [i.post.title for i in self.variant.digest.items]


@dataclass
class PreviewSet:
    config: Config
    factory: MessageFactory
    views: list[PreviewView] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # problems that belong to no single view

    def view(self, slug: str) -> PreviewView | None:
        return next((v for v in self.views if v.slug == slug), None)


def sample_subscriber(config: Config, language: str = "") -> StoredSubscriber:
    """The address a theme's preview copy is made out to: nobody real."""
    domain = parse_sender(config.site.sender)[1].rpartition("@")[2]
    lang = language or config.site.language
    return StoredSubscriber(f"preview@{domain}", "", (), lang, "active")


def next_subscribers(config: Config, store: Store) -> tuple[list[StoredSubscriber], list[str]]:
    """Everyone as the next send would see them: the store with the CSV lists applied on top
    (as `sync_subscribers` would, suppressed addresses never re-subscribed), written nowhere.
    """
    from digest.store import address_key
    from digest.subscribers import parse_subscribers

    keys = [t.key for t in config.themes]
    suppressed = store.suppressed()
    # By address_key: a list row in another case is the stored subscriber, not a second one.
    merged = {address_key(s.email): s for s in store.subscribers()}
    notes: list[str] = []
    for path in config.subscribers.files:
        try:
            parsed = parse_subscribers(path, keys)
        except SubscriberError as exc:
            notes.append(str(exc))
            continue
        notes.extend(f"{p}; row skipped" for p in parsed.problems)
        merged.update(
            (address_key(s.email), s) for s in parsed.subscribers if s.email not in suppressed
        )
    everyone = sorted(merged.values(), key=lambda s: s.email)
    return [s if s.email not in suppressed else _suppressed(s, suppressed) for s in everyone], notes


def _suppressed(sub: StoredSubscriber, suppressed: dict[str, str]) -> StoredSubscriber:
    return StoredSubscriber(sub.email, sub.name, sub.themes, sub.language, suppressed[sub.email])


def _theme_label(config: Config, key: str) -> str:
    lang = config.site.language
    if not key:
        return preview_labels_for(lang)["everything"]
    return " + ".join(config.theme(k).title_for(lang) for k in key.split(",") if k)


def _in_language(config: Config, label: str, slug: str, language: str) -> tuple[str, str]:
    """A view's label and slug for a copy in `language`: as they are for the site's
    language, else marked with the language ("variant-ai-en", "variant: AI (English)")."""
    site = config.site.language
    if not language or language == site:
        return label, slug
    t = preview_labels_for(site)
    return t["in_language"].format(label=label, language=t[f"language_{language}"]), (
        f"{slug}-{language}"
    )


def build_previews(
    config: Config,
    store: Store,
    *,
    now: datetime,
    theme: str | None = None,
    subscriber: str | None = None,
) -> PreviewSet:
    """Plan every view of the next send; raises DigestError (config, templates) as a send would."""
    if theme is not None:
        config.theme(theme)
    factory = MessageFactory(config)
    previews = PreviewSet(config, factory)
    t = preview_labels_for(config.site.language)
    # One planner for every view: each section is selected and summarized once.
    planner = Planner(config, store, Renderer(config.templates.folder), now)
    everyone, notes = next_subscribers(config, store)
    previews.notes.extend(notes)
    # Said once here, not as "link is not https" in every view (see `check_html`).
    problem = base_url_problem(config.web)
    if problem is not None:
        previews.notes.append(problem)
    active = [s for s in everyone if s.status == "active"]

    if subscriber is not None:
        wanted = subscriber.strip().lower()
        match = next((s for s in everyone if s.email.lower() == wanted), None)
        if match is None:
            raise SubscriberError(f"{subscriber}: not a subscriber (see `digest subscribers list`)")
        edition = plan_edition(
            config, store, now=now, theme=theme, recipients=[match], planner=planner
        )
        extra = (
            ()
            if match.status == "active"
            else (f"{match.email} is {match.status}: the next send skips this address",)
        )
        variant = edition.variants[0] if edition.variants else None
        previews.views.append(
            _view(
                factory,
                "subscriber",
                t["view_subscriber"].format(email=match.email),
                "subscriber",
                1,
                match,
                variant,
                extra,
            )
        )

    edition = plan_edition(config, store, now=now, theme=theme, recipients=active, planner=planner)
    for variant in edition.variants:
        label, slug = _in_language(
            config,
            t["view_variant"].format(themes=_theme_label(config, variant.key)),
            "variant-" + (variant.key.replace(",", "+") or "all"),
            variant.language,
        )
        previews.views.append(
            _view(
                factory,
                slug,
                label,
                "variant",
                len(variant.recipients),
                variant.recipients[0],
                variant,
            )
        )
    if edition.quiet:
        who = ", ".join(s.email for s in edition.quiet[:10])
        more = f" and {len(edition.quiet) - 10} more" if len(edition.quiet) > 10 else ""
        previews.notes.append(
            f"{len(edition.quiet)} subscriber(s) would get nothing (no new posts for their "
            f"themes): {who}{more}"
        )

    sample = sample_subscriber(config)
    for key in [theme] if theme else [t.key for t in config.themes]:
        takers = sum(1 for s in active if not s.themes or key in s.themes)
        composed = preview_digest(config, store, now=now, theme=key, planner=planner)
        variant = None if composed is None else _variant(key, *composed)
        title = config.theme(key).title_for(config.site.language)
        label = t["view_theme"].format(title=title)
        previews.views.append(
            _view(factory, f"theme-{key}", label, "theme", takers, sample, variant)
        )
    if theme is None:
        # The everything-digest in each language, the site's first: the editor sees every
        # language's fixed words even when no subscriber reads it yet.
        for language in sorted(LANGUAGES, key=lambda lang: lang != config.site.language):
            readers = [s for s in active if not s.themes]
            takers = sum(1 for s in readers if _language(config, s) == language)
            composed = preview_digest(
                config, store, now=now, theme=None, planner=planner, language=language
            )
            variant = None if composed is None else _variant("", *composed)
            label, slug = _in_language(config, t["everything"], "all", language)
            copy = sample_subscriber(config, language)
            previews.views.append(_view(factory, slug, label, "all", takers, copy, variant))
    if not any(view.variant is not None for view in previews.views):
        previews.notes.insert(0, why_empty(config, store))
    return previews


def why_empty(config: Config, store: Store) -> str:
    """What to do when no view has a post: ingest first, or look at the issue that took them."""
    if store.count_posts() == 0:
        return (
            "no posts yet: `digest ingest` reads the sources in the config (or `digest run` "
            "reads them and sends)"
        )
    latest = store.find_edition("latest")
    if latest is not None:
        sent = store.edition_digests(latest)[0]
        when = sent.created.astimezone(ZoneInfo(config.site.timezone)).strftime("%Y-%m-%d %H:%M")
        return (
            f"nothing new since issue #{sent.issue_number} ({when}), which took the posts "
            "there were: `digest preview --edition latest` shows it; new posts appear here "
            "after the next `digest ingest`"
        )
    return (
        f"no post is new enough for any subscriber: the selection looks back "
        f"{config.selection.lookback_days} day(s) (`[selection] lookback_days`)"
    )


def _language(config: Config, sub: StoredSubscriber) -> str:
    return reader_language(sub.language, config.site.language)


def _variant(key: str, digest: Digest, rendered: RenderedDigest) -> Variant:
    return Variant(variant_key([key] if key else []), digest, rendered, {}, ())


def signed_envelope(factory: MessageFactory, variant: Variant, sub: StoredSubscriber) -> Envelope:
    """The message exactly as a send builds it, DKIM signature included when configured."""
    envelope = factory.envelope(variant, sub)
    if factory.signer is not None:
        envelope = replace(envelope, data=factory.signer.sign(envelope.data))
    return envelope


def _view(
    factory: MessageFactory,
    slug: str,
    label: str,
    kind: str,
    recipients: int,
    sub: StoredSubscriber,
    variant: Variant | None,
    extra: Sequence[str] = (),
) -> PreviewView:
    if variant is None:
        empty = "empty: nothing new to send" + (f" for {label}" if kind == "theme" else "")
        return PreviewView(slug, label, kind, recipients, sub, warnings=(empty, *extra))
    envelope = signed_envelope(factory, variant, sub)
    message = email.message_from_bytes(envelope.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    # Decoded parts keep the wire's CRLF line ends; show them as ordinary text.
    markup = html_part.get_content().replace("\r\n", "\n") if html_part is not None else ""
    text = text_part.get_content().replace("\r\n", "\n") if text_part is not None else ""
    headers = tuple((name, str(message[name])) for name in SHOWN_HEADERS if name in message)
    warnings = (*extra, *check_html(markup, own=config_base(factory)))
    return PreviewView(
        slug, label, kind, recipients, sub, variant, envelope, markup, text, headers, warnings
    )


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag == "a":
            href = dict(attrs).get("href")
            if href is not None:
                self.links.append(href)


def config_base(factory: MessageFactory) -> str:
    return factory.config.web.base_url.rstrip("/") + "/"


def check_html(markup: str, own: str = "") -> list[str]:
    """What an editor should fix before sending: size, alt text, links that are not https.
    Links under `own` (web.base_url) are left to one note for the whole preview."""
    warnings: list[str] = []
    size = len(markup.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        warnings.append(
            f"HTML is {size / 1024:.1f} KB: Gmail clips messages over ~102 KB "
            "(the footer with the unsubscribe link is cut off)"
        )
    scan = _Scan()
    scan.feed(markup)
    seen: set[str] = set()
    for image in scan.images:
        src = image.get("src") or "(no src)"
        if own and src.startswith(own):
            continue  # the open pixel (`[tracking] opens`): alt="" on purpose
        alt = image.get("alt")
        problem = ""
        if alt is None:
            problem = "image without alt"
        elif not alt.strip():
            problem = "image with empty alt"
        if problem and src not in seen:
            seen.add(src)
            warnings.append(f"{problem}: {src}")
    for href in scan.links:
        lowered = href.strip().lower()
        if lowered.startswith(("https://", "mailto:")) or href in seen:
            continue
        if own and href.startswith(own):
            continue
        seen.add(href)
        warnings.append(f"link is not https: {href or '(empty)'}")
    return warnings


# -- the app ------------------------------------------------------------------------------------

BuildFn = Callable[[], PreviewSet]
SendFn = Callable[[Config, Envelope], Outcome]


def send_test_copy(config: Config, envelope: Envelope) -> Outcome:
    """One message through the configured SMTP server (or the embedded catcher)."""
    from digest.send.smtp import SMTPSender
    from digest.sending import smtp_endpoint

    async def deliver(host: str, port: int) -> Outcome:
        async with SMTPSender.from_config(config.smtp, host, port) as sender:
            return await sender.send(envelope)

    with smtp_endpoint(config) as (host, port):
        return asyncio.run(deliver(host, port))


@dataclass(frozen=True)
class ClickPanel:
    """What the preview shows of clicks (`[tracking] clicks`): the latest issue's posts with
    their clicks, most first, and the clicks in all of the latest issues."""

    issue: int
    posts: tuple[PostClicks, ...]
    recent: tuple[tuple[int, str | None, int], ...]  # (issue number, theme, clicks)


def click_panel(config: Config, store: Store) -> ClickPanel | None:
    """The panel, when clicks are counted or were; None otherwise (nothing is shown)."""
    recent = store.recent_clicks()
    if not recent or not (config.tracking.clicks or any(n for *_, n in recent)):
        return None
    edition, issue, _theme, _n = recent[0]
    return ClickPanel(
        issue,
        tuple(store.edition_clicks(edition)),
        tuple((i, theme, n) for _e, i, theme, n in recent),
    )


def editor_app(
    config_path: Path,
    store: Store,
    *,
    theme: str | None = None,
    subscriber: str | None = None,
    send: SendFn = send_test_copy,
    drafts: DraftPages | None = None,
) -> Starlette:
    """The preview server; config and templates are read again on every request. With the
    drafts (by default), also the drafts waiting for approval, under /drafts."""

    def build() -> PreviewSet:
        config = load_config(config_path)
        return build_previews(
            config, store, now=datetime.now(UTC), theme=theme, subscriber=subscriber
        )

    def clicks() -> ClickPanel | None:
        return click_panel(load_config(config_path), store)

    return preview_server(
        build, send=send, drafts=drafts or DraftPages(config_path, store), clicks=clicks
    )


def preview_server(
    build: BuildFn,
    *,
    send: SendFn = send_test_copy,
    drafts: DraftPages | None = None,
    clicks: Callable[[], ClickPanel | None] | None = None,
) -> Starlette:
    # The pages speak the site's language, as read with the config on the last request
    # (English until a config could be read).
    shown = _Language()
    pages = Pages({"t": shown, "lang": "en", "base": "", "site": _NoSite})
    # The CSRF key only has to outlive this process: a fresh one per server start.
    csrf = Csrf(secrets.token_bytes(32), "http://127.0.0.1")

    async def current() -> PreviewSet | Response:
        try:
            result = await run_in_threadpool(build)
        except DigestError as exc:
            # The editor's own mistake (a template line, a config key): show it, no trace.
            return pages.render("message.html.j2", 500, title=shown["error"], message=str(exc))
        shown.language = result.config.site.language
        pages.env.globals["lang"] = shown.language
        return result

    async def find(request: Request) -> tuple[PreviewSet, PreviewView] | Response:
        result = await current()
        if isinstance(result, Response):
            return result
        view = result.view(request.path_params["slug"])
        if view is None:
            raise PageError(404, shown["no_view"])
        return result, view

    async def index(request: Request) -> Response:
        result = await current()
        if isinstance(result, Response):
            return result
        held = await run_in_threadpool(drafts.held) if drafts is not None else []
        panel = await run_in_threadpool(clicks) if clicks is not None else None
        return pages.render(
            "preview_index.html.j2",
            drafts=held,
            clicks=panel,
            previews=result,
            site=result.config.site,
            clip=GMAIL_CLIP_BYTES,
        )

    async def view_page(request: Request) -> Response:
        found = await find(request)
        if isinstance(found, Response):
            return found
        previews, view = found
        return pages.render(
            "preview_view.html.j2",
            previews=previews,
            view=view,
            site=previews.config.site,
            clip=GMAIL_CLIP_BYTES,
            csrf=csrf.token(f"/v/{view.slug}/send"),
            smtp=_smtp_label(previews.config),
            sent=None,
        )

    async def email_html(request: Request) -> Response:
        found = await find(request)
        if isinstance(found, Response):
            return found
        _previews, view = found
        if view.envelope is None:
            raise PageError(404, shown["nothing_to_send"])
        return HTMLResponse(
            view.html,
            headers={"Content-Security-Policy": CSP_EMAIL, "X-Frame-Options": "SAMEORIGIN"},
        )

    async def eml(request: Request) -> Response:
        found = await find(request)
        if isinstance(found, Response):
            return found
        _previews, view = found
        if view.envelope is None:
            raise PageError(404, shown["nothing_to_send"])
        return Response(
            view.envelope.data,
            media_type="message/rfc822",
            headers={"Content-Disposition": f'attachment; filename="{view.slug}.eml"'},
        )

    async def send_copy(request: Request) -> Response:
        from digest.subscribers import normalize_address

        form = await request.form(max_files=0, max_fields=10)
        token = form.get("csrf")
        if not isinstance(token, str) or not csrf.check(request, token):
            raise PageError(403, shown["stale_form"])
        found = await find(request)
        if isinstance(found, Response):
            return found
        previews, view = found
        if view.variant is None:
            raise PageError(404, shown["nothing_to_send"])
        raw = form.get("to")
        try:
            address = normalize_address(raw if isinstance(raw, str) else "")
        except SubscriberError as exc:
            raise PageError(400, shown["not_an_address"].format(error=exc)) from None
        copy = StoredSubscriber(address, "", (), "", "active")
        envelope = signed_envelope(previews.factory, view.variant, copy)
        try:
            outcome = await run_in_threadpool(send, previews.config, envelope)
        except DigestError as exc:
            outcome = Outcome("failed", str(exc))
        return pages.render(
            "preview_view.html.j2",
            200 if outcome.status == "sent" else 502,
            previews=previews,
            view=view,
            site=previews.config.site,
            clip=GMAIL_CLIP_BYTES,
            csrf=csrf.token(f"/v/{view.slug}/send"),
            smtp=_smtp_label(previews.config),
            sent=(address, outcome),
        )

    routes = [
        Route("/", index),
        Route("/v/{slug}", view_page),
        Route("/v/{slug}/email.html", email_html),
        Route("/v/{slug}/message.eml", eml),
        Route("/v/{slug}/send", send_copy, methods=["POST"]),
        Route("/static/site.css", css_response),
        *(drafts.routes(pages, csrf) if drafts is not None else []),
    ]
    app = Starlette(routes=routes, exception_handlers=error_handlers(pages, shown))
    # The view page frames the email, served from this same origin.
    csp = f"{CSP_PAGE}; frame-src 'self'"
    app.add_middleware(SecurityMiddleware, max_body_bytes=16384, csp=csp)
    # Bound to 127.0.0.1; a Host check also stops DNS-rebinding pages from reading it.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])
    return app


class _Language(Mapping[str, str]):
    """The preview's words in the language last set (the site's)."""

    def __init__(self) -> None:
        self.language = "en"

    def __getitem__(self, key: str) -> str:
        return preview_labels_for(self.language)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(preview_labels_for(self.language))

    def __len__(self) -> int:
        return len(preview_labels_for(self.language))


class _NoSite:
    """Stands in for the site on pages shown when the config itself cannot be read."""

    name = "digest preview"


def _smtp_label(config: Config) -> str:
    if config.smtp.embedded:
        return f"the embedded catcher (Maildir {config.smtp.maildir})"
    return f"{config.smtp.host}:{config.smtp.port}"
