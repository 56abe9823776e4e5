"""Subscriber lists: CSV files with a header `email,name,themes[,language,status]`.

Every row is validated (address syntax with email-validator, no DNS; known theme keys) and
reported with its file and line. Addresses are normalized (domain case, Unicode domains) and
de-duplicated, the last row for an address winning.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from digest.errors import SubscriberError
from digest.store import StoredSubscriber

REQUIRED = ("email",)
KNOWN = ("email", "name", "themes", "language", "status")
STATUSES = ("active", "paused", "unsubscribed")


@dataclass(frozen=True)
class ParsedList:
    subscribers: tuple[StoredSubscriber, ...]
    problems: tuple[str, ...]  # "file:line: reason", one per bad row
    duplicates: int = 0


def normalize_address(address: str) -> str:
    """The canonical form of an address, or SubscriberError with the reason."""
    if any(c in address for c in "\r\n\x00"):
        raise SubscriberError("address contains a line break or NUL")
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(str(exc)) from None
    # email-validator keeps the local part as written and lowercases the (IDNA) domain.
    return result.normalized


def parse_subscribers(
    path: Path, themes: Collection[str], text: str | None = None
) -> ParsedList:
    if text is None:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise SubscriberError(f"{path}: file not found") from None
        except UnicodeDecodeError:
            raise SubscriberError(f"{path}: not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    header: list[str] = []
    for first in reader:  # the first non-blank record is the header
        if first:
            header = [h.strip().lower() for h in first]
            break
    if not header:
        raise SubscriberError(f"{path}:1: empty file, expected a header: {','.join(KNOWN)}")
    missing = [h for h in REQUIRED if h not in header]
    unknown = [h for h in header if h not in KNOWN]
    if missing or unknown:
        what = f"missing column {missing[0]!r}" if missing else f"unknown column {unknown[0]!r}"
        raise SubscriberError(f"{path}:1: {what} (columns: {', '.join(KNOWN)})")
    found: dict[str, StoredSubscriber] = {}
    problems: list[str] = []
    duplicates = 0
    previous_end = reader.line_num
    for record in reader:
        # A quoted field may span lines: report the line the row starts on, not where it ends.
        line = previous_end + 1
        previous_end = reader.line_num
        if not record:
            continue
        row = dict(zip(header, record, strict=False))
        try:
            sub = _row(row, themes)
        except SubscriberError as exc:
            problems.append(f"{path}:{line}: {exc}")
            continue
        if sub.email in found:
            duplicates += 1
        found[sub.email] = sub
    return ParsedList(tuple(found.values()), tuple(problems), duplicates)


def _row(row: dict[str, str], themes: Collection[str]) -> StoredSubscriber:
    def get(key: str) -> str:
        return (row.get(key) or "").strip()

    address = get("email")
    if not address:
        raise SubscriberError("empty email")
    try:
        email = normalize_address(address)
    except SubscriberError as exc:
        raise SubscriberError(f"invalid address {address!r}: {exc}") from None
    chosen = tuple(t for t in (x.strip() for x in get("themes").replace(";", ",").split(",")) if t)
    for key in chosen:
        if key not in themes:
            raise SubscriberError(f"unknown theme {key!r} (known: {', '.join(themes)})")
    status = get("status").lower() or "active"
    if status not in STATUSES:
        raise SubscriberError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    language = get("language").lower()
    if language not in ("", "ko", "en"):
        raise SubscriberError(f"language must be ko or en, not {language!r}")
    name = get("name")
    if any(c in name for c in "\r\n"):
        raise SubscriberError("name contains a line break")
    return StoredSubscriber(email, name, tuple(dict.fromkeys(chosen)), language, status)
