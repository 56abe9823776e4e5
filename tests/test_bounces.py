"""`digest bounces`: RFC 3464 DSNs (Postfix, Gmail, Exim shaped) from a Maildir or an mbox,
matched by original Message-ID or VERP; hard bounces suppressed, soft ones only reported."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.bounces import (
    BounceError,
    parse_dsn,
    parse_verp,
    process_bounces,
    read_messages,
    verp_address,
)
from digest.cli import main
from digest.config import load_config
from digest.models import Post
from digest.store import Store, StoredSubscriber, WebStore

from .conftest import open_test_store

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bounces"
SENDER = "digest@haebom.example"
SENT = {  # recipient -> the Message-ID its digest carried (as in the fixtures)
    "jun.park@example.com": "<9b1f3c5e7a2d4f6b8c0e1a3b5d7f9a1c@haebom.example>",
    "seoyeon.lee@example.com": "<2c4e6a8b0d1f3a5c7e9b1d3f5a7c9e1b@haebom.example>",
    "minji.kim@example.com": "<5e7a9c1b3d5f7a9c1e3b5d7f9a1c3e5b@haebom.example>",
    "alex.morgan@example.org": "<7d9f1b3d5f7a9c1e3b5d7f9a1c3e5b7d@haebom.example>",
}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def all_fixtures() -> list[bytes]:
    return [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]


def seed(store: Store) -> None:
    """Four subscribers who were each sent one digest, plus one nobody sent anything."""
    subs = [StoredSubscriber(e, "", (), "ko", "active") for e in SENT]
    subs.append(StoredSubscriber("paused.reader@example.com", "", (), "ko", "paused"))
    store.upsert_subscribers(subs)
    post = Post("blog", "p1", "https://x.example/1", "글", "본문", datetime.now(UTC))
    store.upsert_posts([(post, "hash")])
    store.record_digest(
        digest_id="e1-all",
        edition="e1",
        issue_number=1,
        variant="",
        theme=None,
        subject="해봄의 아카이브 다이제스트 #1",
        sections={"all": [post.key]},
        recipients=list(SENT.items()),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_test_store(tmp_path)
    seed(s)
    yield s
    s.close()


def make_maildir(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.Maildir(path, create=True)
    for data in messages:
        box.add(data)
    box.close()
    return path


def make_mbox(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(path, create=True)
    for data in messages:
        box.add(data)
    box.close()
    return path


# -- VERP -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("kim@example.com", "digest+kim=example.com@haebom.example"),
        ("first.last+news@Example.ORG", "digest+first.last+news=example.org@haebom.example"),
        ("a=b@example.com", "digest+a=b=example.com@haebom.example"),
        ("user@bücher.example", "digest+user=xn--bcher-kva.example@haebom.example"),
    ],
)
def test_verp_round_trip(recipient: str, expected: str) -> None:
    address = verp_address(SENDER, recipient)
    assert address == expected
    assert address.isascii()
    local, _, domain = recipient.rpartition("@")
    assert parse_verp(address, SENDER) == f"{local}@{domain.lower()}"
    assert parse_verp(f"<{address.upper()}>", SENDER.upper()) is not None  # case of the MTA


def test_verp_with_a_plus_in_the_sender_and_odd_addresses() -> None:
    sender = "news+weekly@haebom.example"
    address = verp_address(sender, "kim@example.com")
    assert address == "news+weekly+kim=example.com@haebom.example"
    assert parse_verp(address, sender) == "kim@example.com"
    assert parse_verp("digest@haebom.example", SENDER) is None  # the plain sender
    assert parse_verp("digest+kim=example.com@other.example", SENDER) is None
    assert parse_verp("digest+kim@haebom.example", SENDER) is None  # no '='
    assert parse_verp("postmaster@haebom.example", SENDER) is None
    with pytest.raises(ValueError):
        verp_address(SENDER, "not-an-address")


def test_parse_verp_with_a_prefix_that_is_a_prefix_of_another() -> None:
    # "news+weekly+kim=example.com" decoded against "news@" reads user "weekly+kim": the
    # caller only trusts it if that address is a known recipient.
    assert parse_verp("news+weekly+kim=example.com@haebom.example", "news@haebom.example") == (
        "weekly+kim@example.com"
    )


# -- parsing DSNs ---------------------------------------------------------------------------


def parse(name: str):  # type: ignore[no-untyped-def]
    return parse_dsn(message_from_bytes(fixture(name), policy=policy.compat32))


def test_postfix_hard_bounce() -> None:
    dsn = parse("postfix-hard.eml")
    assert dsn is not None and dsn.hard and not dsn.soft
    (rcpt,) = dsn.recipients
    assert rcpt.final_recipient == "jun.park@example.com"
    assert (rcpt.action, rcpt.status) == ("failed", "5.1.1")
    assert rcpt.diagnostic.startswith(
        "550 5.1.1 <jun.park@example.com>: Recipient address rejected"
    )
    assert dsn.original_message_id == SENT["jun.park@example.com"]  # from text/rfc822-headers


def test_postfix_delayed_is_soft() -> None:
    dsn = parse("postfix-delayed.eml")
    assert dsn is not None and dsn.soft and not dsn.hard
    assert dsn.recipients[0].status == "4.4.1"
    assert dsn.recipients[0].action == "delayed"
    assert dsn.original_message_id == SENT["seoyeon.lee@example.com"]


def test_gmail_hard_bounce_with_the_whole_original() -> None:
    dsn = parse("gmail-hard.eml")
    assert dsn is not None and dsn.hard
    assert dsn.recipients[0].final_recipient == "minji.kim@example.com"
    assert dsn.original_message_id == SENT["minji.kim@example.com"]  # from message/rfc822


def test_exim_bounce_without_the_original_has_only_the_return_path() -> None:
    dsn = parse("exim-hard-verp.eml")
    assert dsn is not None and dsn.hard
    assert dsn.recipients[0].status == "5.0.0"
    assert dsn.original_message_id == ""
    assert "digest+alex.morgan=example.org@haebom.example" in dsn.envelope_addresses


def test_not_a_dsn() -> None:
    assert parse("autoreply.eml") is None
    plain = b"From: a@example.com\nTo: b@example.com\nSubject: hi\n\nhello\n"
    assert parse_dsn(message_from_bytes(plain, policy=policy.compat32)) is None


def test_status_from_the_diagnostic_when_the_status_field_is_missing() -> None:
    raw = fixture("postfix-hard.eml").replace(b"Status: 5.1.1\n", b"")
    dsn = parse_dsn(message_from_bytes(raw, policy=policy.compat32))
    assert dsn is not None and dsn.recipients[0].status == "5.1.1" and dsn.hard
    # an IP address in a diagnostic is not a status code
    raw = fixture("postfix-delayed.eml").replace(b"Status: 4.4.1\n", b"")
    dsn = parse_dsn(message_from_bytes(raw, policy=policy.compat32))
    assert dsn is not None and dsn.recipients[0].status == "" and dsn.soft


def test_success_notifications_are_not_bounces() -> None:
    raw = fixture("postfix-hard.eml").replace(b"Action: failed", b"Action: delivered")
    raw = raw.replace(b"Status: 5.1.1", b"Status: 2.0.0")
    dsn = parse_dsn(message_from_bytes(raw, policy=policy.compat32))
    assert dsn is not None and not dsn.hard and not dsn.soft and dsn.worst() is None


# -- mailboxes and matching -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_process_mailbox(kind: str, tmp_path: Path, store: Store) -> None:
    make = make_maildir if kind == "maildir" else make_mbox
    path = make(tmp_path / kind, all_fixtures())
    report = process_bounces(path, store, SENDER)
    assert sorted(e for e, _ in report.hard) == [
        "alex.morgan@example.org",  # by VERP
        "jun.park@example.com",  # by Message-ID in text/rfc822-headers
        "minji.kim@example.com",  # by Message-ID in message/rfc822
    ]
    assert [e for e, _ in report.soft] == ["seoyeon.lee@example.com"]
    assert len(report.unmatched) == 1
    assert "no.such.reader@example.com" in report.unmatched[0][1]
    assert report.not_dsn == 1
    assert store.suppressed() == {
        "alex.morgan@example.org": "bounced",
        "jun.park@example.com": "bounced",
        "minji.kim@example.com": "bounced",
    }
    record = store.suppression_record("jun.park@example.com")
    assert record is not None and record[1].startswith("5.1.1 550 5.1.1")
    active = [s.email for s in store.subscribers(active_only=True)]
    assert active == ["seoyeon.lee@example.com"]  # the soft bounce stays subscribed

    # reading again changes nothing more, and the mailbox is left as it was
    again = process_bounces(path, store, SENDER)
    assert len(again.hard) == 3 and len(again.soft) == 1
    assert len(list(read_messages(path))) == len(all_fixtures())


def test_a_bounced_address_is_never_resubscribed(store: Store, tmp_path: Path) -> None:
    process_bounces(make_maildir(tmp_path / "box", [fixture("postfix-hard.eml")]), store, SENDER)
    assert (
        store.upsert_subscribers([StoredSubscriber("jun.park@example.com", "", (), "", "active")])[
            2
        ]
        == 1
    )
    assert WebStore(store.engine).resubscribe("jun.park@example.com") is False


def test_verp_needs_a_known_recipient(store: Store, tmp_path: Path) -> None:
    stranger = fixture("exim-hard-verp.eml").replace(b"alex.morgan=example.org", b"who=example.org")
    report = process_bounces(make_mbox(tmp_path / "mbox", [stranger]), store, SENDER)
    assert report.hard == [] and len(report.unmatched) == 1
    # and VERP is decoded against this site's sender only
    report = process_bounces(
        make_mbox(tmp_path / "mbox2", [fixture("exim-hard-verp.eml")]), store, "news@other.example"
    )
    assert report.hard == [] and len(report.unmatched) == 1


def test_message_id_wins_over_the_final_recipient(store: Store, tmp_path: Path) -> None:
    # a forwarded address bounces: Final-Recipient is the forward target, not our subscriber
    raw = fixture("postfix-hard.eml").replace(
        b"Final-Recipient: rfc822; jun.park@example.com",
        b"Final-Recipient: rfc822; jp@elsewhere.example",
    )
    report = process_bounces(make_maildir(tmp_path / "box", [raw]), store, SENDER)
    assert [e for e, _ in report.hard] == ["jun.park@example.com"]


def test_single_message_file_and_missing_paths(store: Store, tmp_path: Path) -> None:
    report = process_bounces(FIXTURES / "gmail-hard.eml", store, SENDER)
    assert [e for e, _ in report.hard] == ["minji.kim@example.com"]
    with pytest.raises(BounceError, match="no such Maildir or mbox"):
        list(read_messages(tmp_path / "missing"))
    (tmp_path / "plain-folder").mkdir()
    with pytest.raises(BounceError, match="not a Maildir"):
        list(read_messages(tmp_path / "plain-folder"))


# -- the command ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_cli_bounces(kind: str, config_path: Path, tmp_path: Path) -> None:
    config = load_config(config_path)
    store = Store.from_config(config.store)
    seed(store)
    store.close()
    make = make_maildir if kind == "maildir" else make_mbox
    path = make(tmp_path / f"bounces-{kind}", all_fixtures())
    result = CliRunner().invoke(main, ["--config", str(config_path), "bounces", str(path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"{path}: 3 hard (suppressed), 1 soft, 1 unmatched, 1 not a DSN" in out
    assert "hard: jun.park@example.com: 5.1.1" in out
    assert "soft: seoyeon.lee@example.com: 4.4.1" in out
    assert "no recipient matched" in out

    shown = CliRunner().invoke(
        main, ["--config", str(config_path), "subscribers", "show", "jun.park@example.com"]
    )
    assert shown.exit_code == 0, shown.output
    assert "status:    bounced since" in shown.output
    assert "해봄의 아카이브 다이제스트 #1" in shown.output


def test_cli_bounces_missing_path(config_path: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--config", str(config_path), "bounces", str(tmp_path / "nope")]
    )
    assert result.exit_code == 1
    assert "error:" in result.output and "no such Maildir or mbox" in result.output
