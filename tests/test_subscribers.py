"""Subscriber lists: CSV validation with file:line problems, normalization, suppressions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.errors import SubscriberError
from digest.store import Store, StoredSubscriber
from digest.subscribers import normalize_address, parse_subscribers

from .conftest import open_test_store

REPO = Path(__file__).resolve().parent.parent
THEMES = ("ai", "economy", "humanities", "policy", "work")
LIST = Path("lists/readers.csv")


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_subscribers(LIST, THEMES, text)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_test_store(tmp_path)
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


def test_local_part_case_is_one_subscriber() -> None:
    # the whole address is compared lowercased, as mail providers do (issue 19): A@ and a@
    # are one subscriber, the last row's spelling wins
    result = parse("email\nA@example.com\na@example.com\n")
    assert [s.email for s in result.subscribers] == ["a@example.com"]
    assert result.duplicates == 1


def test_unicode_domain_is_normalized() -> None:
    # domains are stored in IDNA (ASCII) form, deliverable by any server (issue 19)
    assert normalize_address("user@Bücher.Example") == "user@xn--bcher-kva.example"
    assert normalize_address("user@xn--bcher-kva.example") == "user@xn--bcher-kva.example"
    result = parse("email,name\nuser@BÜCHER.example,A\nuser@xn--bcher-kva.example,B\n")
    assert result.duplicates == 1
    assert [(s.email, s.name) for s in result.subscribers] == [("user@xn--bcher-kva.example", "B")]


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


# -- the commands: import, add, remove, export, show ----------------------------------------

BAD_LIST = (
    "email,name,themes,language,status\n"  # 1
    "new.reader@Example.COM,새 독자,ai,ko,active\n"  # 2
    "broken@,X,,ko,active\n"  # 3
    "NEW.reader@example.com,새 독자 2,work,ko,active\n"  # 4: same mailbox? local part differs
    "twice@example.com,A,,ko,active\n"  # 5
    "Twice@EXAMPLE.com,B,ai,ko,active\n"  # 6: different local-part case: another address
    "twice@example.COM,C,economy,ko,active\n"  # 7: duplicate of line 5
    "gone@example.com,G,,ko,active\n"  # 8: suppressed before
    "x@example.com,X,sports,ko,active\n"  # 9
)


def run_cli(config_path: Path, *args: str, code: int = 0) -> str:
    from click.testing import CliRunner

    from digest.cli import main

    result = CliRunner().invoke(main, ["--config", str(config_path), *args])
    assert result.exit_code == code, result.output
    return result.output


def open_store(config_path: Path) -> Store:
    from digest.config import load_config

    return Store.from_config(load_config(config_path).store)


def test_import_is_all_or_nothing(config_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(BAD_LIST, encoding="utf-8")
    out = run_cli(config_path, "subscribers", "import", str(path), code=1)
    assert f"error: {path}:3: invalid address 'broken@'" in out
    assert f"error: {path}:9: unknown theme 'sports'" in out
    assert "2 bad row(s); nothing imported" in out
    store = open_store(config_path)
    assert store.subscribers() == []
    store.close()


def test_import_skip_invalid_dedupes_and_keeps_suppressed_out(
    config_path: Path, tmp_path: Path
) -> None:
    store = open_store(config_path)
    store.suppress("gone@example.com", "complained", "spam report")
    path = tmp_path / "list.csv"
    path.write_text(BAD_LIST, encoding="utf-8")
    out = run_cli(config_path, "subscribers", "import", str(path), "--skip-invalid")
    # lines 2 and 4, and 5, 6 and 7, are one address each: any case is the same subscriber
    assert "2 added, 0 updated, 1 suppressed (not re-subscribed), 3 duplicate(s), 2 invalid" in out
    rows = {s.email: s for s in store.subscribers()}
    assert sorted(rows) == ["NEW.reader@example.com", "twice@example.com"]
    assert rows["twice@example.com"].name == "C"  # the last row wins
    assert rows["twice@example.com"].themes == ("economy",)

    # importing again updates, never re-subscribes the suppressed address
    out = run_cli(config_path, "subscribers", "import", str(path), "--skip-invalid")
    assert "0 added, 2 updated, 1 suppressed" in out
    assert "gone@example.com" not in {s.email for s in store.subscribers()}
    store.close()


def test_add_remove_export_show(config_path: Path, tmp_path: Path) -> None:
    out = run_cli(
        config_path, "subscribers", "add", "Kim@Bücher.Example", "--themes", "ai,work",
        "--name", "김", "--language", "ko",
    )  # fmt: skip
    assert out.strip() == "Kim@xn--bcher-kva.example: added"
    assert "Kim@xn--bcher-kva.example: updated" in run_cli(
        config_path, "subscribers", "add", "Kim@xn--bcher-kva.example", "--themes", "ai"
    )
    out = run_cli(config_path, "subscribers", "add", "bad@", code=1)
    assert "error: invalid address 'bad@'" in out
    out = run_cli(config_path, "subscribers", "add", "a@example.com", "--themes", "sports", code=1)
    assert "unknown theme 'sports'" in out
    run_cli(config_path, "subscribers", "add", "paused@example.com", "--paused")

    shown = run_cli(config_path, "subscribers", "show", "kim@BÜCHER.example")
    assert "themes:    ai\n" in shown  # any case of the local part: the same subscriber
    shown = run_cli(config_path, "subscribers", "show", "Kim@BÜCHER.example")
    assert "themes:    ai\n" in shown and "status:    active" in shown
    assert "digests:   0" in shown

    assert "unsubscribed" in run_cli(config_path, "subscribers", "remove", "Kim@bücher.example")
    assert "already suppressed" in run_cli(
        config_path, "subscribers", "remove", "Kim@bücher.example"
    )
    out = run_cli(config_path, "subscribers", "add", "Kim@bücher.example", code=1)
    assert "is suppressed (unsubscribed on" in out
    out = run_cli(config_path, "subscribers", "remove", "nobody@example.com", code=1)
    assert "not a subscriber" in out
    shown = run_cli(config_path, "subscribers", "show", "Kim@bücher.example")
    assert "status:    unsubscribed since" in shown and "removed by an editor" in shown

    exported = run_cli(config_path, "subscribers", "export")
    lines = exported.splitlines()
    assert lines[0] == "email,name,themes,language,status"
    assert "Kim@xn--bcher-kva.example,김,ai,ko,unsubscribed" in lines
    assert "paused@example.com,,,,paused" in lines

    # an export imports back as it was
    target = tmp_path / "export.csv"
    run_cli(config_path, "subscribers", "export", "--output", str(target))
    parsed = parse_subscribers(target, THEMES)
    assert parsed.problems == ()
    assert {s.email: s.status for s in parsed.subscribers} == {
        "Kim@xn--bcher-kva.example": "unsubscribed",
        "paused@example.com": "paused",
    }


def test_show_lists_what_was_sent_and_when(config_path: Path) -> None:
    from datetime import UTC, datetime

    from digest.models import Post

    store = open_store(config_path)
    store.upsert_subscribers([StoredSubscriber("kim@example.com", "김", ("ai",), "ko", "active")])
    post = Post("blog", "p", "https://blog.example/p", "글", "본문", datetime.now(UTC))
    store.upsert_posts([(post, "h")])
    for n in (1, 2):
        store.record_digest(
            digest_id=f"e{n}-ai",
            edition=f"e{n}",
            issue_number=n,
            variant="ai",
            theme=None,
            subject=f"해봄의 아카이브 다이제스트 #{n}",
            sections={"ai": [post.key]},
            recipients=[("kim@example.com", f"<m{n}@haebom.example>")],
        )
    store.settle_delivery("e1-ai", "kim@example.com", "sent", "250 OK")
    store.close()
    shown = run_cli(config_path, "subscribers", "show", "kim@example.com")
    assert "digests:   2" in shown
    lines = [line for line in shown.splitlines() if "다이제스트 #" in line]
    assert len(lines) == 2
    assert any(" sent " in line and line.endswith("#1") for line in lines)
    assert any("pending" in line and line.endswith("#2") for line in lines)
    assert "KST" in lines[0]  # in the site's timezone
