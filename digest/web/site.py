"""`digest serve`: the subscribers' pages, on a public address behind a proxy.

- `/u/TOKEN`: RFC 8058 one-click unsubscribe. A POST with `List-Unsubscribe=One-Click`
  unsubscribes at once and answers 200 (no redirect; mail providers post it without cookies
  or CSRF tokens, the signed token is the authority). A GET only shows a confirmation page
  with a button: link scanners fetch URLs, and a fetch must never unsubscribe anyone.
- `/p/TOKEN`: preferences: themes, pause, leave; saved at once.
- `/archive`: every sent digest's public copy, an index per theme, Atom feeds.
- `/subscribe`: the sign-up form with double opt-in, when `signup.enabled` (digest.web.signup).
- `/c/TOKEN`: a post link of an issue (`[tracking] clicks`, digest.tracking): a redirect to
  the URL stored for the post the token names, counted per edition and post on a GET while
  clicks are on; a HEAD (link checkers) is answered, never counted.
- `/o/TOKEN.gif`: an edition's open pixel (`[tracking] opens`, off by default): a 1x1 GIF,
  counted per edition on a GET while opens are on.

Tokens are HMAC-signed per purpose and address (digest.tokens); a forged, tampered or
other-purpose token gets a 404 page and changes nothing. Every form post (except the
one-click POST and the sign-up form, see digest.web.signup) carries a signed per-form CSRF
token and must come from this origin.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from digest.compose.render import safe_url
from digest.compose.strings import reader_language
from digest.config import Config
from digest.store import Store, WebStore
from digest.tokens import load_secret, make_token, read_token
from digest.tracking import CLICK_PATH, OPEN_PATH, PIXEL_GIF, read_click_token, read_open_token
from digest.web.archive import (
    DIGEST_ID,
    ArchiveEntry,
    atom_feed,
    editions,
    public_copy,
    public_digests,
    theme_titles,
    with_way_back,
)
from digest.web.common import (
    CSP_EMAIL,
    Csrf,
    PageError,
    Pages,
    SecurityMiddleware,
    css_response,
    error_handlers,
)
from digest.web.labels import labels_for
from digest.web.signup import Mail, configured_mail, signup_routes

MAX_TOKEN = 600  # an address of up to 254 octets, base64url, plus the MAC
ONE_CLICK = ("List-Unsubscribe", "One-Click")


def subscriber_app(
    config: Config, store: Store, *, secret: bytes | None = None, mail: Mail | None = None
) -> Starlette:
    """The pages; with `signup.enabled`, also `/subscribe`, whose mails go through `mail`
    (default: as `[smtp]` says)."""
    web = WebStore(store.engine)
    secret = secret if secret is not None else load_secret(config)
    csrf = Csrf(secret, config.web.base_url)
    lang = config.site.language
    t = labels_for(lang)
    base = config.web.base_url.rstrip("/")
    titles = theme_titles(config)
    theme_keys = [th.key for th in config.themes]
    # Links between pages are root-relative under base_url's path (a proxy may mount the
    # app below a prefix); only feeds and emails need absolute URLs.
    prefix = urlsplit(base).path.rstrip("/")
    pages = Pages({"t": t, "lang": lang, "site": config.site, "base": prefix, "titles": titles})
    pages.env.globals["signup"] = config.signup.enabled

    def reader(email: str) -> dict[str, Any]:
        """The words of a page reached from `email`'s own message: in the reader's language
        (theirs if ko or en, else the site's), as their email was."""
        sub = web.subscriber(email)
        language = reader_language(sub.language if sub is not None else "", lang)
        return {"lang": language, "t": labels_for(language)}

    def address(purpose: str, token: str) -> str:
        email = read_token(secret, purpose, token) if len(token) <= MAX_TOKEN else None
        if email is None:
            raise PageError(404, t["bad_link"])
        return email

    async def form(request: Request) -> FormData:
        try:
            return await request.form(max_files=0, max_fields=50)
        except Exception:  # malformed multipart or urlencoded body: the client's mistake
            raise PageError(400, t["error_400"]) from None

    def require_csrf(request: Request, data: FormData) -> None:
        token = data.get("csrf")
        if not isinstance(token, str) or not csrf.check(request, token):
            raise PageError(403, t["stale_form"])

    # -- unsubscribe ---------------------------------------------------------------------

    async def unsubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        email = address("unsubscribe", token)
        words = reader(email)
        if request.method == "POST":
            data = await form(request)
            if data.get(ONE_CLICK[0]) == ONE_CLICK[1]:
                web.suppress(email, "unsubscribed", "one-click")
                return PlainTextResponse(words["t"]["unsubscribed"].format(email=email))
            require_csrf(request, data)
            web.suppress(email, "unsubscribed", "web")
            return pages.render("unsubscribe.html.j2", state="done", email=email, csrf="", **words)
        reason = web.suppression(email)
        state = "confirm" if reason is None else "already"
        return pages.render(
            "unsubscribe.html.j2",
            **words,
            state=state,
            email=email,
            csrf=csrf.token(request.url.path),
            preferences=f"{prefix}/p/{token_for(email, 'preferences')}",
        )

    def token_for(email: str, purpose: str) -> str:
        return make_token(secret, purpose, email)

    # -- preferences ---------------------------------------------------------------------

    def preferences_page(
        request: Request, email: str, *, notice: str = "", status_code: int = 200
    ) -> Response:
        reason = web.suppression(email)
        sub = web.subscriber(email)
        if reason is None and sub is None:
            raise PageError(404, t["not_listed"])
        words = reader(email)
        return pages.render(
            "preferences.html.j2",
            status_code,
            **words,
            email=email,
            subscriber=sub,
            reason=reason,
            notice=notice,
            themes=[(th.key, th.title_for(words["lang"])) for th in config.themes],
            csrf=csrf.token(request.url.path),
        )

    async def preferences(request: Request) -> Response:
        email = address("preferences", request.path_params["token"])
        if request.method == "GET":
            return preferences_page(request, email)
        data = await form(request)
        require_csrf(request, data)
        action = data.get("action")
        words = reader(email)
        if action == "leave":
            web.suppress(email, "unsubscribed", "preferences")
            return pages.render("unsubscribe.html.j2", state="done", email=email, csrf="", **words)
        if action == "resubscribe":
            if not web.resubscribe(email):
                raise PageError(409, words["t"]["suppressed_other"].format(email=email))
            return preferences_page(request, email, notice=words["t"]["resubscribed"])
        if action != "save":
            raise PageError(400, t["bad_choice"])
        chosen = [v for v in data.getlist("theme") if isinstance(v, str)]
        status = data.get("status", "active")
        if any(k not in theme_keys for k in chosen) or status not in ("active", "paused"):
            raise PageError(400, t["bad_choice"])
        ordered = [k for k in theme_keys if k in chosen]
        if not web.set_preferences(email, ordered, str(status)):
            return preferences_page(request, email, status_code=409)
        return preferences_page(request, email, notice=words["t"]["saved"])

    # -- counted post links --------------------------------------------------------------

    async def click(request: Request) -> Response:
        target = read_click_token(secret, request.path_params["token"])
        if target is None:
            raise PageError(404, t["bad_link"])
        # Links keep working once clicks are turned off; they are just no longer counted.
        count = config.tracking.clicks and request.method == "GET"
        url = safe_url(web.follow_click(target.edition, target.post_key, count=count))
        if not url:  # the post is gone from the store, or its URL is not http(s)
            raise PageError(404, t["error_404"])
        return RedirectResponse(url, status_code=302)

    async def opened(request: Request) -> Response:
        edition = read_open_token(secret, request.path_params["token"])
        if edition is None:
            raise PageError(404, t["bad_link"])
        if config.tracking.opens and request.method == "GET":
            web.count_open(edition)
        return Response(PIXEL_GIF, media_type="image/gif")

    # -- token-less pages ----------------------------------------------------------------

    async def home(request: Request) -> Response:
        return pages.render("message.html.j2", title=config.site.name, message="", home=True)

    async def how_to(request: Request) -> Response:
        return pages.render(
            "message.html.j2", title=t["preferences_title"], message=t["use_email_link"], home=True
        )

    # -- archive -------------------------------------------------------------------------

    def archived() -> list[Any]:
        return web.archived_digests()

    async def archive_index(request: Request) -> Response:
        return pages.render(
            "archive.html.j2", editions=editions(config, archived()), key=None, entries=[]
        )

    def theme_entries(key: str) -> list[ArchiveEntry]:
        if key not in titles:
            raise PageError(404, t["error_404"])
        return [ArchiveEntry(key, titles[key], d) for d in public_digests(archived(), key)]

    async def archive_theme(request: Request) -> Response:
        key = request.path_params["key"]
        return pages.render("archive.html.j2", editions=[], key=key, entries=theme_entries(key))

    def content(digest_id: str) -> tuple[str, str]:
        stored = web.archived_content(digest_id) if DIGEST_ID.match(digest_id) else None
        if stored is None:
            raise PageError(404, t["error_404"])
        return public_copy(config, *stored)

    async def archive_page(request: Request) -> Response:
        page, _text = content(request.path_params["id"])
        page = with_way_back(page, f"{base}/archive", t["archive"])
        headers = {
            "Content-Security-Policy": CSP_EMAIL.replace("'self'", "'none'"),
            "Cache-Control": "public, max-age=300",
        }
        return HTMLResponse(page, headers=headers)

    async def archive_text(request: Request) -> Response:
        _page, text = content(request.path_params["id"])
        return PlainTextResponse(text, headers={"Cache-Control": "public, max-age=300"})

    def feed(entries: list[ArchiveEntry], url: str, title: str) -> Response:
        texts = {e.digest.id: content(e.digest.id)[1] for e in entries}
        body = atom_feed(config, entries, feed_url=url, title=title, texts=texts)
        return Response(
            body,
            media_type="application/atom+xml; charset=utf-8",
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def archive_feed(request: Request) -> Response:
        seen: dict[str, ArchiveEntry] = {}
        for group in editions(config, archived()):
            for entry in group:
                seen.setdefault(entry.digest.id, entry)
        entries = sorted(seen.values(), key=lambda e: (e.digest.sent, e.digest.id), reverse=True)
        return feed(entries, f"{base}/archive/feed.atom", f"{config.site.name} · {t['archive']}")

    async def archive_theme_feed(request: Request) -> Response:
        key = request.path_params["key"]
        entries = theme_entries(key)
        return feed(
            entries, f"{base}/archive/t/{key}/feed.atom", f"{config.site.name} · {titles[key]}"
        )

    routes = [
        Route("/", home),
        Route("/u/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/p/{token}", preferences, methods=["GET", "POST"]),
        Route(f"/{CLICK_PATH}/{{token}}", click, methods=["GET"]),  # HEAD too, uncounted
        Route(f"/{OPEN_PATH}/{{token}}.gif", opened, methods=["GET"]),
        Route("/unsubscribe", how_to),
        Route("/preferences", how_to),
        Route("/archive", archive_index),
        Route("/archive/feed.atom", archive_feed),
        Route("/archive/t/{key}", archive_theme),
        Route("/archive/t/{key}/feed.atom", archive_theme_feed),
        Route("/archive/d/{id}.txt", archive_text),  # before {id}, which would match it too
        Route("/archive/d/{id}", archive_page),
        Route("/static/site.css", css_response),
    ]
    if config.signup.enabled:
        mail = mail or configured_mail(config)
        routes += signup_routes(config, web, secret, pages, csrf, t, mail)
    app = Starlette(routes=routes, exception_handlers=error_handlers(pages, t))
    # no-store by default: token pages must never sit in a shared cache.
    app.add_middleware(SecurityMiddleware, max_body_bytes=config.web.max_body_bytes)
    return app
