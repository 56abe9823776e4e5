"""Delivery against a real aiosmtpd server that misbehaves in every way the issue lists:
random 451s, 550s, dropped connections, replies slower than the timeout, a crash mid-send.
Every recipient must end sent or failed as it should, with counts that add up."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from digest.cli import main
from digest.config import load_config
from digest.store import Store
from tests.conftest import SUBSCRIBERS, SMTPServer, free_port, write_config

RETRY_FAST = """
[delivery]
retry_base_seconds = 0.02
retry_max_seconds = 0.1
wait_for_retries_seconds = 10
max_attempts = 10
"""


@dataclass
class FaultHandler:
    reject: set[str] = field(default_factory=set)  # 550 at RCPT
    flaky_rate: float = 0.0  # 451 at RCPT, at random
    throttle_rate: float = 0.0  # 454 at MAIL, at random
    disconnect_every: int = 0  # drop the connection at every Nth DATA, nothing stored
    slow_every: int = 0  # every Nth DATA answers only after `slow_seconds`, nothing stored
    slow_seconds: float = 0.0
    data_delay: float = 0.0
    seed: int = 7
    received: list[str] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    arrive_after: int = 0
    datas: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.rng.random() < self.throttle_rate:
            return "454 4.7.0 Too many messages, slow down"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self.rng.random() < self.flaky_rate:
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.datas += 1
        if self.disconnect_every and self.datas % self.disconnect_every == 0:
            server.transport.close()
            return "421 4.4.2 connection dropped"
        if self.slow_every and self.datas % self.slow_every == 0:
            await asyncio.sleep(self.slow_seconds)
            return "451 4.4.2 too slow"
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        self.received.extend(envelope.rcpt_tos)
        if self.arrive_after and len(self.received) >= self.arrive_after:
            self.arrived.set()
        return "250 OK queued"


@pytest.fixture
def fault_server() -> Iterator[tuple[FaultHandler, int]]:
    handler = FaultHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def many_subscribers(folder: Path, n: int) -> list[str]:
    emails = [f"reader{i:04d}@example.com" for i in range(n)]
    rows = "".join(f"{e},독자 {i},,ko,active\n" for i, e in enumerate(emails))
    (folder / "subscribers.csv").write_text(SUBSCRIBERS.splitlines()[0] + "\n" + rows, "utf-8")
    return emails


def setup(
    tmp_path: Path, port: int, n: int, extra: str = RETRY_FAST, timeout: float = 5
) -> tuple[Path, list[str]]:
    config = write_config(
        tmp_path,
        smtp=f'host = "127.0.0.1"\nport = {port}\ntimeout = {timeout}\nconcurrency = 3',
        extra=extra,
    )
    emails = many_subscribers(tmp_path, n)
    result = CliRunner().invoke(main, ["--config", str(config), "ingest"])
    assert result.exit_code == 0, result.output
    return config, emails


def send(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), "send", *args])
    assert result.exit_code == 0, result.output
    return result.output


def counts(config: Path) -> dict[str, int]:
    store = Store.from_config(load_config(config).store)
    try:
        return store.delivery_counts()
    finally:
        store.close()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")


def test_random_451s_and_550s(tmp_path: Path, fault_server: tuple[FaultHandler, int]) -> None:
    handler, port = fault_server
    config, emails = setup(tmp_path, port, 120)
    rejected = set(emails[::17])
    handler.reject = rejected
    handler.flaky_rate = 0.25
    handler.throttle_rate = 0.1
    send(config)
    assert counts(config) == {"sent": 120 - len(rejected), "failed": len(rejected)}
    got = Counter(handler.received)
    assert set(got) == set(emails) - rejected
    assert max(got.values()) == 1  # every accepted recipient exactly once
    store = Store.from_config(load_config(config).store)
    suppressed = store.suppressed()
    store.close()
    assert {e for e, why in suppressed.items() if why == "bounced"} == rejected


def test_dropped_connections_and_slow_replies(
    tmp_path: Path, fault_server: tuple[FaultHandler, int]
) -> None:
    handler, port = fault_server
    config, emails = setup(tmp_path, port, 90, timeout=0.5)
    handler.disconnect_every = 7
    handler.slow_every = 11
    handler.slow_seconds = 1.0  # longer than the 0.5 s timeout
    output = send(config)
    assert counts(config) == {"sent": 90}, output
    got = Counter(handler.received)
    assert set(got) == set(emails) and max(got.values()) == 1


def test_deferred_until_max_attempts_then_failed(
    tmp_path: Path, fault_server: tuple[FaultHandler, int]
) -> None:
    handler, port = fault_server
    config, _emails = setup(
        tmp_path,
        port,
        5,
        extra=RETRY_FAST.replace("10\n", "3\n", 1).replace("max_attempts = 10", "max_attempts = 3"),
    )
    handler.flaky_rate = 1.0  # every RCPT answers 451
    result = CliRunner().invoke(main, ["--config", str(config), "send"])
    assert result.exit_code == 1  # nothing was accepted
    assert counts(config) == {"failed": 5}
    assert "gave up after 3 attempt(s): 451 4.7.1" in result.output


def test_deferred_rows_wait_for_resume(
    tmp_path: Path, fault_server: tuple[FaultHandler, int]
) -> None:
    handler, port = fault_server
    extra = RETRY_FAST.replace("wait_for_retries_seconds = 10", "wait_for_retries_seconds = 0")
    extra = extra.replace("retry_base_seconds = 0.02", "retry_base_seconds = 0.3")
    config, emails = setup(tmp_path, port, 6, extra=extra)
    handler.flaky_rate = 1.0
    result = CliRunner().invoke(main, ["--config", str(config), "send"])
    assert counts(config) == {"deferred": 6}
    assert "retried by `digest send --resume`" in result.output
    handler.flaky_rate = 0.0
    import time

    time.sleep(0.45)  # past the longest backoff (0.3 s + 25% jitter)
    output = send(config, "--resume")
    assert "(resumed)" in output
    assert counts(config) == {"sent": 6}
    assert sorted(handler.received) == sorted(emails)


def test_daily_limit_leaves_the_rest_pending(
    tmp_path: Path, fault_server: tuple[FaultHandler, int]
) -> None:
    handler, port = fault_server
    config, _emails = setup(tmp_path, port, 10, extra=RETRY_FAST + "rate_per_day = 4\n")
    output = send(config)
    assert "stopped early" in output
    assert counts(config) == {"sent": 4, "pending": 6}
    assert len(handler.received) == 4
    # Still the same day: a resume sends nothing more.
    send(config, "--resume")
    assert counts(config) == {"sent": 4, "pending": 6}


def test_kill_9_mid_send_then_resume(
    tmp_path: Path, fault_server: tuple[FaultHandler, int]
) -> None:
    handler, port = fault_server
    config, emails = setup(tmp_path, port, 150)
    handler.data_delay = 0.01
    handler.arrive_after = 40
    env = {**os.environ, "DIGEST_TEST_SECRET": "test-secret"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "send"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert handler.arrived.wait(timeout=120), "the send never got going"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = len(handler.received)
    assert 40 <= before < 150
    send(config, "--resume")
    got = Counter(handler.received)
    assert set(got) == set(emails)  # nobody lost
    duplicates = sum(n - 1 for n in got.values())
    # Only messages in flight at the moment of the kill can arrive twice: one per connection.
    assert duplicates <= 3
    assert counts(config) == {"sent": 150}


def test_verp_return_path_names_the_recipient(tmp_path: Path, smtp_server: SMTPServer) -> None:
    from digest.bounces import parse_verp

    config, emails = setup(tmp_path, smtp_server.port, 5, extra=RETRY_FAST + "verp = true\n")
    send(config)
    senders = {m.rcpt_tos[0]: m.mail_from for m in smtp_server.handler.messages}
    assert sorted(senders) == sorted(emails)
    for rcpt, mail_from in senders.items():
        assert mail_from == "digest+" + rcpt.replace("@", "=") + "@haebom.example"
        assert parse_verp(mail_from, "digest@haebom.example") == rcpt


def test_a_real_send_says_once_that_readers_cannot_open_a_local_base_url(
    tmp_path: Path, fault_server: tuple[FaultHandler, int]
) -> None:
    """The sample's http://127.0.0.1:8025 went out silently in unsubscribe links no reader
    can open; a send to a real server now says so, once, and still sends."""
    handler, port = fault_server
    config, emails = setup(tmp_path, port, 3)
    text = config.read_text("utf-8").replace("https://news.example/digest", "http://127.0.0.1:8025")
    config.write_text(text, "utf-8")
    output = send(config)
    assert output.count("warning: web.base_url is http://127.0.0.1:8025") == 1, output
    assert sorted(handler.received) == sorted(emails)
