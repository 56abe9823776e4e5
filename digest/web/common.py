"""What both web apps share: page templates, security headers, body limits, CSRF, error pages.

Every response carries a strict Content-Security-Policy (no scripts at all, styles from this
site or inline only where an email needs them), `nosniff`, `Referrer-Policy: same-origin`
(subscriber URLs carry tokens, which must never leak to another site through Referer; fully
`no-referrer` would also make browsers send `Origin: null` on our own form posts) and
`frame-ancestors`. Request bodies are read up front with a hard limit, so a huge or endless
upload gets 413 before any handler runs. Unexpected exceptions become a plain error page: no
stack trace ever reaches a visitor.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.compose.render import builtin_template_dirs

log = logging.getLogger("digest.web")

# Email HTML needs inline styles; nothing on these pages needs a script.
CSP_PAGE = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
CSP_EMAIL = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)

STATIC_CSS = "site.css"


def web_template_dirs() -> list[Path]:
    """`templates/web/` beside the email templates (packaged or in the repo)."""
    return [d / "web" for d in builtin_template_dirs() if (d / "web").is_dir()]


def page_environment() -> jinja2.Environment:
    dirs = web_template_dirs()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Re-read on change: the editor's preview picks up template edits on reload.
        auto_reload=True,
    )
    return env


def stylesheet() -> str:
    for folder in web_template_dirs():
        path = folder / STATIC_CSS
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return ""


class Pages:
    """Renders the HTML pages in templates/web/ with a status code and fixed security headers."""

    def __init__(self, globals_: Mapping[str, Any] | None = None) -> None:
        self.env = page_environment()
        self.env.globals.update(globals_ or {})

    def render(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(name).render(**context)
        return HTMLResponse(body, status_code=status_code)


def css_response(_request: Request) -> Response:
    return Response(
        stylesheet(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=300"},
    )


def security_headers(csp: str = CSP_PAGE, cache: str = "no-store") -> dict[bytes, bytes]:
    """The headers every response carries (lowercase names), unless it sets its own."""
    return {
        b"content-security-policy": csp.encode(),
        b"x-content-type-options": b"nosniff",
        b"referrer-policy": b"same-origin",
        b"x-frame-options": b"DENY",
        b"cross-origin-opener-policy": b"same-origin",
        b"permissions-policy": b"interest-cohort=(), browsing-topics=()",
        b"cache-control": cache.encode(),
    }


class SecurityMiddleware:
    """Security headers on every response and a hard limit on request bodies (pure ASGI)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        cache: str = "no-store",
        csp: str = CSP_PAGE,
    ) -> None:
        self.app = app
        self.csp = csp
        self.max_body = max(1024, max_body_bytes)
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in security_headers(self.csp, self.cache).items():
                    if key not in present:
                        headers.append((key, value))
                message = {**message, "headers": headers}
            await send(message)

        length = _content_length(scope)
        if length is not None and length > self.max_body:
            await _too_large(send_with_headers)
            return
        # Read the whole body now, within the limit, and replay it to the app: chunked or
        # lying uploads are cut off at the limit too.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _too_large(send_with_headers)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_headers)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send) -> None:
    body = b"Request body too large.\n"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def error_handlers(pages: Pages, labels: Mapping[str, Any]) -> dict[Any, Any]:
    """HTTP errors as small pages; anything unexpected as a plain 500, logged, never shown."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = labels.get(f"error_{exc.status_code}") or labels["error"]
        # Starlette's own details ("Not Found") are replaced by the page's wording.
        detail = exc.detail if isinstance(exc, PageError) else ""
        response = pages.render("message.html.j2", exc.status_code, title=title, message=detail)
        for key, value in (exc.headers or {}).items():  # e.g. Allow on 405
            response.headers[key] = value
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Starlette answers this one from outside every middleware: the security headers
        # are set here, the strictest ones (the page has no style, no image, no frame).
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><title>Error</title><p>Something went wrong. "
            "Please try again later.</p>",
            status_code=500,
            headers={k.decode(): v.decode() for k, v in security_headers().items()},
        )

    return {HTTPException: http_error, Exception: server_error}


class PageError(HTTPException):
    """An expected 4xx whose detail is written for the visitor."""


_CSRF_TOKEN = re.compile(r"([0-9]{1,12})\.([0-9a-f]{32})", re.ASCII)


class Csrf:
    """Signed, expiring per-form tokens, bound to the form's path (so to its link token).

    The HMAC key is derived from the link secret but separate from it, so a CSRF token can
    never double as an unsubscribe or preferences token. Plus an Origin check: a browser
    always sends Origin on a cross-site POST.
    """

    def __init__(self, secret: bytes, base_url: str, max_age: float = 24 * 3600) -> None:
        self.key = hmac.new(secret, b"digest-web-csrf", hashlib.sha256).digest()
        parts = urlsplit(base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}".lower()
        self.max_age = max_age

    def _mac(self, path: str, issued: int) -> str:
        msg = f"{path}\x00{issued}".encode()
        return hmac.new(self.key, msg, hashlib.sha256).hexdigest()[:32]

    def token(self, path: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        return f"{issued}.{self._mac(path, issued)}"

    def check(self, request: Request, token: str, now: float | None = None) -> bool:
        if not self.same_origin(request):
            return False
        # Only what `token` writes is read: ASCII digits, a dot, 32 hex digits. Anything else
        # (Unicode digits, which int() would take, non-ASCII, a huge number) is just stale.
        match = _CSRF_TOKEN.fullmatch(token)
        if match is None:
            return False
        issued = int(match.group(1))
        now = now if now is not None else time.time()
        if not 0 <= now - issued <= self.max_age:
            return False
        expected = self._mac(request.url.path, issued)
        return hmac.compare_digest(match.group(2).encode(), expected.encode())

    def same_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            # No usable Origin (old clients, privacy modes): the signed token alone decides;
            # a cross-site page cannot read it, so it cannot forge the post.
            return True
        own = f"{request.url.scheme}://{request.url.netloc}".lower()
        return origin.lower() in (own, self.origin)
