"""The digest as a reader sees it: rendered in headless Chromium at 375 px and 700 px.

Needs /usr/bin/chromium (Debian package `chromium`, with `fonts-noto-cjk` for Hangul) and the
Playwright Python package; skipped, with the reason, where they are missing (`.ci/run`
installs them). Playwright's own browser download (`playwright install`) is never used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.compose.render import Renderer, personalize
from digest.models import Digest
from tests.golden import browser
from tests.golden.sample import RECIPIENT, SCREENSHOT_DIR, largest_week_digest, sample_digest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing())),
]

DIGESTS = {"sample": sample_digest, "largest-week": largest_week_digest}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser.browser() as instance:
        yield instance


def _page_html(digest: Digest) -> str:
    return personalize(Renderer().render(digest), RECIPIENT)[0]


TITLES_JS = """() => Array.from(document.querySelectorAll('h3')).map(h => {
    const r = h.getBoundingClientRect();
    const s = getComputedStyle(h);
    return {text: h.innerText.replace(/\\s+/g, ' ').trim(), left: r.left, right: r.right,
            width: r.width, height: r.height, visibility: s.visibility,
            opacity: parseFloat(s.opacity)};
})"""
COVERED_JS = """(i) => {
    const h = document.querySelectorAll('h3')[i];
    h.scrollIntoView({block: 'center'});
    const r = h.getBoundingClientRect();
    const e = document.elementFromPoint(r.left + 2, r.top + r.height / 2);
    return e !== null && h.contains(e);
}"""


@pytest.mark.parametrize("width", browser.WIDTHS)
@pytest.mark.parametrize("which", list(DIGESTS))
def test_no_horizontal_scroll_and_every_title_visible(
    chromium: Any, which: str, width: int, tmp_path: Path
) -> None:
    digest = DIGESTS[which]()
    with browser.open_page(chromium, _page_html(digest), width) as page:
        scroll_width, client_width = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert scroll_width <= client_width == width, "horizontal scrolling"
        titles = []
        for title in page.evaluate(TITLES_JS):
            titles.append(title["text"])
            assert title["width"] > 0 and title["height"] > 0, title
            assert title["left"] >= 0 and title["right"] <= width, title
            assert title["visibility"] == "visible" and title["opacity"] == 1, title
        assert titles == [" ".join(item.post.title.split()) for item in digest.items]
        # each title is the topmost element where it is drawn (not covered, not clipped)
        for index in range(len(titles)):
            assert page.evaluate(COVERED_JS, index), f"title {titles[index]!r} is covered"
        shot = tmp_path / f"{which}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes().startswith(b"\x89PNG")


def test_cover_image_loads_with_alt(chromium: Any) -> None:
    with browser.open_page(chromium, _page_html(sample_digest()), 375) as page:
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.alt, i.naturalWidth, i.clientWidth])"
        )
    assert images and all(alt is not None for alt, _, _ in images)
    alt, natural, shown = images[0]
    assert alt and natural == 552 and 0 < shown <= 375


def test_dark_scheme_applies_dark_palette(chromium: Any) -> None:
    with browser.open_page(chromium, _page_html(sample_digest()), 375, dark=True) as page:
        colours = page.evaluate(
            """() => { const h = document.querySelector('h3 a');
            const card = h.closest('.cd');
            return [getComputedStyle(h).color, getComputedStyle(card).backgroundColor]; }"""
        )
    assert colours == ["rgb(147, 197, 253)", "rgb(31, 41, 55)"]


def test_readme_screenshots_exist() -> None:
    readme = (SCREENSHOT_DIR.parent.parent / "README.md").read_text(encoding="utf-8")
    for name in browser.SCREENSHOTS:
        assert (SCREENSHOT_DIR / name).read_bytes().startswith(b"\x89PNG"), name
        assert f"docs/screenshots/{name}" in readme, name
