"""Signed link tokens: tied to one address and one purpose, unforgeable without the secret."""

from __future__ import annotations

from digest.tokens import make_token, read_token

SECRET = b"s3cret"


def test_round_trip() -> None:
    token = make_token(SECRET, "unsubscribe", "kim@example.com")
    assert read_token(SECRET, "unsubscribe", token) == "kim@example.com"


def test_other_purpose_address_or_secret_is_refused() -> None:
    token = make_token(SECRET, "unsubscribe", "kim@example.com")
    assert read_token(SECRET, "preferences", token) is None
    assert read_token(b"other", "unsubscribe", token) is None
    encoded, mac = token.split(".")
    other = make_token(SECRET, "unsubscribe", "lee@example.com").split(".")[0]
    assert read_token(SECRET, "unsubscribe", f"{other}.{mac}") is None  # moved to another address
    assert read_token(SECRET, "unsubscribe", f"{encoded}.{mac[:-1]}A") is None
    assert read_token(SECRET, "unsubscribe", "garbage") is None
    assert read_token(SECRET, "unsubscribe", "%%%.###") is None
