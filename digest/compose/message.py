"""Building the email for one recipient from a rendered digest. Pure: no clock, no socket.

multipart/alternative with a text part and an HTML part (both quoted-printable, so no line
exceeds 998 octets), the Subject and display names RFC 2047-encoded, a Message-ID fixed by
(digest, recipient) so a retry is the same message, and RFC 8058 one-click unsubscribe headers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

from digest.compose.render import RenderedDigest, personalize
from digest.errors import ConfigError
from digest.models import Recipient

_FORBIDDEN = {chr(c) for c in range(32) if c != 9} | {"\x7f"}


@dataclass(frozen=True)
class Envelope:
    sender: str  # bare address for MAIL FROM
    recipient: str
    message_id: str
    data: bytes


def parse_sender(value: str) -> tuple[str, str]:
    """("Display Name", "addr@example") from 'Display Name <addr@example>'."""
    name, addr = parseaddr(value)
    if "@" not in addr or any(c in value for c in _FORBIDDEN):
        raise ConfigError(f"'site.sender': not a valid address: {value!r}")
    return name, addr


def message_id(digest_id: str, email: str, domain: str) -> str:
    # Fixed by (digest, recipient): a retry of the same message carries the same id.
    token = hashlib.sha256(f"{digest_id}\x00{email}".encode()).hexdigest()[:32]
    return f"<{token}@{domain}>"


def _address(name: str, addr: str) -> Address:
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def _clean_header(value: str) -> str:
    # Header injection is impossible: control characters never reach a header.
    return "".join(" " if c in _FORBIDDEN else c for c in value)


def build_message(
    rendered: RenderedDigest,
    recipient: Recipient,
    *,
    digest_id: str,
    sender: str,
    list_id: str,
    date: datetime,
    reply_to: str = "",
) -> Envelope:
    sender_name, sender_addr = parse_sender(sender)
    domain = sender_addr.rpartition("@")[2]
    if any(c in recipient.email for c in _FORBIDDEN):
        raise ValueError(f"recipient address contains control characters: {recipient.email!r}")
    html, text = personalize(rendered, recipient)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = _address(_clean_header(sender_name), sender_addr)
    msg["To"] = _address(_clean_header(recipient.name), recipient.email)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = _clean_header(rendered.subject)
    msg["Date"] = format_datetime(date)
    mid = message_id(digest_id, recipient.email, domain)
    msg["Message-ID"] = mid
    msg["List-Id"] = f"{_clean_header(list_id)} <digest.{domain}>"
    if recipient.unsubscribe_url:
        mailto = f"mailto:{sender_addr}?subject=unsubscribe"
        msg["List-Unsubscribe"] = f"<{recipient.unsubscribe_url}>, <{mailto}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return Envelope(sender_addr, recipient.email, mid, msg.as_bytes())
