"""Hostile input on the subscriber pages (issue 19): malformed or non-ASCII link tokens and form
stamps are a 404 or a 403, never a 500; and every error page, a 500 included, carries the same
security headers as the others."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.store import WebStore
from digest.tokens import make_token, read_token
from digest.web.common import Csrf
from tests.browser.support import web_config
from tests.test_web import JUN, Site, open_site

SECRET = b"test-secret"
SECURITY = {
    "content-security-policy": "default-src 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    yield from open_site(web_config(tmp_path))


def _bad_tokens(good: str) -> list[str]:
    head, mac = good.split(".")
    return [
        f"{head}.{mac[:-1]}é",  # a non-ASCII MAC
        f"{head}.{'é' * len(mac)}",
        f"{head}.\u0661\u0662\u0663",  # Arabic-Indic digits
        f"{head}.{mac}\U0001f600",
        f"é{head}.{mac}",
        f"{head}.",
        f".{mac}",
        "a..b",  # ("." and ".." alone are path segments: the client resolves them)
        f"{head}.{mac}.{mac}",
        f"{head}==.{mac}",
        "%00.%00",
        f"{head}%20.{mac}",
        "4pyTCg.abc",  # base64 of a non-address
        "_-_-.____",
        "gA.abc",  # base64 of a byte that is not UTF-8
        "a" * 599,
    ]


def _assert_headers(response: object, where: str) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    for name, value in SECURITY.items():
        assert value in headers.get(name, ""), (where, name, dict(headers))


def test_read_token_never_raises() -> None:
    good = make_token(SECRET, "unsubscribe", JUN)
    assert read_token(SECRET, "unsubscribe", good) == JUN
    for token in _bad_tokens(good):
        assert read_token(SECRET, "unsubscribe", token) is None, token
    assert read_token(SECRET, "other purpose", good) is None


def test_malformed_link_tokens_get_404_not_500(site: Site) -> None:
    for purpose, prefix in (("unsubscribe", "/u/"), ("preferences", "/p/")):
        for token in _bad_tokens(site.token(purpose, JUN)):
            for method, kwargs in (
                ("GET", {}),
                ("POST", {"data": {"List-Unsubscribe": "One-Click"}}),
            ):
                response = site.call(method, prefix + token, **kwargs)
                assert response.status_code == 404, (token, method, response.status_code)
                _assert_headers(response, f"{method} {prefix}{token}")
    assert site.store.suppressed() == {}
    assert JUN in site.active()


CSRF_STAMPS = [
    "1.é",
    "1." + "é" * 32,
    "\u0661\u0662\u0663.0123456789abcdef0123456789abcdef",  # int() would read these digits
    "²." + "0" * 32,  # isdigit() but not int()
    "9" * 400 + "." + "0" * 32,
    ".",
    "",
    "1.2.3",
    "-1." + "0" * 32,
    "１２３." + "0" * 32,  # full-width digits
    "1\x00." + "0" * 32,
]


def test_malformed_csrf_stamps_get_403_not_500(site: Site) -> None:
    for purpose, prefix, extra in (
        ("unsubscribe", "/u/", {}),
        ("preferences", "/p/", {"action": "leave"}),
    ):
        url = prefix + site.token(purpose, JUN)
        for stamp in CSRF_STAMPS:
            response = site.call("POST", url, data={"csrf": stamp, **extra})
            assert response.status_code == 403, (stamp, response.status_code)
            _assert_headers(response, f"POST {url} csrf={stamp!r}")
    assert site.store.suppressed() == {}


def test_csrf_check_never_raises() -> None:
    from starlette.requests import Request

    csrf = Csrf(SECRET, "https://news.example")
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/u/x",
        "headers": [(b"host", b"news.example")],
        "scheme": "https",
        "server": ("news.example", 443),
        "query_string": b"",
    }
    request = Request(scope)
    for stamp in CSRF_STAMPS:
        assert csrf.check(request, stamp) is False, stamp
    assert csrf.check(request, csrf.token("/u/x")) is True


def test_500_page_carries_the_security_headers(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: WebStore) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(WebStore, "archived_digests", boom)
    response = site.call("GET", "/archive")
    assert response.status_code == 500
    assert "secret internal detail" not in response.text
    _assert_headers(response, "500")
    # and the 4xx pages as before
    _assert_headers(site.call("GET", "/nowhere"), "404")
    _assert_headers(site.call("PUT", "/archive"), "405")
