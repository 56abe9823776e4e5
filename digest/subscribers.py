"""Subscriber lists: CSV files with a header `email,name,themes[,language,status]`.

Every row is validated (address syntax with email-validator, no DNS; known theme keys) and
reported with its file and line. Addresses are normalized and de-duplicated, the last row for
an address winning:

- Case: `Kim@example.com`, `kim@example.com` and `KIM@example.com` are one subscriber. The
  whole address, local part included, is compared lowercased (`digest.store.address_key`), as
  mail providers treat it in practice, so an address unsubscribed in one case never comes back
  in another. The store keeps, and sends to, the spelling it first stored.
- Domains are stored in their ASCII (IDNA) form, `user@bücher.example` as
  `user@xn--bcher-kva.example`: that is what every mail server can deliver to.
- A local part in UTF-8 (`jörg@example.com`) is kept as written. It can only be sent through
  a server that offers SMTPUTF8; a send through one that does not fails that one address with
  the reason (`digest.send.smtp`), and the others are sent.

Also the editor's commands on single subscribers (`digest subscribers add|remove|export|show`):
the suppression list (unsubscribed, bounced, complained) always wins, so `add` refuses a
suppressed address and `remove` puts the address on it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from digest.compose.strings import LANGUAGES, language_tag
from digest.config import Config
from digest.errors import SubscriberError
from digest.store import Store, StoredSubscriber, WebStore, address_key

REQUIRED = ("email",)
KNOWN = ("email", "name", "themes", "language", "status")
# bounced and complained are what `export` writes for suppressed addresses; imported, they are
# inactive rows like unsubscribed (a row never lifts or creates a suppression).
STATUSES = ("active", "paused", "unsubscribed", "bounced", "complained")
REMOVED = "removed by an editor"


@dataclass(frozen=True)
class ParsedList:
    subscribers: tuple[StoredSubscriber, ...]
    problems: tuple[str, ...]  # "file:line: reason", one per bad row
    duplicates: int = 0


# The common address, checked here in a few microseconds: an ASCII dot-atom local part of the
# usual characters and a domain of letter-digit-hyphen labels (none with "--", which IDNA
# rules) under a top-level domain of letters that is not special-use (email-validator's
# list). What this accepts, email-validator accepts with the same result (tests/test_bulk.py
# checks them against each other); everything else goes through email-validator.
_PLAIN = re.compile(
    r"(?P<local>[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)

_SPECIAL_USE = tuple("." + name for name in SPECIAL_USE_DOMAIN_NAMES)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain_address(address: str) -> str | None:
    match = _PLAIN.fullmatch(address)
    if match is None or len(address) > 254 or len(match["local"]) > 64:
        return None
    domain = match["domain"].lower()
    if "--" in domain or len(domain) > 253:
        return None
    if ("." + domain).endswith(_SPECIAL_USE):
        return None
    return f"{match['local']}@{domain}"


def normalize_address(address: str) -> str:
    """The canonical form of an address, or SubscriberError with the reason."""
    if "\r" in address or "\n" in address or "\x00" in address:
        raise SubscriberError("address contains a line break or NUL")
    plain = _plain_address(address.strip())
    if plain is not None:
        return plain
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(str(exc)) from None
    # email-validator keeps the local part as written (NFC); the domain goes on the wire, and
    # is stored, in its lowercase ASCII (IDNA) form.
    return f"{result.local_part}@{result.ascii_domain}"


def parse_subscribers(path: Path, themes: Collection[str], text: str | None = None) -> ParsedList:
    if text is None:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise SubscriberError(f"{path}: file not found") from None
        except IsADirectoryError:
            raise SubscriberError(f"{path}: a folder, not a CSV file") from None
        except UnicodeDecodeError:
            raise SubscriberError(f"{path}: not UTF-8 text") from None
        except OSError as exc:
            raise SubscriberError(f"{path}: cannot read: {exc.strerror or exc}") from None
    reader = csv.reader(io.StringIO(text))
    try:
        return _parse_rows(path, themes, reader)
    except csv.Error as exc:
        # A field over csv.field_size_limit() (131,072 characters), a NUL, ...: the reader
        # cannot go on, so the whole file is refused, with the line it stopped at.
        raise SubscriberError(f"{path}:{reader.line_num}: not a readable CSV row: {exc}") from None


def _parse_rows(path: Path, themes: Collection[str], reader: Any) -> ParsedList:
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
    found: dict[str, StoredSubscriber] = {}  # by address_key
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
        key = address_key(sub.email)
        if key in found:
            duplicates += 1
        found[key] = sub  # the last row wins (its spelling too), in the first row's place
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
    # A region or script subtag is fine ("en-US", "ko_KR"): the email only knows ko and en.
    language = language_tag(get("language"))
    if language not in ("", *LANGUAGES):
        raise SubscriberError(
            f"language must be ko or en (or empty: the site's), not {get('language')!r}"
        )
    name = get("name")
    if _CONTROL.search(name):
        if "\r" in name or "\n" in name:
            raise SubscriberError("name contains a line break")
        raise SubscriberError("name contains a control character")
    return StoredSubscriber(email, name, tuple(dict.fromkeys(chosen)), language, status)


# -- single subscribers: add, remove, export, show ------------------------------------------


def make_subscriber(
    store: Store,
    email: str,
    themes: Collection[str],
    *,
    name: str | None = None,
    chosen: str | None = None,
    language: str | None = None,
    status: str | None = None,
) -> StoredSubscriber:
    """A subscriber from command-line values, validated like a CSV row. For an existing
    subscriber, a value not given (None) keeps what the store has."""
    try:
        current = WebStore(store.engine).subscriber(normalize_address(email))
    except SubscriberError:
        current = None
    row = {
        # An existing subscriber keeps the spelling it was stored with (any case is the same).
        "email": current.email if current else email,
        "name": name if name is not None else (current.name if current else ""),
        "themes": chosen if chosen is not None else ",".join(current.themes if current else ()),
        "language": language if language is not None else (current.language if current else ""),
        "status": status if status is not None else (current.status if current else "active"),
    }
    return _row(row, themes)


def lookup_address(address: str) -> str:
    """The normalized form of an address given on the command line (as typed if invalid,
    so that an odd stored address can still be shown)."""
    try:
        return normalize_address(address)
    except SubscriberError:
        return address.strip()


def add_subscriber(store: Store, sub: StoredSubscriber) -> str:
    """Add or update one subscriber: "added" or "updated". A suppressed address is refused."""
    record = store.suppression_record(sub.email)
    if record is not None:
        reason, detail, when = record
        raise SubscriberError(
            f"{sub.email} is suppressed ({reason} on {when:%Y-%m-%d}"
            f"{': ' + detail if detail else ''}); only the subscriber can resubscribe"
        )
    added, _updated, _skipped = store.upsert_subscribers([sub])
    return "added" if added else "updated"


def remove_subscriber(store: Store, email: str) -> str:
    """Unsubscribe `email` for good: it goes on the suppression list (reason unsubscribed),
    so no list file re-subscribes it. Returns the previous state."""
    web = WebStore(store.engine)
    record = store.suppression_record(email)
    if record is not None:
        return f"already suppressed ({record[0]})"
    if web.subscriber(email) is None:
        raise SubscriberError(f"{email}: not a subscriber (see `digest subscribers list`)")
    store.suppress(email, "unsubscribed", REMOVED)
    return "unsubscribed"


def export_subscribers(store: Store, out: TextIO) -> int:
    """Write every subscriber as CSV in the import format; the status column says why a
    suppressed address gets nothing (unsubscribed, bounced, complained)."""
    suppressed = store.suppressed()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KNOWN)
    rows = store.subscribers()
    for sub in rows:
        status = suppressed.get(sub.email, sub.status)
        writer.writerow([sub.email, sub.name, ",".join(sub.themes), sub.language, status])
    return len(rows)


def describe_subscriber(store: Store, email: str, timezone: str = "UTC") -> list[str]:
    """What `digest subscribers show` prints: themes, status, and each digest sent, when."""
    zone = ZoneInfo(timezone)

    def when(value: datetime) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    sub = WebStore(store.engine).subscriber(email)
    if sub is not None:
        email = sub.email  # the spelling the store keeps, whatever case was typed
    record = store.suppression_record(email)
    history = store.deliveries_for(email)
    if sub is None and record is None and not history:
        raise SubscriberError(f"{email}: not a subscriber (see `digest subscribers list`)")
    lines = [f"email:     {email}"]
    if sub is not None:
        lines += [
            f"name:      {sub.name or '-'}",
            f"themes:    {', '.join(sub.themes) or '(everything)'}",
            f"language:  {sub.language or '(site default)'}",
        ]
    else:
        lines.append("(not on the subscriber list)")
    if record is not None:
        reason, detail, since = record
        note = f" ({detail})" if detail else ""
        lines.append(f"status:    {reason} since {when(since)}{note}")
    elif sub is not None:
        lines.append(f"status:    {sub.status}")
    lines.append(f"digests:   {len(history)}")
    for row in history:
        lines.append(f"  {when(row['updated'])}  {row['status']:8}  {row['subject']}")
    return lines


def sync_list_files(config: Config, store: Store) -> list[str]:
    """Add the new addresses of the lists in `subscribers.files`, before a send.

    Subscribers already in the store keep what they chose on the preferences page (a list
    file never overwrites it; `digest subscribers import` does, on purpose), and suppressed
    addresses are never re-subscribed. Returns the bad rows, as `file:line: reason`.
    """
    keys = [t.key for t in config.themes]
    problems: list[str] = []
    for path in config.subscribers.files:
        try:
            parsed = parse_subscribers(path, keys)
        except SubscriberError as exc:
            # A missing or unreadable list is reported; the subscribers already in the store
            # still get their digest.
            problems.append(str(exc))
            continue
        problems.extend(parsed.problems)
        store.upsert_subscribers(parsed.subscribers, update_existing=False)
    return problems
