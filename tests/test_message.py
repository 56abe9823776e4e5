"""Building one recipient's message: headers, encodings, limits, injection."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy

import pytest

from digest.compose.message import build_message, message_id, parse_sender
from digest.compose.render import RenderedDigest
from digest.errors import ConfigError
from digest.models import Recipient

RENDERED = RenderedDigest(
    subject="해봄의 아카이브 다이제스트 #3 · 2026년 11월 23일 (월)",
    html="<html><body><p>" + "가나다라 " * 600 + "</p></body></html>",
    text="제목\n\n요약 문장입니다.\n",
    preheader="미리보기",
)
WHEN = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def build(recipient: Recipient) -> bytes:
    return build_message(
        RENDERED,
        recipient,
        digest_id="d1",
        sender="해봄의 아카이브 <digest@haebom.example>",
        list_id="해봄의 아카이브",
        date=WHEN,
    ).data


def test_headers_are_encoded_and_lines_are_short() -> None:
    data = build(
        Recipient("jun@example.com", "박준", "https://x.example/u/t", "https://x.example/p/t")
    )
    head, _, _body = data.partition(b"\r\n\r\n")
    assert head.isascii()  # Subject, From and To display names RFC 2047-encoded
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    msg = email.message_from_bytes(data, policy=policy.default)
    assert msg["Subject"] == RENDERED.subject
    assert msg["To"].addresses[0].display_name == "박준"
    assert msg["List-Unsubscribe"].strip() == (
        "<https://x.example/u/t>, <mailto:digest@haebom.example?subject=unsubscribe>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Date"] == "Mon, 23 Nov 2026 08:00:00 +0000"
    parts = {p.get_content_type(): p for p in msg.iter_parts()}
    assert parts["text/html"]["Content-Transfer-Encoding"] == "quoted-printable"
    assert parts["text/plain"]["Content-Transfer-Encoding"] == "quoted-printable"
    assert "가나다라" in parts["text/html"].get_content()


def test_message_id_is_fixed_by_digest_and_recipient() -> None:
    a = message_id("d1", "a@example.com", "haebom.example")
    assert a == message_id("d1", "a@example.com", "haebom.example")
    assert a != message_id("d1", "b@example.com", "haebom.example")
    assert a != message_id("d2", "a@example.com", "haebom.example")
    msg = email.message_from_bytes(build(Recipient("a@example.com")), policy=policy.default)
    assert msg["Message-ID"].strip() == message_id("d1", "a@example.com", "haebom.example")


def test_header_injection_is_impossible() -> None:
    with pytest.raises(ValueError):
        build(Recipient("victim@example.com\r\nBcc: all@example.com"))
    data = build(Recipient("ok@example.com", "Eve\r\nBcc: all@example.com"))
    msg = email.message_from_bytes(data, policy=policy.default)
    assert msg["Bcc"] is None


def test_sender_must_be_an_address() -> None:
    with pytest.raises(ConfigError, match=r"site\.sender"):
        parse_sender("no address here")


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("Alexandra Morgan-Whitfield III", "alexandra.morgan-whitfield.third@example.org"),
        ("김민지", "minji.kim.with.a.rather.long.mailbox.name@example.com"),
        ("남궁 민지 알렉산드라 김", "someone.with.a.long.mailbox@example.com"),
        ('Quoted "Nick" O\'Brien, Jr.', "nick@example.com"),
        ("", "plain@example.com"),
    ],
)
def test_long_and_non_ascii_display_names_parse_back(name: str, address: str) -> None:
    data = build(Recipient(address, name))
    head = data.partition(b"\r\n\r\n")[0]
    assert head.isascii()
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    msg = email.message_from_bytes(data, policy=policy.default)
    to = msg["To"].addresses[0]
    assert to.addr_spec == address
    assert to.display_name == " ".join(name.split())
    sender = msg["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("해봄의 아카이브", "digest@haebom.example")


def test_very_long_names_stay_outside_the_address() -> None:
    # Split over several encoded-words; the address stays a plain angle-addr after a fold.
    data = build(Recipient("someone@example.com", "아주 긴 이름을 가진 구독자 " * 10))
    head = data.partition(b"\r\n\r\n")[0]
    assert head.isascii() and all(len(line) <= 78 for line in head.split(b"\r\n"))
    msg = email.message_from_bytes(data, policy=policy.default)
    assert msg["To"].addresses[0].addr_spec == "someone@example.com"
