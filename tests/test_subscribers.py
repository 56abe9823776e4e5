"""Subscriber lists: CSV validation with file:line problems, normalization, suppressions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.errors import SubscriberError
from digest.store import Store, StoredSubscriber
from digest.subscribers import normalize_address, parse_subscribers

REPO = Path(__file__).resolve().parent.parent
THEMES = ("ai", "economy", "humanities", "policy", "work")
LIST = Path("lists/readers.csv")


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_subscribers(LIST, THEMES, text)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "db.sqlite3")
    yield s
    s.close()


def test_sample_list_parses(tmp_path: Path) -> None:
    result = parse_subscribers(REPO / "subscribers" / "sample.csv", THEMES)
    assert result.problems == () and result.duplicates == 0
    assert len(result.subscribers) == 6
    by_email = {s.email: s for s in result.subscribers}
    assert by_email["seoyeon.lee@example.com"].themes == ("economy", "humanities")
    assert by_email["minji.kim@example.com"].themes == ()
    assert by_email["paused.reader@example.com"].status == "paused"
    assert by_email["alex.morgan@example.org"].language == "en"


def test_problems_name_file_and_line() -> None:
    text = (
        "email,name,themes,language,status\n"  # 1
        'ok@example.com,"Kim, Minji","ai,economy",ko,active\n'  # 2
        "not-an-address,X,ai,ko,active\n"  # 3
        'theme@example.com,"Lee, Seo","ai,sports",ko,active\n'  # 4
        "status@example.com,Y,,ko,sleeping\n"  # 5
        "lang@example.com,Z,,fr,\n"  # 6
        ",empty,,,\n"  # 7
        "fine@example.com,,work;policy,,PAUSED\n"  # 8
    )
    result = parse(text)
    assert [s.email for s in result.subscribers] == ["ok@example.com", "fine@example.com"]
    assert result.subscribers[0].name == "Kim, Minji"
    assert result.subscribers[0].themes == ("ai", "economy")
    assert result.subscribers[1].themes == ("work", "policy")
    assert result.subscribers[1].status == "paused"
    problems = result.problems
    assert len(problems) == 5
    assert problems[0].startswith(f"{LIST}:3: invalid address 'not-an-address'")
    assert problems[1].startswith(f"{LIST}:4: unknown theme 'sports'")
    assert problems[2].startswith(f"{LIST}:5: status must be one of")
    assert "'sleeping'" in problems[2]
    assert problems[3].startswith(f"{LIST}:6: language must be ko or en")
    assert problems[4] == f"{LIST}:7: empty email"


def test_line_numbers_with_multiline_quoted_fields_and_blank_lines() -> None:
    text = (
        "email,name,themes\n"  # 1
        'a@example.com,"Multi\n'  # 2 (row starts here)
        'Line Name","ai"\n'  # 3
        "\n"  # 4 blank
        "bad@,B,ai\n"  # 5
        '"c@example.com","C","ai,\n'  # 6 (themes field spans two lines)
        'nope"\n'  # 7
        "d@example.com,D,sports\n"  # 8
    )
    result = parse(text)
    assert result.subscribers == ()
    assert [p.split(": ", 1)[0] for p in result.problems] == [
        f"{LIST}:2",
        f"{LIST}:5",
        f"{LIST}:6",
        f"{LIST}:8",
    ]
    assert "line break" in result.problems[0]
    assert "'nope'" in result.problems[2]


def test_duplicates_are_merged_last_row_wins() -> None:
    text = (
        "email,name,themes\n"
        "A@Example.COM,First,ai\n"
        "b@example.com,B,\n"
        "A@example.com,Second,economy\n"
        " A@EXAMPLE.com ,Third,work\n"
    )
    result = parse(text)
    assert result.duplicates == 2
    assert [s.email for s in result.subscribers] == ["A@example.com", "b@example.com"]
    assert result.subscribers[0].name == "Third"
    assert result.subscribers[0].themes == ("work",)


def test_local_part_case_is_kept() -> None:
    # only the domain is case-insensitive; A@ and a@ may be different mailboxes
    result = parse("email\nA@example.com\na@example.com\n")
    assert {s.email for s in result.subscribers} == {"A@example.com", "a@example.com"}


def test_unicode_domain_is_normalized() -> None:
    assert normalize_address("user@Bücher.Example") == "user@bücher.example"
    assert normalize_address("user@xn--bcher-kva.example") == "user@bücher.example"
    result = parse("email,name\nuser@BÜCHER.example,A\nuser@xn--bcher-kva.example,B\n")
    assert result.duplicates == 1
    assert [(s.email, s.name) for s in result.subscribers] == [("user@bücher.example", "B")]


@pytest.mark.parametrize("bad", ["plain", "a@b@example.com", "a@", "a b@example.com", "x\n@e.com"])
def test_normalize_rejects_bad_addresses(bad: str) -> None:
    with pytest.raises(SubscriberError):
        normalize_address(bad)


def test_missing_email_column() -> None:
    with pytest.raises(SubscriberError, match=r"lists/readers\.csv:1: missing column 'email'"):
        parse("name,themes\nKim,ai\n")


def test_unknown_column() -> None:
    with pytest.raises(SubscriberError, match=r":1: unknown column 'phone'"):
        parse("email,phone\na@example.com,123\n")


def test_header_is_case_and_space_insensitive() -> None:
    result = parse(" Email , NAME ,Themes\na@example.com,Kim,ai\n")
    assert result.subscribers[0].name == "Kim"
    assert result.subscribers[0].themes == ("ai",)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(SubscriberError, match="empty file"):
        parse("")
    with pytest.raises(SubscriberError, match="file not found"):
        parse_subscribers(tmp_path / "nope.csv", THEMES)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("email,name\na@example.com,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(SubscriberError, match="not UTF-8"):
        parse_subscribers(latin, THEMES)


def test_file_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_text("email,name\na@example.com,A\n", encoding="utf-8-sig")
    result = parse_subscribers(path, THEMES)
    assert [s.email for s in result.subscribers] == ["a@example.com"]


def test_upsert_and_update(store: Store) -> None:
    first = parse("email,name,themes\na@example.com,A,ai\nb@example.com,B,\n")
    assert store.upsert_subscribers(first.subscribers) == (2, 0, 0)
    second = parse("email,name,themes,status\na@example.com,A2,work,paused\n")
    assert store.upsert_subscribers(second.subscribers) == (0, 1, 0)
    rows = {s.email: s for s in store.subscribers()}
    assert rows["a@example.com"] == StoredSubscriber("a@example.com", "A2", ("work",), "", "paused")
    assert [s.email for s in store.subscribers(active_only=True)] == ["b@example.com"]


def test_suppressed_address_is_never_resubscribed(store: Store) -> None:
    parsed = parse("email,name,themes\nGone@Example.COM,Gone,ai\nstay@example.com,Stay,ai\n")
    assert store.upsert_subscribers(parsed.subscribers) == (2, 0, 0)
    gone = normalize_address("Gone@Example.COM")
    store.suppress(gone, "unsubscribed", "clicked the link")
    assert store.suppressed() == {gone: "unsubscribed"}

    # the next import of the same list (any case of the domain) must not bring it back
    again = parse("email,name,themes,status\nGone@EXAMPLE.com,Gone,ai,active\n")
    assert store.upsert_subscribers(again.subscribers) == (0, 0, 1)
    rows = {s.email: s for s in store.subscribers()}
    assert rows[gone].status == "unsubscribed"
    assert [s.email for s in store.subscribers(active_only=True)] == ["stay@example.com"]


def test_suppressed_before_ever_subscribing(store: Store) -> None:
    store.suppress("bounce@example.com", "bounced")
    parsed = parse("email\nbounce@example.com\nnew@example.com\n")
    assert store.upsert_subscribers(parsed.subscribers) == (1, 0, 1)
    assert [s.email for s in store.subscribers()] == ["new@example.com"]
