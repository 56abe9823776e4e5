"""Golden files: the sample digest's HTML and text, byte for byte (tests/golden/README.md).

Regenerate after an intended change with `python scripts/regen_golden.py`.
"""

from __future__ import annotations

import contextlib
import locale
import time
from collections.abc import Iterator

import pytest

from tests.golden.sample import GOLDEN_DIR, golden_outputs

REGEN = "python scripts/regen_golden.py"


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("name", ["sample.html", "sample.txt"])
def test_matches_golden(pinned: None, name: str) -> None:
    expected = (GOLDEN_DIR / name).read_text(encoding="utf-8")
    actual = golden_outputs()[name]
    assert actual == expected, f"tests/golden/{name} is out of date; if intended, run `{REGEN}`"


def test_output_independent_of_machine_zone_and_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    time.tzset()
    saved = locale.setlocale(locale.LC_ALL)
    try:
        with contextlib.suppress(locale.Error):  # not generated here: the zone still differs
            locale.setlocale(locale.LC_ALL, "en_US.UTF-8")
        outputs = golden_outputs()
    finally:
        locale.setlocale(locale.LC_ALL, saved)
        monkeypatch.undo()
        time.tzset()
    for name, content in outputs.items():
        assert content == (GOLDEN_DIR / name).read_text(encoding="utf-8"), name
