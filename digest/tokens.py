"""Signed, opaque tokens for per-recipient links (unsubscribe, preferences).

A token binds one purpose to one address with an HMAC-SHA256 over both, so it cannot be forged
or moved to another address. The secret comes from the environment variable named in the
config; without it, a random secret is created once in a file beside the store (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from digest.config import Config

PURPOSES = ("unsubscribe", "preferences")


def load_secret(config: Config) -> bytes:
    value = os.environ.get(config.web.secret_env, "")
    if value:
        return value.encode()
    path = config.store.path.with_name(config.store.path.name + ".secret")
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret: bytes, purpose: str, email: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    mac = hmac.new(secret, f"{purpose}\x00{email}".encode(), hashlib.sha256).digest()[:18]
    return f"{_b64(email.encode())}.{_b64(mac)}"


def read_token(secret: bytes, purpose: str, token: str) -> str | None:
    """The address a token was made for, or None when it is forged, tampered or mistyped."""
    try:
        encoded, _mac = token.split(".", 1)
        email = _unb64(encoded).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    expected = make_token(secret, purpose, email)
    return email if hmac.compare_digest(expected, token) else None
