"""The CLI as a user runs it: each command, its output and its exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main

ROOT = Path(__file__).resolve().parent.parent


def invoke(config: Path, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config), *args], input=input)
    return result.exit_code, result.output


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "digest", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("ingest", "summarize", "preview", "send", "schedule", "subscribers", "run"):
        assert command in out


def test_missing_config_is_one_line(tmp_path: Path) -> None:
    code, out = invoke(tmp_path / "nope.toml", "ingest")
    assert code == 2
    assert (
        out.strip() == f"error: {tmp_path / 'nope.toml'}: config file not found (use --config PATH)"
    )


def test_invalid_config_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[site]\nname = "x"\nurl = "u"\nsender = "a <a@b.c>"\ncolour = 1\n', "utf-8")
    code, out = invoke(path, "send")
    assert code == 2
    assert out.strip() == f"error: {path}: unknown key 'site.colour'"


def test_feed_that_does_not_parse(config_path: Path) -> None:
    (config_path.parent / "feed.atom").write_text("<html><body>not a feed", "utf-8")
    code, out = invoke(config_path, "ingest")
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert errors[0].startswith("error: source 'haebom':") and "feed.atom" in errors[0]


def test_summarize_json_from_stdin_and_files(config_path: Path, tmp_path: Path) -> None:
    text = (
        "인공지능 기본법이 국회를 통과했다. 법은 고위험 인공지능의 정의를 담았다. "
        "업계는 규제가 모호하다고 지적했다. 정부는 시행령에서 기준을 구체화하겠다고 밝혔다. "
        "전문가들은 국제 기준과의 정합성을 강조했다."
    )
    code, out = invoke(
        config_path, "summarize", "-", "--json", "--sentences", "2", "--max-chars", "80", input=text
    )
    assert code == 0, out
    record = json.loads(out)
    assert record["language"] == "ko" and record["path"] == "-"
    assert 1 <= len(record["sentences"]) <= 2
    assert sum(len(s) for s in record["sentences"]) <= 80
    assert all(s in text for s in record["sentences"])  # sentences are copied verbatim

    english = tmp_path / "en.txt"
    english.write_text(
        "The committee met on Tuesday. It approved the budget for 2027. "
        "Members argued about transit funding for hours. The vote was 7 to 2.",
        "utf-8",
    )
    code, out = invoke(config_path, "summarize", str(english), "-", "--json", input=text)
    assert code == 0, out
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["language"] for r in records] == ["en", "ko"]


def test_preview_output_writes_the_digest(config_path: Path, tmp_path: Path) -> None:
    code, out = invoke(config_path, "ingest")
    assert code == 0, out
    target = tmp_path / "preview.html"
    code, out = invoke(config_path, "preview", "--theme", "ai", "--output", str(target))
    assert code == 0, out
    page = target.read_text("utf-8")
    assert page.startswith("<!doctype html>") and 'lang="ko"' in page
    assert "인공지능" in page


def test_preview_without_posts_says_so(config_path: Path, tmp_path: Path) -> None:
    code, out = invoke(config_path, "preview", "--output", str(tmp_path / "x.html"))
    assert code == 1 and "nothing new to preview" in out


def test_subscribers_import_reports_bad_rows(config_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "list.csv"
    bad.write_text(
        "email,name,themes\nok@example.com,OK,ai\nbroken@,Bad,\nother@example.com,X,nosuch\n",
        "utf-8",
    )
    code, out = invoke(config_path, "subscribers", "import", str(bad))
    assert code == 1
    assert f"{bad}:3:" in out and f"{bad}:4:" in out and "nothing imported" in out
    code, out = invoke(config_path, "subscribers", "list")
    assert "ok@example.com" not in out

    code, out = invoke(config_path, "subscribers", "import", str(bad), "--skip-invalid")
    assert code == 0, out
    assert "1 added" in out
    # Skipped rows are said as skipped, not as errors of a run that exits 0.
    assert f"skipped: {bad}:3:" in out and f"skipped: {bad}:4:" in out
    assert "error:" not in out
    code, out = invoke(config_path, "subscribers", "list")
    assert "ok@example.com\tOK\tai\tactive" in out


def test_schedule_list(config_path: Path) -> None:
    config_path.write_text(
        config_path.read_text("utf-8")
        + '\n[[schedules]]\nname = "weekly"\ncron = "weekly on monday at 08:00"\n'
        'timezone = "America/New_York"\n',
        "utf-8",
    )
    code, out = invoke(config_path, "schedule", "--list")
    assert code == 0, out
    assert out.startswith("weekly: next ")
    assert out.count("08:00 EST") + out.count("08:00 EDT") == 3
    assert "(America/New_York)" in out


def test_schedule_rejects_a_bad_cron(config_path: Path) -> None:
    config_path.write_text(
        config_path.read_text("utf-8") + '\n[[schedules]]\nname = "x"\ncron = "every tuesday"\n',
        "utf-8",
    )
    code, out = invoke(config_path, "schedule", "--list")
    assert code == 2
    assert "schedules[0].cron" in out and "every tuesday" in out


@pytest.mark.parametrize("flag", ["--to", "--theme"])
def test_send_rejects_bad_values(config_path: Path, flag: str) -> None:
    code, out = invoke(config_path, "send", flag, "bad\naddress" if flag == "--to" else "nosuch")
    assert code != 0
    assert "Traceback" not in out


def test_empty_recipient_list_is_refused(config_path: Path) -> None:
    (config_path.parent / "subscribers.csv").write_text("email,name,themes\n", "utf-8")
    assert invoke(config_path, "ingest")[0] == 0
    code, out = invoke(config_path, "send")
    assert code == 1
    assert "error: no active subscribers" in out
    assert not (config_path.parent / "var" / "mail").exists()  # nothing was sent


def test_control_characters_in_header_values_are_refused(config_path: Path) -> None:
    text = config_path.read_text("utf-8").replace(
        'name = "해봄의 아카이브"', 'name = "해봄의\\r\\nBcc: x@example.com"', 1
    )
    config_path.write_text(text, "utf-8")
    code, out = invoke(config_path, "send")
    assert code == 2 and "control characters" in out


def test_config_may_follow_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`digest run --config X` works like `digest --config X run` (it used to fail with "No
    such option"); a `--config` after `--` is left to the command."""
    from tests.conftest import write_config

    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    config = write_config(tmp_path)
    runner = CliRunner()
    before = runner.invoke(main, ["--config", str(config), "subscribers", "import", "--help"])
    assert before.exit_code == 0, before.output
    added = runner.invoke(main, ["subscribers", "add", "kim@example.com", "--config", str(config)])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(main, ["subscribers", "list", f"--config={config}"])
    assert listed.exit_code == 0, listed.output
    assert "kim@example.com" in listed.output
    assert runner.invoke(main, ["subscribers", "list", "--", "--config", "x"]).exit_code != 0
