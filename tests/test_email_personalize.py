"""Personalization without recompiling: bench/personalize.py, run small, meets its goal."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "personalize.py"


def test_building_messages_costs_under_a_twentieth_of_compiling(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location("bench_personalize", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    status = module.main(["--count", "400", "--compiles", "10"])
    out = capsys.readouterr().out
    assert "goal < 1/20: met" in out, out
    assert status == 0
