"""Click counting (`[tracking] clicks = true`): post links through `digest serve`. Pure.

With clicks on, each post link of an issue (the title and "read more" in the HTML, the link
in the text part) becomes `<web.base_url>/c/TOKEN`. The token holds the edition id and the
post's key, HMAC-signed with the link secret under a purpose of its own (an unsubscribe or
preferences token can never pass for one, nor the other way round). It holds nothing about
the reader: every reader of an edition gets the very same link for a post, so clicks can only
ever be counted per edition and post, never per person.

`digest serve` answers a valid token with a redirect to the URL the store holds for that post:
the link names a post, never a destination, so it cannot be made to redirect anywhere else.

With `[tracking] opens = true` (only then), the HTML part ends with a 1x1 image whose token
names the edition alone, under a third purpose: loads are counted per edition.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from digest.models import Digest
from digest.store import PostClicks

CLICK_PATH = "c"  # served at <base_url>/c/TOKEN
OPEN_PATH = "o"  # served at <base_url>/o/TOKEN.gif
MAX_CLICK_TOKEN = 1200  # longer path segments are refused before any decoding
_PURPOSE = b"click\x00"
_OPEN_PURPOSE = b"open\x00"
_MAC_BYTES = 16
# The open pixel: a transparent 1x1 GIF.
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
    b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


@dataclass(frozen=True)
class ClickTarget:
    """What a click token names."""

    edition: str
    post_key: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mac(secret: bytes, payload: str, purpose: bytes = _PURPOSE) -> str:
    digest = hmac.new(secret, purpose + payload.encode("ascii"), hashlib.sha256).digest()
    return _b64(digest[:_MAC_BYTES])


def click_token(secret: bytes, edition: str, post_key: str) -> str:
    payload = _b64(f"{edition}\x00{post_key}".encode())
    return f"{payload}.{_mac(secret, payload)}"


def _verified(secret: bytes, token: str, purpose: bytes) -> str | None:
    """The text a `purpose` token carries, or None when it is forged, tampered or mistyped.

    Anything a visitor can put in a URL is just a token that does not verify, never an
    exception."""
    if len(token) > MAX_CLICK_TOKEN or not token.isascii():
        return None
    payload, dot, mac = token.partition(".")
    if not dot or not payload or not mac:
        return None
    if not hmac.compare_digest(_mac(secret, payload, purpose).encode(), mac.encode()):
        return None
    try:
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8")
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        return None


def read_click_token(secret: bytes, token: str) -> ClickTarget | None:
    """The edition and post a click token names, or None when it does not verify."""
    text = _verified(secret, token, _PURPOSE)
    edition, nul, post_key = (text or "").partition("\x00")
    if not nul or not edition or not post_key:
        return None
    return ClickTarget(edition, post_key)


def open_token(secret: bytes, edition: str) -> str:
    payload = _b64(edition.encode())
    return f"{payload}.{_mac(secret, payload, _OPEN_PURPOSE)}"


def read_open_token(secret: bytes, token: str) -> str | None:
    """The edition an open-pixel token names, or None when it does not verify."""
    return _verified(secret, token, _OPEN_PURPOSE) or None


def open_pixel(base_url: str, secret: bytes, edition: str) -> str:
    """The URL of `edition`'s open pixel: the same for every reader of the edition."""
    return f"{base_url.rstrip('/')}/{OPEN_PATH}/{open_token(secret, edition)}.gif"


_PIXEL_TAG = re.compile(
    rf'<img src="[^"<>]*/{OPEN_PATH}/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.gif" width="1" height="1"'
    r' alt=""[^<>]*>\n?'
)


def strip_pixel(markup: str) -> str:
    """`markup` without its open pixel: a public copy (the archive) never counts as opened."""
    return _PIXEL_TAG.sub("", markup)


def click_links(base_url: str, secret: bytes, edition: str, digest: Digest) -> dict[str, str]:
    """post key -> the counted link that stands for the post's URL in `digest`."""
    base = base_url.rstrip("/")
    return {
        item.post.key: f"{base}/{CLICK_PATH}/{click_token(secret, edition, item.post.key)}"
        for item in (*digest.items, *digest.overflow)
    }


def click_report(counts: Iterable[PostClicks], *, width: int = 60) -> list[str]:
    """`digest status` lines: each post of an edition with its clicks, most clicked first."""
    rows = list(counts)
    total = sum(row.clicks for row in rows)
    lines = [f"clicks ({total} in all; per post, never per reader)"]
    for row in rows:
        title = " ".join(row.title.split()) or row.post_key
        if len(title) > width:
            title = title[: width - 1] + "…"
        lines.append(f"  {row.clicks:9} {title}")
    return lines
