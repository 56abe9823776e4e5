"""The browser every test module here shares: one headless Chromium per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.support import ARGS, CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()
