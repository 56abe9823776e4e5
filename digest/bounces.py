"""Bounces that arrive later: RFC 3464 delivery status notifications read from a mailbox.

`digest bounces PATH` reads every message of a Maildir (a folder with `cur/` and `new/`), an
mbox file, or a single message file. Each DSN (`multipart/report; report-type=delivery-status`)
is matched to the subscriber it was about:

1. by the original message's Message-ID, found in the `message/rfc822` or
   `text/rfc822-headers` part, looked up in the store's delivery rows (each message has a
   Message-ID fixed by digest and recipient);
2. else by a VERP return path: with `delivery.verp`, the envelope sender of the message to
   `user@domain` is `{local}+user=domain@{sender-domain}` (`verp_address`), so the bounce
   comes back to that address, seen in `To`, `Delivered-To`, `X-Original-To` or `Envelope-To`.

The `Final-Recipient` alone is never trusted to name a subscriber: it is reported, not used.
A hard bounce (any recipient block with `Status: 5.x.x`) puts the address on the suppression
list (reason `bounced`); a soft one (`4.x.x`, or `Action: delayed`) is only reported. Reading a
mailbox changes nothing in it, so running the command again is harmless.
"""

from __future__ import annotations

import email
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses
from pathlib import Path

from digest.errors import DigestError
from digest.store import Store

_STATUS = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_VERP_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "X-Envelope-To")
_ACTIONS_NOT_BOUNCES = ("delivered", "relayed", "expanded")


class BounceError(DigestError):
    """The mailbox cannot be read."""


# -- VERP ---------------------------------------------------------------------------------


def verp_address(sender: str, recipient: str) -> str:
    """The VERP envelope sender for a message from `sender` to `recipient`:
    `digest@news.example` + `kim@example.com` -> `digest+kim=example.com@news.example`.

    The recipient's domain is written in its ASCII (IDNA) form so the envelope stays ASCII
    whenever the recipient's local part is. `parse_verp` reverses it.
    """
    local, at, domain = sender.rpartition("@")
    user, at2, rdomain = recipient.rpartition("@")
    if not at or not at2 or not local or not user or not rdomain:
        raise ValueError(f"not an address: {sender if not at else recipient!r}")
    return f"{local}+{user}={_ascii_domain(rdomain)}@{domain}"


def parse_verp(address: str, sender: str) -> str | None:
    """The recipient encoded in a VERP `address` made by `verp_address(sender, ...)`, or None
    when `address` is not one (another local part or domain). The domain comes back in its
    Unicode form, as subscriber addresses are stored."""
    local, _, domain = sender.rpartition("@")
    a_local, at, a_domain = address.strip().strip("<>").rpartition("@")
    if not at or a_domain.lower() != domain.lower():
        return None
    prefix = f"{local}+"
    if not a_local.lower().startswith(prefix.lower()):
        return None
    user, eq, rdomain = a_local[len(prefix) :].rpartition("=")
    if not eq or not user or not rdomain:
        return None
    return f"{user}@{_unicode_domain(rdomain)}"


def _ascii_domain(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain.lower()


def _unicode_domain(domain: str) -> str:
    try:
        return domain.encode("ascii").decode("idna").lower()
    except UnicodeError:
        return domain.lower()


# -- DSN parsing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientStatus:
    final_recipient: str
    action: str  # failed | delayed | delivered | relayed | expanded ("" if missing)
    status: str  # "5.1.1" ("" if none could be found)
    diagnostic: str

    @property
    def hard(self) -> bool:
        return self.status.startswith("5.") and self.action not in _ACTIONS_NOT_BOUNCES

    @property
    def soft(self) -> bool:
        return not self.hard and self.action not in _ACTIONS_NOT_BOUNCES


@dataclass(frozen=True)
class DeliveryStatus:
    """What one DSN says: per-recipient results and how to find the original recipient."""

    recipients: tuple[RecipientStatus, ...]
    original_message_id: str  # "" when the DSN carries no original headers
    envelope_addresses: tuple[str, ...]  # where the DSN was delivered (VERP candidates)

    @property
    def hard(self) -> bool:
        return any(r.hard for r in self.recipients)

    @property
    def soft(self) -> bool:
        return not self.hard and any(r.soft for r in self.recipients)

    def worst(self) -> RecipientStatus | None:
        ranked = [r for r in self.recipients if r.hard] or [r for r in self.recipients if r.soft]
        return ranked[0] if ranked else None


def _clean(value: object) -> str:
    return " ".join(str(value or "").split())


def _field(block: Message, name: str) -> str:
    return _clean(block.get(name, ""))


def _typed_value(value: str) -> str:
    """`rfc822; user@example.com` -> `user@example.com`."""
    _, _, rest = value.partition(";")
    return (rest or value).strip().strip("<>")


def _status_code(status: str, diagnostic: str) -> str:
    for text in (status, diagnostic):
        found = _STATUS.search(text)
        if found:
            return ".".join(found.groups())
    # A bare SMTP reply in the diagnostic ("smtp; 550 No such user"): its class is enough.
    reply = re.search(r"(?:^|;\s*)([245])\d\d\b", diagnostic)
    return f"{reply.group(1)}.0.0" if reply else ""


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):  # the parser splits message/delivery-status into blocks
        return [b for b in payload if isinstance(b, Message)]
    text = payload if isinstance(payload, str) else ""
    parser = HeaderParser()
    return [parser.parsestr(chunk.strip() + "\n") for chunk in re.split(r"\n\s*\n", text)]


