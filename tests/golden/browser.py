"""Headless Chromium through Playwright, for the email's browser tests and the screenshots.

Uses the system Chromium (`/usr/bin/chromium`, Debian package `chromium`); Playwright's own
browser downloads are never used. Pages load with no network: the sample cover image is
served from memory and every other request is refused.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.golden.sample import COVER_IMAGE, cover_png

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTHS = (375, 700)


def chromium_path() -> str | None:
    for candidate in (os.environ.get("DIGEST_CHROMIUM", ""), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("chromium")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; no `playwright install`)"
    if chromium_path() is None:
        return "no Chromium at /usr/bin/chromium (apt-get install -y chromium fonts-noto-cjk)"
    return None


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _route(route: Any) -> None:
    if route.request.url == COVER_IMAGE:
        route.fulfill(status=200, content_type="image/png", body=cover_png())
    else:
        route.abort()


@contextmanager
def open_page(instance: Any, html: str, width: int, *, dark: bool = False) -> Iterator[Any]:
    context = instance.new_context(
        viewport={"width": width, "height": 800},
        device_scale_factor=1,
        color_scheme="dark" if dark else "light",
        locale="ko-KR",
        timezone_id="Asia/Seoul",
    )
    try:
        page = context.new_page()
        page.route("**/*", _route)
        page.set_content(html, wait_until="load")
        page.evaluate("document.fonts.ready")
        yield page
    finally:
        context.close()


def screenshot(instance: Any, html: str, width: int, path: Path, *, dark: bool = False) -> None:
    with open_page(instance, html, width, dark=dark) as page:
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)


SCREENSHOTS = {  # file name in docs/screenshots/ -> (width, dark)
    "digest-375.png": (375, False),
    "digest-700.png": (700, False),
    "digest-375-dark.png": (375, True),
}
