"""End to end, the way a user runs it: the CLI against a real SMTP server, then the messages
that arrived are parsed and checked against what the store says was selected."""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from digest.cli import main
from digest.config import load_config
from digest.locks import PID_REUSE_SECONDS, SendBusy, sending, take_send_lock
from digest.pipeline import summarize_post
from digest.store import Store, deliveries, digest_posts
from tests.conftest import SMTPServer, free_port, write_config

ACTIVE = {
    "minji.kim@example.com",
    "jun.park@example.com",
    "seoyeon.lee@example.com",
    "alex.morgan@example.org",
}


def cli(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def flat(text: str) -> str:
    return " ".join(text.split())


def html_text(markup: str) -> str:
    return flat(html.unescape(re.sub(r"<[^>]+>", " ", markup)))


@pytest.fixture
def smtp_config(tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    return write_config(tmp_path, smtp=f'host = "127.0.0.1"\nport = {smtp_server.port}')


def test_send_delivers_one_message_per_active_subscriber(
    smtp_config: Path, smtp_server: SMTPServer
) -> None:
    assert "haebom: 35 new, 0 updated, 0 unchanged" in cli(smtp_config, "ingest")
    output = cli(smtp_config, "send")
    assert "issue #1: 4 message(s) sent" in output

    received = smtp_server.handler.messages
    recipients = [r for m in received for r in m.rcpt_tos]
    assert sorted(recipients) == sorted(ACTIVE)  # exactly one each, none to the paused reader

    config = load_config(smtp_config)
    store = Store.from_config(config.store)
    with store.engine.connect() as conn:
        rows = {
            r.message_id: r.digest_id
            for r in conn.execute(sa.select(deliveries.c.message_id, deliveries.c.digest_id))
        }
        chosen = conn.execute(sa.select(digest_posts.c.digest_id, digest_posts.c.post_key)).all()
    for item in received:
        msg = item.message
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Subject"].startswith("해봄의 아카이브")
        assert msg["From"].addresses[0].display_name == "해봄의 아카이브"
        raw_headers = item.data.split(b"\r\n\r\n", 1)[0]
        assert b"=?utf-8?" in raw_headers  # Subject and From encoded per RFC 2047
        text_part = msg.get_body(("plain",))
        html_part = msg.get_body(("html",))
        assert text_part is not None and html_part is not None
        text = flat(text_part.get_content())
        page = html_text(html_part.get_content())
        digest_id = rows[msg["Message-ID"].strip()]
        keys = [k for d, k in chosen if d == digest_id]
        assert keys, "every message carries at least one post"
        for key in keys:
            post = store.get_post(key)
            assert post is not None
            summary = summarize_post(post, config, store)
            assert flat(post.title) in text and flat(post.title) in page
            for sentence in summary.sentences:
                assert flat(sentence) in text
                assert flat(sentence) in page
    store.close()


def test_second_send_sends_nothing_new(smtp_config: Path, smtp_server: SMTPServer) -> None:
    cli(smtp_config, "ingest")
    cli(smtp_config, "send")
    first = len(smtp_server.handler.messages)
    output = cli(smtp_config, "send")
    assert "nothing new to send" in output
    assert len(smtp_server.handler.messages) == first


def test_test_copy_and_dry_run_record_nothing(smtp_config: Path, smtp_server: SMTPServer) -> None:
    cli(smtp_config, "ingest")
    assert "nothing sent" in cli(smtp_config, "send", "--dry-run")
    assert smtp_server.handler.messages == []
    assert "test copy: 1 message(s) sent" in cli(smtp_config, "send", "--to", "editor@example.net")
    assert [m.rcpt_tos for m in smtp_server.handler.messages] == [["editor@example.net"]]
    # Neither recorded anything: the real send still has everything to send.
    assert "4 message(s) sent" in cli(smtp_config, "send")


def test_theme_send_keeps_matching_posts(smtp_config: Path, smtp_server: SMTPServer) -> None:
    cli(smtp_config, "ingest")
    output = cli(smtp_config, "send", "--theme", "ai")
    # Those who chose ai, and the one who chose everything; not economy/humanities.
    recipients = sorted(r for m in smtp_server.handler.messages for r in m.rcpt_tos)
    assert recipients == [
        "alex.morgan@example.org",
        "jun.park@example.com",
        "minji.kim@example.com",
    ]
    assert "인공지능" in smtp_server.handler.messages[0].message["Subject"]
    assert "3 message(s) sent" in output


def test_unreachable_smtp_server_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    port = free_port()  # nothing listens here
    config = write_config(tmp_path, smtp=f'host = "127.0.0.1"\nport = {port}\ntimeout = 5')
    cli(config, "ingest")
    result = CliRunner().invoke(main, ["--config", str(config), "send"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in result.output
    # Nothing half-written: no digest was recorded, so the next attempt sends everything.
    store = Store.from_config(load_config(config).store)
    assert store.delivery_counts() == {}
    assert store.next_issue_number() == 1
    store.close()


def test_rejected_recipient_does_not_sink_the_run(
    smtp_config: Path, smtp_server: SMTPServer
) -> None:
    smtp_server.handler.reject.add("jun.park@example.com")
    cli(smtp_config, "ingest")
    result = CliRunner().invoke(main, ["--config", str(smtp_config), "send"])
    assert result.exit_code == 0, result.output
    assert "3 message(s) sent" in result.output
    assert "jun.park@example.com: 550" in result.output
    store = Store.from_config(load_config(smtp_config).store)
    assert store.delivery_counts() == {"sent": 3, "failed": 1}
    store.close()


def test_main_job_on_embedded_defaults(config_path: Path) -> None:
    """`digest run` with host = "embedded": the built-in catcher stores every message."""
    output = cli(config_path, "run")
    assert "haebom: 35 new" in output
    assert "4 message(s) sent to Maildir" in output
    maildir = config_path.parent / "var" / "mail" / "new"
    files = list(maildir.iterdir())
    assert len(files) == 4
    assert all(f.read_bytes().startswith(b"X-Digest-Catcher-To: ") for f in files)


def test_bad_subscriber_row_is_reported_and_skipped(
    smtp_config: Path, smtp_server: SMTPServer
) -> None:
    csv = smtp_config.parent / "subscribers.csv"
    csv.write_text(csv.read_text(encoding="utf-8") + "not-an-address,누구,,ko,active\n", "utf-8")
    cli(smtp_config, "ingest")
    result = CliRunner().invoke(main, ["--config", str(smtp_config), "send"])
    assert result.exit_code == 0, result.output
    assert f"{csv}:7:" in result.output
    assert len(smtp_server.handler.messages) == 4


def test_one_process_sends_from_a_database_at_a_time(
    smtp_config: Path, smtp_server: SMTPServer
) -> None:
    """While another live process holds the send lock (a scheduled run, a resume), `digest
    send` refuses in one line and records nothing; a lock left by a dead process is taken."""
    cli(smtp_config, "ingest")
    store = Store.from_config(load_config(smtp_config).store)
    try:
        with sending(store):
            result = CliRunner().invoke(main, ["--config", str(smtp_config), "send"])
        assert result.exit_code == 1
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "another digest process is sending" in errors[0]
        assert f"pid {os.getpid()}" in errors[0]
        assert store.delivery_counts() == {} and smtp_server.handler.messages == []

        # A holder that died without releasing (kill -9): its pid is gone, the lock is taken.
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        now = datetime.now(UTC)
        assert store.take_scheduler_lock(
            "gone", pid=dead.pid, host=socket.gethostname(), now=now, replacing=None, name="sender"
        )
        assert "4 message(s) sent" in cli(smtp_config, "send")
        assert store.scheduler_lock("sender") is None  # released at the end
    finally:
        store.close()


def test_a_stale_send_lock_from_another_host_is_taken_over(smtp_config: Path) -> None:
    store = Store.from_config(load_config(smtp_config).store)
    try:
        long_ago = datetime.now(UTC) - timedelta(minutes=10)
        store.take_scheduler_lock(
            "elsewhere", pid=1, host="old-container", now=long_ago, replacing=None, name="sender"
        )
        with pytest.raises(SendBusy):  # fresh heartbeat on another host: cannot be told dead
            take_send_lock(store, "me", long_ago + timedelta(seconds=30), 120.0)
        take_send_lock(store, "me", datetime.now(UTC), 120.0)  # ten minutes without a beat
        holder = store.scheduler_lock("sender")
        assert holder is not None and holder.owner == "me"
    finally:
        store.close()


def test_status_shows_counts_failures_and_a_send_in_progress(
    smtp_config: Path, smtp_server: SMTPServer
) -> None:
    smtp_server.handler.reject.add("jun.park@example.com")
    cli(smtp_config, "ingest")
    cli(smtp_config, "send")
    shown = cli(smtp_config, "status")
    assert re.search(r"edition \S+, issue #1, \d variant\(s\)", shown)
    assert re.search(r"^  sent +3$", shown, re.M) and re.search(r"^  failed +1$", shown, re.M)
    assert re.search(r"^  pending +0$", shown, re.M)
    assert "  failed: jun.park@example.com: 550 5.1.1 No such user here" in shown
    assert "sending now" not in shown
    store = Store.from_config(load_config(smtp_config).store)
    try:
        with sending(store):
            assert f"sending now: pid {os.getpid()}" in cli(smtp_config, "status")
    finally:
        store.close()
    missing = CliRunner().invoke(main, ["--config", str(smtp_config), "status", "x"])
    assert missing.exit_code == 1 and "error: no edition 'x'" in missing.output


def test_a_live_holder_on_this_host_keeps_the_send_lock_however_late_its_heartbeat(
    smtp_config: Path,
) -> None:
    """A `digest send` suspended (Ctrl-Z, a VM pause) misses heartbeats but would go on
    sending when it wakes: its lock is not taken, unless the heartbeat is so old that the
    pid must have been reused."""
    store = Store.from_config(load_config(smtp_config).store)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname()
        now = datetime.now(UTC)
        store.take_scheduler_lock(
            "suspended", pid=holder.pid, host=host, now=now - timedelta(minutes=10),
            replacing=None, name="sender",
        )  # fmt: skip
        with pytest.raises(SendBusy, match=f"pid {holder.pid}"):
            take_send_lock(store, "me", now, 120.0)
        later = now + timedelta(seconds=PID_REUSE_SECONDS)
        take_send_lock(store, "me", later, 120.0)
        lock = store.scheduler_lock("sender")
        assert lock is not None and lock.owner == "me"
    finally:
        holder.kill()
        holder.wait()
        store.close()


def test_nothing_to_resume_is_no_error_while_another_process_sends(smtp_config: Path) -> None:
    store = Store.from_config(load_config(smtp_config).store)
    try:
        with sending(store):
            shown = cli(smtp_config, "status")  # before any edition: the send shows
            assert shown.startswith(f"sending now: pid {os.getpid()}")
            assert "nothing sent yet" in shown
            assert "nothing to resume" in cli(smtp_config, "send", "--resume")
    finally:
        store.close()
