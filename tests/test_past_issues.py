"""Past issues: `digest send --to ADDR [--edition latest|N|ID]` sends a copy of what went out,
its body byte for byte, its subject marked as a test; with nothing new, `--to` copies the
latest issue instead of sending nothing. Through the CLI and the embedded mail catcher."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import main
from tests.conftest import write_config

READER = "minji.kim@example.com"  # a sample subscriber who gets every issue


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def messages(config: Path) -> list[tuple[bytes, EmailMessage]]:
    folder = config.parent / "var" / "mail" / "new"
    found = []
    for path in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns):
        raw = path.read_bytes()
        found.append((raw, message_from_bytes(raw, policy=policy.default)))
    return found  # type: ignore[return-value]


def body(raw: bytes) -> bytes:
    """The message after its header block: every MIME part, as sent."""
    return raw.replace(b"\r\n", b"\n").partition(b"\n\n")[2]


@pytest.fixture
def sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    config = write_config(tmp_path)
    result = run(config, "run")
    assert result.exit_code == 0, result.output
    return config


def test_send_to_with_nothing_new_copies_the_latest_issue(sent: Path) -> None:
    before = messages(sent)
    original = next(raw for raw, msg in before if msg["To"].addresses[0].addr_spec == READER)
    result = run(sent, "send", "--to", READER)
    assert result.exit_code == 0, result.output
    assert "sending a copy of the latest issue (#1" in result.output, result.output
    after = messages(sent)
    assert len(after) == len(before) + 1
    raw, copy = after[-1]
    original_msg = message_from_bytes(original, policy=policy.default)
    assert copy["Subject"] == "[TEST] " + original_msg["Subject"]
    assert body(raw) == body(original)  # the same issue, byte for byte
    for header in ("From", "Date", "List-Unsubscribe"):
        assert copy[header] == original_msg[header], header
    status = run(sent, "status")
    assert "pending   0" in status.output  # nothing recorded for a test copy


def test_send_to_a_past_edition_by_number_and_errors(sent: Path) -> None:
    result = run(sent, "send", "--to", "editor@example.com", "--edition", "1")
    assert result.exit_code == 0, result.output
    _raw, copy = messages(sent)[-1]
    assert copy["To"].addresses[0].addr_spec == "editor@example.com"
    assert copy["Subject"].startswith("[TEST] ")
    missing = run(sent, "send", "--to", "editor@example.com", "--edition", "99")
    assert missing.exit_code == 1
    assert missing.output.strip().splitlines()[-1].startswith("error: no edition '99'")
    alone = run(sent, "send", "--edition", "1")
    assert alone.exit_code == 2 and "--edition goes with --retry-failed or --to" in alone.output


def test_a_test_copy_of_the_next_issue_is_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    config = write_config(tmp_path)
    assert run(config, "ingest").exit_code == 0
    result = run(config, "send", "--to", "editor@example.com")
    assert result.exit_code == 0, result.output
    ((_raw, copy),) = messages(config)
    assert copy["Subject"].startswith("[TEST] ")


def test_send_to_before_anything_was_sent_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    config = write_config(tmp_path)  # nothing ingested: no posts, no issue
    result = run(config, "send", "--to", "editor@example.com")
    assert result.exit_code == 1
    assert "nothing to copy: no new posts, and no issue sent yet" in result.output


def test_preview_a_past_issue_as_a_reader_got_it(sent: Path, tmp_path: Path) -> None:
    mine = [raw for raw, msg in messages(sent) if msg["To"].addresses[0].addr_spec == READER]
    eml = tmp_path / "issue.eml"
    result = run(
        sent, "preview", "--edition", "latest", "--subscriber", READER, "--output", str(eml)
    )
    assert result.exit_code == 0, result.output
    assert "issue #1 (edition" in result.output
    assert body(eml.read_bytes()) == body(mine[0])  # what the reader got, byte for byte
    page = tmp_path / "issue.html"
    shown = run(sent, "preview", "--edition", "1", "--subscriber", READER, "--output", str(page))
    assert shown.exit_code == 0, shown.output
    text = page.read_text("utf-8")
    assert "김민지" in text and "%%DIGEST" not in text  # their greeting, their links
    public = tmp_path / "public.html"
    anyone = run(sent, "preview", "--edition", "1", "--output", str(public))
    assert anyone.exit_code == 0, anyone.output
    assert "@example.com" not in public.read_text("utf-8")  # no one's address, no one's links
    no_eml = run(sent, "preview", "--edition", "1", "--output", str(tmp_path / "x.eml"))
    assert no_eml.exit_code == 1 and "add --subscriber EMAIL" in no_eml.output
    missing = run(sent, "preview", "--edition", "7", "--no-browser")
    assert missing.exit_code == 1 and "no edition '7'" in missing.output
