"""Signed, opaque tokens for per-recipient links (unsubscribe, preferences).

A token binds one purpose to one address with an HMAC-SHA256 over both, so it cannot be forged
or moved to another address. A sign-up confirmation token carries the whole pending sign-up
(address, name, themes, when) under a MAC of its own key: nothing is stored until it is used.
The secret comes from the environment variable named in the config; without it, a random
secret is created once: in the store's `settings` table when the store is a shared database
(`store.url`), else in a file beside the SQLite store (mode 0600).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from digest.config import Config
from digest.errors import ConfigError

PURPOSES = ("unsubscribe", "preferences")


MIN_SECRET_BYTES = 16  # a secret file with less than this (after strip) is refused


def load_secret(config: Config) -> bytes:
    """The link-signing secret: $<secret_env> if set and not empty, else the store's file.

    The file is made once, atomically: the random value is written and synced in a temporary
    file beside it and then published with a hard link, which fails if another process has
    published its own first (that one is used). So the file is never seen empty or half written;
    one that is anyway (an older version's crash, a hand edit) is refused with a ConfigError.
    """
    env = config.web.secret_env
    value = os.environ.get(env, "")
    if value:
        return value.encode()
    if config.store.url:
        # A shared store (PostgreSQL): the secret lives in it, so every host that sends or
        # serves the pages signs and checks links with the same one.
        from digest.store import Store

        store = Store.from_config(config.store)
        try:
            return store.shared_setting("link_secret", lambda: secrets.token_urlsafe(32)).encode()
        finally:
            store.close()
    path = config.store.path.with_name(config.store.path.name + ".secret")
    for _attempt in range(3):
        secret = _read_secret(path, env)
        if secret is None:
            secret = _create_secret(path, env)
        if secret is not None:
            return secret
    raise ConfigError(f"{path}: the link secret keeps disappearing while it is read; set ${env}")


def _read_secret(path: Path, env: str) -> bytes | None:
    """The secret in `path`, or None when there is no such file."""
    try:
        secret = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the link secret: {exc.strerror or exc}; "
            f"let this user read it, or set ${env}"
        ) from None
    if not secret:
        raise ConfigError(
            f"{path}: the link secret is empty (a crash while it was created?); delete the file "
            f"to make a new one (links in earlier emails stop working) or set ${env}"
        )
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{path}: the link secret is too short ({len(secret)} bytes, at least "
            f"{MIN_SECRET_BYTES}); delete the file to make a new one (links in earlier emails "
            f"stop working) or set ${env}"
        )
    return secret


def _create_secret(path: Path, env: str) -> bytes | None:
    """A new secret published at `path`; another process's if it published first.

    None when that other file vanished again before it could be read (the caller retries).
    """
    value = secrets.token_urlsafe(32).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot create the link secret: {exc.strerror or exc}; set ${env}"
        ) from None
    try:
        try:
            with os.fdopen(fd, "wb") as fh:  # mkstemp: mode 0600
                fh.write(value)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)
        except FileExistsError:
            return _read_secret(path, env)  # another process won the race: theirs is complete
        except OSError as exc:
            raise ConfigError(
                f"{path}: cannot create the link secret: {exc.strerror or exc}; set ${env}"
            ) from None
        _sync_folder(path.parent)
        return value
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _sync_folder(folder: Path) -> None:
    """Makes a new name in `folder` survive a power loss (best effort: not every OS can)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    """The address a token was made for, or None when it is forged, tampered or mistyped.

    Whatever a visitor puts in a link (non-ASCII, a stray dot, bad base64, no address) is
    just a token that does not verify: never an exception."""
    if purpose not in PURPOSES or not token.isascii():
        return None
    encoded, dot, _mac = token.partition(".")
    if not dot or not encoded:
        return None
    try:
        email = _unb64(encoded).decode("utf-8")
        expected = make_token(secret, purpose, email)
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        return None
    # Both sides are ASCII bytes here: compare_digest refuses non-ASCII str.
    return email if hmac.compare_digest(expected.encode(), token.encode()) else None


# -- sign-up confirmation: a pending sign-up lives only in its link ----------------------------

MAX_SIGNUP_TOKEN = 4096  # an address of 254 octets, a name of 100 characters, theme keys


@dataclass(frozen=True)
class SignupClaim:
    """What the subscribe form asked for, carried (signed) in the confirmation link."""

    email: str
    name: str
    themes: tuple[str, ...]
    issued: int  # Unix time the form was posted

    def expired(self, now: float, max_age: float) -> bool:
        """Too old, or from the future (beyond a minute of clock skew)."""
        return not -60 <= now - self.issued <= max_age


def _signup_key(secret: bytes) -> bytes:
    # Derived, not the secret itself: a sign-up token can never pass as another link's.
    return hmac.new(secret, b"digest-signup-confirm", hashlib.sha256).digest()


def make_signup_token(secret: bytes, claim: SignupClaim) -> str:
    payload = json.dumps(
        {"e": claim.email, "n": claim.name, "t": list(claim.themes), "i": claim.issued},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    encoded = _b64(payload.encode("utf-8"))
    mac = hmac.new(_signup_key(secret), encoded.encode("ascii"), hashlib.sha256).digest()[:18]
    return f"{encoded}.{_b64(mac)}"


def read_signup_token(secret: bytes, token: str) -> SignupClaim | None:
    """The claim a token carries, or None when it is forged, tampered, too long or garbled
    (never an exception). Whether it has expired is the caller's question (`expired`)."""
    if len(token) > MAX_SIGNUP_TOKEN or not token.isascii():
        return None
    encoded, dot, mac = token.partition(".")
    if not dot or not encoded:
        return None
    expected = hmac.new(_signup_key(secret), encoded.encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(_b64(expected[:18]).encode(), mac.encode()):
        return None
    try:
        data = json.loads(_unb64(encoded).decode("utf-8"))
        claim = SignupClaim(
            email=data["e"], name=data["n"], themes=tuple(data["t"]), issued=data["i"]
        )
    except (ValueError, UnicodeError, KeyError, TypeError):
        return None
    fields_ok = isinstance(claim.email, str) and isinstance(claim.name, str)
    if not fields_ok or not all(isinstance(t, str) for t in claim.themes):
        return None
    if isinstance(claim.issued, bool) or not isinstance(claim.issued, int):
        return None
    return claim
