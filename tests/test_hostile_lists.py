"""Hostile lists and config values (issue 19).

Lists: an address is one subscriber whatever the case of its letters, local part included (as
mail providers treat it), so an unsubscribed address never comes back in another case, also in
a store written before this rule. Domains are stored in IDNA (ASCII) form, deliverable by any
server; a UTF-8 local part is kept and sent only through a server that offers SMTPUTF8.

Config: every number has a sane range, `web.base_url` must be an http(s) URL, a list file must
not be a folder; a bad value is one `error:` line naming the key and the file, exit code 2.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_string, policy
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import main
from digest.config import load_config
from digest.errors import SubscriberError
from digest.store import Store, StoredSubscriber, WebStore, subscribers, suppressions
from digest.subscribers import (
    export_subscribers,
    normalize_address,
    parse_subscribers,
    sync_list_files,
)
from tests.conftest import ROOT, open_test_store, running_smtp_server, write_config

THEMES = ("ai", "economy", "humanities", "policy", "work")
LIST = Path("lists/readers.csv")
# The store tests run on SQLite and, when a server is configured, on PostgreSQL (conftest).
BOTH = pytest.mark.parametrize("store_backend", ["sqlite", "postgresql"], indirect=True)


def parse(text: str) -> tuple[StoredSubscriber, ...]:
    parsed = parse_subscribers(LIST, THEMES, text)
    assert parsed.problems == (), parsed.problems
    return parsed.subscribers


def sub(email: str, name: str = "") -> StoredSubscriber:
    return StoredSubscriber(email, name, (), "", "active")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_test_store(tmp_path)
    yield s
    s.close()


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


# -- case -----------------------------------------------------------------------------------


def test_case_variants_in_one_list_are_one_subscriber() -> None:
    parsed = parse_subscribers(
        LIST, THEMES, "email,name\nKim@example.com,A\nkim@example.com,B\nKIM@EXAMPLE.COM,C\n"
    )
    assert parsed.duplicates == 2
    assert [(s.email, s.name) for s in parsed.subscribers] == [("KIM@example.com", "C")]


@BOTH
def test_unsubscribed_in_one_case_never_comes_back_in_another(store: Store) -> None:
    assert store.upsert_subscribers(parse("email\nkim@example.com\nstay@example.com\n")) == (
        2,
        0,
        0,
    )
    # The same mailbox in other cases is the same subscriber: updated, not added.
    assert store.upsert_subscribers(parse("email,name\nKim@example.com,K\n")) == (0, 1, 0)
    assert [s.email for s in store.subscribers()] == ["kim@example.com", "stay@example.com"]
    store.suppress("kim@example.com", "unsubscribed", "one-click")
    for spelling in ("Kim@example.com", "KIM@example.com", "kIm@Example.COM"):
        assert store.upsert_subscribers(parse(f"email\n{spelling}\n")) == (0, 0, 1), spelling
        assert store.suppression_record(spelling) is not None
        assert store.suppressed().get(spelling) == "unsubscribed"
        assert spelling in store.suppressed()
    assert [s.email for s in store.subscribers(active_only=True)] == ["stay@example.com"]
    # The subscriber's own pages find them in any case, and a save cannot reactivate them.
    web = WebStore(store.engine)
    found = web.subscriber("KIM@EXAMPLE.COM")
    assert found is not None and found.email == "kim@example.com"
    assert web.suppression("Kim@example.com") == "unsubscribed"
    assert web.set_preferences("KIM@example.com", [], "active") is False
    # A resubscribe, by the subscriber, in any case, lifts it.
    assert web.resubscribe("Kim@Example.com") is True
    assert store.suppression_record("kim@example.com") is None
    assert {s.email for s in store.subscribers(active_only=True)} == {
        "kim@example.com",
        "stay@example.com",
    }


@BOTH
def test_cli_add_and_import_refuse_an_address_unsubscribed_in_another_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    config = write_config(tmp_path)
    assert run(config, "subscribers", "add", "kim@example.com").exit_code == 0
    result = run(config, "subscribers", "remove", "KIM@example.com")
    assert result.exit_code == 0 and "unsubscribed" in result.output
    added = run(config, "subscribers", "add", "Kim@example.com")
    assert added.exit_code == 1 and "is suppressed (unsubscribed" in added.output
    listed = tmp_path / "again.csv"
    listed.write_text("email\nKim@Example.com\nKIM@example.com\n", "utf-8")
    imported = run(config, "subscribers", "import", str(listed))
    assert imported.exit_code == 0, imported.output
    assert "0 added, 0 updated, 1 suppressed (not re-subscribed), 1 duplicate(s)" in imported.output
    shown = run(config, "subscribers", "show", "KIM@EXAMPLE.COM")
    assert "status:    unsubscribed" in shown.output, shown.output
    exported = run(config, "subscribers", "export")
    assert "kim@example.com,,,,unsubscribed" in exported.output.splitlines()


@BOTH
def test_an_older_store_with_mixed_case_rows_still_matches(store: Store) -> None:
    """Rows written before this rule: `Kim@` subscribed, `kim@` suppressed, `KIM@` a second
    row. Matching compares lowercased, so they are one address."""
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        for email in ("Kim@example.com", "KIM@example.com"):
            conn.execute(
                subscribers.insert().values(
                    email=email,
                    name="",
                    themes=[],
                    language="",
                    status="active",
                    created=now,
                    updated=now,
                )
            )
        conn.execute(
            suppressions.insert().values(
                email="kim@example.com", reason="unsubscribed", detail="", created=now
            )
        )
    assert store.suppression_record("Kim@example.com") is not None
    assert store.suppressed()["KIM@example.com"] == "unsubscribed"
    # Nobody is sent to: `kim@` is suppressed, so both other spellings are.
    assert store.subscribers(active_only=True) == []
    assert store.upsert_subscribers([sub("kim@EXAMPLE.com")]) == (0, 0, 1)
    assert WebStore(store.engine).set_preferences("Kim@example.com", [], "active") is False
    # The export says why each spelling gets nothing.
    from io import StringIO

    out = StringIO()
    export_subscribers(store, out)
    assert "Kim@example.com,,,,unsubscribed" in out.getvalue().splitlines()
    assert "KIM@example.com,,,,unsubscribed" in out.getvalue().splitlines()
    # A new suppression in a third case reaches every stored spelling: none stays active.
    store.suppress("kIM@example.com", "bounced", "550")
    assert store.subscribers(active_only=True) == []
    assert {s.status for s in store.subscribers()} == {"bounced"}
    assert WebStore(store.engine).resubscribe("Kim@example.com") is False  # a bounce stays


@BOTH
def test_an_older_store_with_two_active_spellings_sends_once(store: Store) -> None:
    """Two active rows for one mailbox (written before addresses matched in any case) are one
    recipient, and an unsubscribed spelling wins over an active one."""
    now = datetime.now(UTC)
    rows = [("Lee@example.com", "active"), ("lee@example.com", "active")]
    rows += [("Park@example.com", "active"), ("park@example.com", "unsubscribed")]
    with store.engine.begin() as conn:
        for email, status in rows:
            conn.execute(
                subscribers.insert().values(
                    email=email,
                    name="",
                    themes=[],
                    language="",
                    status=status,
                    created=now,
                    updated=now,
                )
            )
    assert [s.email for s in store.subscribers(active_only=True)] == ["Lee@example.com"]
    assert len(store.subscribers()) == 4  # the listing still shows every stored row


@BOTH
def test_non_ascii_local_parts_match_in_any_case(store: Store) -> None:
    store.upsert_subscribers([sub("Jörg@example.com")])
    store.suppress("jörg@example.com", "unsubscribed")
    assert store.upsert_subscribers([sub("JÖRG@example.com")]) == (0, 0, 1)
    assert store.suppression_record("JÖRG@EXAMPLE.COM") is not None
    assert store.subscribers(active_only=True) == []
    # Characters LIKE treats specially are matched literally.
    store.upsert_subscribers([sub("a_b%c@example.com"), sub("axbyc@example.com")])
    store.suppress("A_B%C@example.com", "unsubscribed")
    assert [s.email for s in store.subscribers(active_only=True)] == ["axbyc@example.com"]


# -- international addresses ------------------------------------------------------------------


def test_domains_are_stored_in_idna_form_and_utf8_local_parts_are_kept() -> None:
    assert normalize_address("user@Bücher.Example") == "user@xn--bcher-kva.example"
    assert normalize_address("user@XN--BCHER-KVA.example") == "user@xn--bcher-kva.example"
    assert normalize_address("Jörg@Bücher.example") == "Jörg@xn--bcher-kva.example"
    assert normalize_address("用户@例子.广告") == "用户@xn--fsqu00a.xn--4rr70v"
    parsed = parse_subscribers(
        LIST, THEMES, "email\nuser@bücher.example\nUSER@xn--bcher-kva.example\n"
    )
    assert [s.email for s in parsed.subscribers] == ["USER@xn--bcher-kva.example"]


@BOTH
def test_an_older_unicode_domain_row_is_the_same_address(store: Store) -> None:
    now = datetime.now(UTC)
    with store.engine.begin() as conn:  # as an older version stored it
        conn.execute(
            suppressions.insert().values(
                email="user@bücher.example", reason="complained", detail="", created=now
            )
        )
    new = parse("email\nUser@Bücher.example\n")
    assert [s.email for s in new] == ["User@xn--bcher-kva.example"]
    assert store.upsert_subscribers(new) == (0, 0, 1)
    assert store.suppression_record("user@xn--bcher-kva.example") is not None


@pytest.mark.parametrize("smtputf8", [True, False])
def test_send_to_international_addresses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtputf8: bool
) -> None:
    """Imported `user@bücher.example` is sent as `user@xn--bcher-kva.example` by any server;
    `jörg@example.com` only by one that offers SMTPUTF8, else that address fails, with the
    reason, and the others are sent."""
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    with running_smtp_server(enable_SMTPUTF8=smtputf8) as server:
        config = write_config(tmp_path, smtp=f'host = "127.0.0.1"\nport = {server.port}')
        (tmp_path / "subscribers.csv").write_text(
            "email,name,themes,language,status\n"
            "user@Bücher.example,Bea,,ko,active\n"
            "jörg@example.com,Jörg,,ko,active\n",
            "utf-8",
        )
        assert run(config, "ingest").exit_code == 0
        result = run(config, "send")
        assert result.exit_code == 0, result.output
        received = {m.rcpt_tos[0]: m.data for m in server.handler.messages}
    expected = {"user@xn--bcher-kva.example"} | ({"jörg@example.com"} if smtputf8 else set())
    assert set(received) == expected
    for address, data in received.items():
        # RFC 6532: the header holds the address in UTF-8.
        message = message_from_string(data.decode("utf-8"), policy=policy.SMTPUTF8)
        assert message["To"].addresses[0].addr_spec == address
    if not smtputf8:
        assert "jörg@example.com: not sent" in result.output
        assert "SMTPUTF8" in result.output
        assert "1 failed, 1 sent" in result.output


# -- list files -------------------------------------------------------------------------------


def test_a_csv_field_over_the_csv_limit_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(
        "email,name\nok@example.com,A\nbig@example.com," + "x" * 200_000 + "\n", "utf-8"
    )
    with pytest.raises(SubscriberError, match=r"huge\.csv:3: .*field larger than field limit"):
        parse_subscribers(path, THEMES)
    with pytest.raises(SubscriberError, match="a folder, not a CSV file"):
        parse_subscribers(tmp_path, THEMES)


def test_names_with_control_characters_are_refused() -> None:
    parsed = parse_subscribers(
        LIST, THEMES, "email,name\na@example.com,A\x00B\nb@x.example,\x1b[2J\n"
    )
    assert [p.split(": ", 1)[1] for p in parsed.problems] == [
        "name contains a control character",
        "name contains a control character",
    ]


def test_cli_import_and_sync_of_a_huge_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    config = write_config(tmp_path)
    huge = tmp_path / "huge.csv"
    huge.write_text("email,name\nbig@example.com," + "x" * 200_000 + "\n", "utf-8")
    result = run(config, "subscribers", "import", str(huge))
    assert result.exit_code == 1
    assert result.output.count("error:") == 1 and "Traceback" not in result.output
    assert f"{huge}:2:" in result.output
    # A list named in the config: the sync before a send reports it and goes on.
    text = config.read_text("utf-8").replace('files = ["subscribers.csv"]', 'files = ["huge.csv"]')
    config.write_text(text, "utf-8")
    loaded = load_config(config)
    store = Store.from_config(loaded.store)
    try:
        problems = sync_list_files(loaded, store)
    finally:
        store.close()
    assert len(problems) == 1 and "field larger than field limit" in problems[0]


# -- config values ----------------------------------------------------------------------------

MINIMAL = """\
[site]
name = "Site"
url = "https://site.example"
sender = "Site <digest@site.example>"
"""
SOURCE = '[[sources]]\nname = "a"\nurl = "https://a.example/feed"\n'


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('[web]\nbase_url = "javascript:alert(1)"', "web.base_url"),
        ('[web]\nbase_url = "ftp://news.example/"', "web.base_url"),
        ('[web]\nbase_url = ""', "web.base_url"),
        ('[web]\nbase_url = "news.example/digest"', "web.base_url"),
        ('[web]\nbase_url = "https://"', "web.base_url"),
        ('[web]\nbase_url = "https://news.example:99999/"', "web.base_url"),
        ('[web]\nbase_url = " https://news.example/"', "web.base_url"),
        ("[web]\nlisten_port = 70000", "web.listen_port"),
        ("[web]\npreview_port = -1", "web.preview_port"),
        ('[smtp]\nhost = "mail.example"\nport = 65536', "smtp.port"),
        ("[smtp]\ntimeout = inf", "smtp.timeout"),
        ("[smtp]\ntimeout = 1e9", "smtp.timeout"),
        ("[smtp]\ntimeout = nan", "smtp.timeout"),
        ("[smtp]\nconcurrency = 100000", "smtp.concurrency"),
        ("[selection]\nlookback_days = 1000000000000", "selection.lookback_days"),
        ("[selection]\nmax_posts = 1000000000", "selection.max_posts"),
        ("[delivery]\nmax_age_hours = inf", "delivery.max_age_hours"),
        ("[delivery]\nretry_max_seconds = 1e300", "delivery.retry_max_seconds"),
        ("[delivery]\nrate_per_second = -inf", "delivery.rate_"),
        ("[delivery]\nmax_attempts = 1000000", "delivery.max_attempts"),
        ("[summary]\nsentences = 100000", "summary.sentences"),
        (SOURCE + "timeout = inf", "sources[0].timeout"),
        (SOURCE + "timeout = 1e9", "sources[0].timeout"),
        (SOURCE + "connect_timeout = 601", "sources[0].connect_timeout"),
        (SOURCE + "retries = 1000000", "sources[0].retries"),
        (SOURCE + "max_bytes = 1000000000000", "sources[0].max_bytes"),
        (SOURCE + "poll_minutes = -5", "sources[0].poll_minutes"),
        ('[[themes]]\nkey = "t"\ntitle = "T"\nkeywords = ["x"]\nthreshold = nan', "themes[0]"),
        ('[[schedules]]\nname = "w"\ncron = "0 8 * * 1"\nretry_minutes = 99999999', "schedules[0]"),
        ('[subscribers]\nfiles = ["."]', "subscribers.files[0]"),
    ],
)
def test_bad_values_are_one_error_line_naming_key_and_file(
    tmp_path: Path, extra: str, key: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(MINIMAL + extra + "\n", "utf-8")
    result = run(config, "ingest")
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert str(config) in lines[0] and f"'{key}" in lines[0], lines[0]


def test_python_m_digest_refuses_an_endless_timeout(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(MINIMAL + SOURCE + "timeout = inf\n", "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "ingest"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: {config}: 'sources[0].timeout' must be a finite number, not inf"
    ]


def test_sane_values_still_load(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        MINIMAL
        + textwrap.dedent(
            """\
            [web]
            base_url = "http://127.0.0.1:8025/digest/"
            listen_port = 0
            [smtp]
            host = "mail.example"
            port = 587
            timeout = 600
            [selection]
            lookback_days = 3650
            """
        )
        + SOURCE
        + "timeout = 0.5\nretries = 10\n",
        "utf-8",
    )
    loaded = load_config(config)
    assert loaded.smtp.timeout == 600.0 and loaded.sources[0].retries == 10
