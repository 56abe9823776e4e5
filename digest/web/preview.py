"""`digest preview`: the next digest served on 127.0.0.1, rendered afresh on every request.

Rendering on each request means edits to templates or config show up on reload. The page is
the same HTML a real send would carry (same render path), before per-recipient values.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.compose.render import RenderedDigest
from digest.errors import DigestError

RenderFn = Callable[[], RenderedDigest | None]


def preview_app(render: RenderFn) -> Starlette:
    def current() -> RenderedDigest | Response:
        try:
            rendered = render()
        except DigestError as exc:
            return PlainTextResponse(f"cannot render the digest: {exc}", status_code=500)
        if rendered is None:
            return HTMLResponse(
                "<!doctype html><meta charset=utf-8><title>digest preview</title>"
                "<p>Nothing new to send: no posts selected for this digest.</p>"
            )
        return rendered

    async def index(request: Request) -> Response:
        result = current()
        if isinstance(result, Response):
            return result
        return HTMLResponse(result.html, headers={"X-Digest-Subject": _ascii(result.subject)})

    async def text(request: Request) -> Response:
        result = current()
        if isinstance(result, Response):
            return result
        return PlainTextResponse(result.text)

    return Starlette(routes=[Route("/", index), Route("/text", text)])


def _ascii(value: str) -> str:
    return html.escape(value).encode("ascii", "xmlcharrefreplace").decode()
