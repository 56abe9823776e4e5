"""Structured logs: one line per event, `key=value` pairs (logfmt), always with `event=`.

    event=run_sent schedule=weekly period=2025-03-10T08:00 edition=20250309T230000Z-1a2b
        issue=12 sent=4 deferred=0 failed=0

Values with spaces or quotes are JSON-quoted, so every line splits the same way
(`journalctl -u digest -o cat | grep 'event=run_'`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from digest.stop import StopSignal

log = logging.getLogger("digest.schedule")


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        value = ",".join(str(v) for v in value)
    text = str(value)
    if not text or any(c in text for c in ' "=\\\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


def format_event(event: str, fields: dict[str, Any]) -> str:
    parts = [f"event={event}"]
    parts += [f"{k}={_value(v)}" for k, v in fields.items() if v is not None]
    return " ".join(parts)


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    if log.isEnabledFor(level):
        log.log(level, "%s", format_event(event, fields))


__all__ = ["StopSignal", "format_event", "log", "log_event"]