def _original_message_id(report: Message) -> str:
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                mid = _clean(inner[0].get("Message-ID", ""))
                if mid:
                    return mid
        elif ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
            mid = _clean(HeaderParser().parsestr(text, headersonly=True).get("Message-ID", ""))
            if mid:
                return mid
    return ""


def parse_dsn(message: Message) -> DeliveryStatus | None:
    """The delivery status in `message`, or None when it is not an RFC 3464 report."""
    if message.get_content_type() != "multipart/report":
        return None
    status_part = next(
        (
            p
            for p in message.walk()
            if p.get_content_type() in ("message/delivery-status", "message/global-delivery-status")
        ),
        None,
    )
    if status_part is None:
        return None
    recipients: list[RecipientStatus] = []
    reported_id = ""  # Gmail names the original in the per-message block
    for block in _status_blocks(status_part):
        final = _field(block, "Final-Recipient") or _field(block, "Original-Recipient")
        if not final:  # the per-message block (Reporting-MTA, Arrival-Date...)
            reported_id = reported_id or _field(block, "X-Original-Message-ID")
            continue
        diagnostic = _field(block, "Diagnostic-Code")
        recipients.append(
            RecipientStatus(
                final_recipient=_typed_value(final),
                action=_field(block, "Action").lower(),
                status=_status_code(_field(block, "Status"), diagnostic),
                diagnostic=_typed_value(diagnostic) if diagnostic else "",
            )
        )
    if not recipients:
        return None
    envelope = tuple(
        dict.fromkeys(
            addr
            for name in _VERP_HEADERS
            for _, addr in getaddresses([str(v) for v in message.get_all(name, [])])
            if addr
        )
    )
    original = _original_message_id(message) or reported_id
    return DeliveryStatus(tuple(recipients), original, envelope)


# -- mailboxes ------------------------------------------------------------------------------


def read_messages(path: Path) -> Iterator[tuple[str, Message]]:
    """(name, message) for every message in a Maildir, an mbox file or a single message file.
    Nothing in the mailbox is changed."""
    if path.is_dir():
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise BounceError(f"{path}: not a Maildir (no cur/ or new/ folder)")
        box: mailbox.Mailbox[mailbox.Message] = mailbox.Maildir(path, factory=None, create=False)
    elif path.is_file():
        with path.open("rb") as fh:
            head = fh.read(5)
        if head != b"From ":
            yield path.name, _parse(path.read_bytes())
            return
        box = mailbox.mbox(path, factory=None, create=False)
    else:
        raise BounceError(f"{path}: no such Maildir or mbox file")
    try:
        for key in sorted(box.keys()):
            try:
                data = box.get_bytes(key)
            except (OSError, KeyError):
                continue  # moved or deleted while we read
            yield f"{path.name}/{key}", _parse(data)
    finally:
        box.close()


def _parse(data: bytes) -> Message:
    return email.message_from_bytes(data, policy=policy.compat32)


# -- processing -----------------------------------------------------------------------------


@dataclass
class BounceReport:
    hard: list[tuple[str, str]] = field(default_factory=list)  # (email, status and diagnostic)
    soft: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (message, what it said)
    not_dsn: int = 0  # messages that are not delivery status notifications (skipped)
    other: int = 0  # DSNs that report a success (delivered, relayed, expanded)

    def summary(self) -> str:
        return (
            f"{len(self.hard)} hard (suppressed), {len(self.soft)} soft, "
            f"{len(self.unmatched)} unmatched, {self.not_dsn} not a DSN"
            + (f", {self.other} not a failure" if self.other else "")
        )


def process_bounces(path: Path, store: Store, sender: str, *, verp: bool = True) -> BounceReport:
    """Read every DSN under `path`, match it to a recipient and suppress hard bounces.

    `sender` is the envelope sender address the digests go out from (VERP is decoded
    against it). With `verp` False, only Message-IDs are used.
    """
    found: list[tuple[str, DeliveryStatus]] = []
    report = BounceReport()
    for name, message in read_messages(path):
        dsn = parse_dsn(message)
        if dsn is None:
            report.not_dsn += 1
        else:
            found.append((name, dsn))
    by_mid = store.recipients_by_message_id(d.original_message_id for _, d in found)
    verp_candidates: dict[str, str] = {}  # DSN name -> decoded recipient
    if verp:
        for name, dsn in found:
            for addr in dsn.envelope_addresses:
                decoded = parse_verp(addr, sender)
                if decoded:
                    verp_candidates[name] = decoded
                    break
    known = store.known_addresses(verp_candidates.values())
    for name, dsn in found:
        worst = dsn.worst()
        if worst is None:
            report.other += 1
            continue
        recipient = by_mid.get(dsn.original_message_id) if dsn.original_message_id else None
        if recipient is None and name in verp_candidates:
            recipient = known.get(verp_candidates[name].lower())
        detail = " ".join(x for x in (worst.status, worst.diagnostic) if x) or worst.action
        detail = detail if len(detail) <= 300 else detail[:299] + "…"
        if recipient is None:
            report.unmatched.append((name, f"{worst.final_recipient}: {detail}"))
        elif dsn.hard:
            store.suppress(recipient, "bounced", detail)
            report.hard.append((recipient, detail))
        else:
            report.soft.append((recipient, detail))
    return report
