"""Crash loop: `digest run` killed with SIGKILL at random points of ingest, planning, recording
and sending, 20 times, against an SMTP server (aiosmtpd) in another process whose log, fsynced
before every 250, is the ground truth of what was delivered.

Every cycle adds a few posts to a folder source (some backdated: published before the last
digest, they must still go out later), starts `digest run` and kills it (or, a few times, lets
it finish). At the end `digest send --resume` and `digest run` are repeated until there is
nothing left, and the server's log must show:

- nothing lost: every post reached every subscriber whose themes take it, at least once;
- duplicates only from messages in flight at a kill: a message accepted twice (same
  recipient, same Message-ID) at most `smtp.concurrency` times per kill that hit sending,
  and no post in two different messages to the same reader;
- nothing pending or deferred (`digest status`, `digest send --resume`).

The store is SQLite, or (tests/conftest.py, DIGEST_TEST_PG) a schema on a PostgreSQL server.
Which phase each kill hit comes from markers the digest process writes as it goes
(tests/crashloop_support.py wraps ingest, planning, recording and delivery).
Run alone: python -m pytest -q -p no:cacheprovider tests/test_crashloop.py -x -s
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import store_url
from tests.crashloop_support import Progress, group_members

SUPPORT = Path(__file__).resolve().parent / "crashloop_support.py"
SEED = 20261203
CYCLES = 20
READERS = 2000
CONCURRENCY = 4  # smtp.concurrency: connections in all, shared by the worker processes
PROCESSES = 2  # delivery.processes
THEMES = ("alpha", "beta", "gamma")
CHOICES: tuple[tuple[str, ...], ...] = (
    (),
    ("alpha",),
    ("beta",),
    ("gamma",),
    ("alpha", "beta"),
    ("beta", "gamma"),
    ("alpha", "gamma"),
    ("alpha", "beta", "gamma"),
)  # 8 variants: recording an edition writes 8 digests
# Where the kills are aimed, one per cycle (shuffled): each waits for its phase to start,
# then for a random part of that phase's length as measured so far. `anywhere` is a random
# delay from the start; `none` lets the run finish.
TARGETS = (
    ["ingest"] * 3 + ["plan"] * 4 + ["record"] * 4 + ["send"] * 5 + ["anywhere"] * 2 + ["none"] * 2
)
RUN_TIMEOUT = 120.0  # seconds, for any one digest process
# A run first resumes what earlier kills left pending (thousands of messages after a few kills
# in sending): its budget grows by this much per message left, at a slow machine's rate.
SECONDS_PER_LEFT = 1 / 40

CONFIG = """\
[site]
name = "Crash Loop Weekly"
url = "https://crash.example"
sender = "Crash Loop <digest@crash.example>"
timezone = "UTC"
language = "en"

[store]
path = "var/digest.sqlite3"
{store_url}

[smtp]
host = "127.0.0.1"
port = {port}
timeout = 30
concurrency = {concurrency}

[delivery]
processes = {processes}
retry_base_seconds = 0.05
retry_max_seconds = 0.2
wait_for_retries_seconds = 5

[web]
base_url = "https://crash.example/digest"
secret_env = "DIGEST_TEST_SECRET"

[selection]
lookback_days = 7
max_posts = 50

[[sources]]
name = "crash"
url = "posts"
kind = "folder"
language = "en"
"""

THEME = """
[[themes]]
key = "{key}"
title = "{title}"
tags = ["{key}"]
threshold = 3.0
"""

WORDS = (
    *("river", "harbor", "lantern", "orchard", "meadow", "compass", "granite", "willow"),
    *("ember", "falcon", "quarry", "beacon", "thicket", "cedar", "prairie", "glacier"),
)


@dataclass(frozen=True)
class PostFile:
    number: int
    cycle: int
    tags: tuple[str, ...]
    published: datetime
    backdated: bool

    @property
    def slug(self) -> str:
        return f"p{self.number:04d}"

    @property
    def url(self) -> str:
        return f"https://crash.example/posts/{self.slug}"

    def describe(self) -> str:
        late = ", backdated" if self.backdated else ""
        return (
            f"{self.url} (cycle {self.cycle}{late}, tags {list(self.tags) or '-'}, "
            f"published {self.published:%Y-%m-%d %H:%M:%S} UTC)"
        )

    def write(self, folder: Path, rng: random.Random) -> None:
        sentences = [
            f"The {rng.choice(WORDS)} near the {rng.choice(WORDS)} changed in week "
            f"{self.number} as people in town had noticed for {k + 2} days."
            for k in range(6)
        ]
        (folder / f"{self.slug}.md").write_text(
            "---\n"
            f'title: "Field note {self.number}: the {rng.choice(WORDS)}"\n'
            f"date: {self.published.isoformat()}\n"
            f"tags: [{', '.join(self.tags)}]\n"
            "author: Crash Loop\n"
            f"url: {self.url}\n"
            "---\n\n" + "\n\n".join(" ".join(sentences[i : i + 2]) for i in range(0, 6, 2)) + "\n",
            encoding="utf-8",
        )


@dataclass
class Cycle:
    number: int
    target: str
    new_posts: int
    backdated: int
    delay: float = 0.0  # seconds after the target phase began
    killed: bool = False
    phase: str = ""  # where the process was when it died (or "exited")
    in_flight: bool = False  # delivery workers were sending at the kill
    accepted: int = 0  # messages the server accepted during the cycle
    first_line: int = 0  # the server log's line count when the cycle began
    rc: int | None = None
    store: str = ""
    survivors: list[int] = field(default_factory=list)
    hooks: set[str] = field(default_factory=set)
    output: str = ""  # the tail of what the run printed


class ServerLog:
    """The server's log, read incrementally: one JSON line per accepted message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines = 0

    def count(self) -> int:
        if self.path.exists():
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
            complete = chunk.rfind(b"\n") + 1
            self.lines += chunk.count(b"\n", 0, complete)
            self.offset += complete
        return self.lines

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines()]


def poll(until: Callable[[], bool], proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Poll `until` every millisecond; False as soon as `proc` has exited."""
    while time.monotonic() < deadline:
        if until():
            return True
        if proc.poll() is not None:
            return until()
        time.sleep(0.001)
    raise AssertionError(f"pid {proc.pid}: nothing happened within the deadline")


def store_snapshot(db: str) -> str:
    """Editions, digests and delivery rows per state, for the cycle's log."""
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            editions, variants = conn.execute(
                sa.text("SELECT COUNT(DISTINCT edition), COUNT(*) FROM digests")
            ).one()
            counted = conn.execute(
                sa.text("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
            )
            rows = {str(status): int(n) for status, n in counted}
    except sa.exc.SQLAlchemyError as exc:
        return f"store unreadable: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    states = " ".join(f"{k}={v}" for k, v in sorted(rows.items()))
    return f"{editions} editions/{variants} digests; rows {states or '-'}"


def pending_rows(db: str) -> dict[str, int]:
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            counted = conn.execute(
                sa.text(
                    "SELECT status, COUNT(*) FROM deliveries "
                    "WHERE status IN ('pending', 'deferred') GROUP BY status"
                )
            )
            return {str(status): int(n) for status, n in counted}
    finally:
        engine.dispose()


@pytest.mark.slow
# About 4 minutes on 2 cores; more when kills leave a backlog that a later run resumes.
@pytest.mark.timeout(900)
def test_crash_loop_loses_nothing_and_duplicates_only_messages_in_flight(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    env = {**os.environ, "DIGEST_TEST_SECRET": "crash-loop-secret", "PYTHONUNBUFFERED": "1"}

    # -- the SMTP server, in its own process ------------------------------------------------
    log_path = tmp_path / "smtp.jsonl"
    with (tmp_path / "smtp.err").open("wb") as errors:
        server = subprocess.Popen(
            [sys.executable, str(SUPPORT), "serve", str(log_path)],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
        )
    try:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 30)
        line = server.stdout.readline() if ready else b""
        assert line.strip().isdigit(), (
            f"the SMTP server did not start: {(tmp_path / 'smtp.err').read_text()}"
        )
        port = int(line)
        _crash_loop(tmp_path, port, rng, env, ServerLog(log_path), started)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)
        if server.stdout is not None:
            server.stdout.close()


def _crash_loop(
    tmp_path: Path,
    port: int,
    rng: random.Random,
    env: dict[str, str],
    log: ServerLog,
    started: float,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        CONFIG.format(
            port=port,
            concurrency=CONCURRENCY,
            processes=PROCESSES,
            store_url=f"url = {json.dumps(store_url())}" if store_url() else "",
        )
        + "".join(THEME.format(key=k, title=k.title()) for k in THEMES),
        encoding="utf-8",
    )
    # The store: SQLite beside the config, or the test's PostgreSQL schema (conftest.py).
    db = store_url() or f"sqlite:///{tmp_path / 'var' / 'digest.sqlite3'}"
    folder = tmp_path / "posts"
    folder.mkdir()
    readers = {f"reader{i:04d}@example.com": CHOICES[i % len(CHOICES)] for i in range(READERS)}
    csv = tmp_path / "subscribers.csv"
    csv.write_text(
        "email,name,themes,language,status\n"
        + "".join(f'{e},Reader {e[6:10]},"{";".join(t)}",en,active\n' for e, t in readers.items()),
        encoding="utf-8",
    )

    def digest(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(config), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )

    imported = digest("subscribers", "import", str(csv))
    assert imported.returncode == 0, imported.stdout + imported.stderr

    posts: list[PostFile] = []
    cycles: list[Cycle] = []
    targets = list(TARGETS)
    assert len(targets) == CYCLES
    rng.shuffle(targets)
    # How long each phase took when a run got through it (the first guesses until then).
    lengths = {"ingest": 0.15, "plan": 4.0, "record": 0.06}
    measured: set[str] = set()

    for number, target in enumerate(targets):
        now = datetime.now(UTC)
        fresh = 5 if number == 0 else rng.randint(2, 4)
        late = 0 if number == 0 else rng.choice((1, 1, 2))
        for k in range(fresh + late):
            backdated = k >= fresh
            # Fresh posts: published after every digest so far (the last run is over), and
            # by the time this run starts. Backdated ones: before the last digest, well
            # within the lookback.
            age = (
                timedelta(hours=rng.uniform(6, 72))
                if backdated
                else timedelta(milliseconds=rng.uniform(1, 5))
            )
            post = PostFile(
                number=len(posts),
                cycle=number,
                tags=tuple(sorted(rng.sample(THEMES, rng.choice((0, 1, 1, 2))))),
                published=now - age,
                backdated=backdated,
            )
            post.write(folder, rng)
            posts.append(post)
        cycle = Cycle(number, target, fresh, late)
        cycles.append(cycle)
        before = cycle.first_line = log.count()
        budget = RUN_TIMEOUT + sum(pending_rows(db).values()) * SECONDS_PER_LEFT

        _run_and_kill(cycle, config, tmp_path, env, rng, log, lengths, measured, before, budget)
        cycle.store = store_snapshot(db)
        output = (tmp_path / f"run-{number:02d}.out").read_text("utf-8", "replace")
        assert "skipped" not in output, f"a post file of this test is broken:\n{output}"
        cycle.output = "\n".join(output.splitlines()[-12:])
        print(
            f"cycle {number:2d}: {target:8} -> {cycle.phase:7}"
            f"{' in flight' if cycle.in_flight else ''}; {cycle.accepted} accepted; "
            f"{cycle.store}",
            flush=True,
        )

    # -- finish: resume, then run until there is nothing left ----------------------------------
    finishing: list[str] = []
    final_line = log.count()  # the log's lines from here on come from the runs that finish
    for _attempt in range(4):
        left = sum(pending_rows(db).values())
        resumed = digest("send", "--resume", timeout=RUN_TIMEOUT + left * SECONDS_PER_LEFT)
        ran = digest("run")
        finishing.append(f"$ digest send --resume\n{resumed.stdout}{resumed.stderr}")
        finishing.append(f"$ digest run\n{ran.stdout}{ran.stderr}")
        assert resumed.returncode == 0 and ran.returncode == 0, "\n".join(finishing)
        if "nothing to resume" in resumed.stdout and "nothing new to send" in ran.stdout:
            break
    else:
        raise AssertionError("still sending after 4 rounds:\n" + "\n".join(finishing))
    status = digest("status")
    final_resume = digest("send", "--resume")
    summary = _analyze(
        readers,
        posts,
        cycles,
        log,
        status.stdout,
        final_resume.stdout,
        pending_rows(db),
        time.monotonic() - started,
        final_line,
    )
    (tmp_path / "summary.txt").write_text(summary.text, encoding="utf-8")
    print(summary.text, flush=True)
    summary.check()


def _run_and_kill(
    cycle: Cycle,
    config: Path,
    tmp_path: Path,
    env: dict[str, str],
    rng: random.Random,
    log: ServerLog,
    lengths: dict[str, float],
    measured: set[str],
    before: int,
    budget: float,
) -> None:
    """One `digest run`, killed with SIGKILL where `cycle.target` says; then wait until
    nothing of it is left alive, and note the phase the kill hit. `budget`: seconds the
    run may take (RUN_TIMEOUT, and more for a backlog to resume)."""
    progress_path = tmp_path / f"progress-{cycle.number:02d}.txt"
    target = cycle.target

    def started(phase: str) -> Callable[[], bool]:
        return lambda: Progress.read(progress_path).started(phase) is not None

    command = [sys.executable, str(SUPPORT), "run-digest", str(progress_path)]
    with (tmp_path / f"run-{cycle.number:02d}.out").open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--config", str(config), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: its workers can be found
        )
        deadline = time.monotonic() + budget
        try:
            kill = False
            if target in lengths:
                if poll(started(target), proc, deadline):
                    cycle.delay = rng.uniform(0.05, 0.7) * lengths[target]
                    time.sleep(cycle.delay)  # the random point of the kill, not a wait
                    kill = True
            elif target == "send":
                if poll(started("send"), proc, deadline):
                    base = log.count()
                    cycle.delay = rng.randint(1, int(READERS * 0.8))
                    kill = poll(lambda: log.count() - base >= cycle.delay, proc, deadline)
            elif target == "anywhere":
                cycle.delay = rng.uniform(0.5, 9.0)
                try:
                    proc.wait(timeout=cycle.delay)
                except subprocess.TimeoutExpired:
                    kill = True
            if kill and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                cycle.killed = True
            cycle.rc = proc.wait(timeout=max(deadline - time.monotonic(), RUN_TIMEOUT))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    # Workers die with their parent (PR_SET_PDEATHSIG): nothing of this run may go on
    # sending into the next one.
    gone_by = time.monotonic() + 15
    while (left := group_members(proc.pid)) and time.monotonic() < gone_by:
        time.sleep(0.01)
    cycle.survivors = left
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    cycle.accepted = log.count() - before
    seen = Progress.read(progress_path)
    cycle.phase = seen.phase if cycle.killed else "exited"
    cycle.hooks = seen.hooks
    if any(h.endswith(".deliver_in_workers") for h in seen.hooks):
        cycle.in_flight = cycle.killed and seen.sending
    else:  # delivery is not hooked (renamed?): any kill of a run that sent may hold some
        cycle.in_flight = cycle.killed and cycle.accepted > 0
    for phase in lengths:
        span = seen.span(phase)
        if span is not None:  # the shortest seen: a kill aimed at a phase lands in it
            lengths[phase] = min(lengths[phase], span) if phase in measured else span
            measured.add(phase)


@dataclass
class Summary:
    text: str
    failures: list[str]

    def check(self) -> None:
        if self.failures:
            raise AssertionError("\n\n".join(self.failures) + "\n\n" + self.text)


def _analyze(
    readers: dict[str, tuple[str, ...]],
    posts: list[PostFile],
    cycles: list[Cycle],
    log: ServerLog,
    status: str,
    final_resume: str,
    left: dict[str, int],
    elapsed: float,
    final_line: int,
) -> Summary:
    copies: Counter[tuple[str, str]] = Counter()  # (reader, post URL) -> messages with it
    messages: defaultdict[tuple[str, str], set[str]] = defaultdict(set)  # -> Message-IDs
    accepted: Counter[tuple[str, str]] = Counter()  # (reader, Message-ID) -> acceptances
    origin: dict[tuple[str, str], int] = {}  # -> the log line of its first acceptance
    by_url = {p.url: p for p in posts}
    for line, record in enumerate(log.records()):
        rcpt, mid, urls = str(record["rcpt"]), str(record["mid"]), record["urls"]
        assert isinstance(urls, list)
        accepted[(rcpt, mid)] += 1
        origin.setdefault((rcpt, mid), line)
        for url in set(urls):
            copies[(rcpt, url)] += 1
            messages[(rcpt, url)].add(mid)

    def takes(themes: tuple[str, ...], post: PostFile) -> bool:
        return not themes or bool(set(themes) & set(post.tags))

    lost: defaultdict[str, list[str]] = defaultdict(list)  # post URL -> readers who lack it
    for reader, themes in readers.items():
        for post in posts:
            if takes(themes, post) and not copies[(reader, post.url)]:
                lost[post.url].append(reader)
    lost_pairs = sum(len(r) for r in lost.values())
    resent = {key: n - 1 for key, n in accepted.items() if n > 1}
    resent_total = sum(resent.values())
    # Each message accepted again is charged to the kill of the run that sent it first: the
    # cycle whose lines of the log hold its first acceptance (from the cycle's start to the
    # next one's). None: it was first sent by a run that was not killed while sending.
    charged: Counter[int | None] = Counter()
    for key, extra in resent.items():
        first = origin[key]
        sender = None
        if first < final_line:
            sender = max((c for c in cycles if c.first_line <= first), key=lambda c: c.number)
        charged[sender.number if sender is not None and sender.in_flight else None] += extra
    over = {k: n for k, n in charged.items() if k is None or n > CONCURRENCY}
    kills = [c for c in cycles if c.killed]
    in_flight_kills = [c for c in kills if c.in_flight]
    allowance = CONCURRENCY * len(in_flight_kills)
    repeated = {key: mids for key, mids in messages.items() if len(mids) > 1}
    extra_copies = sum(n - 1 for n in copies.values())
    unexpected = sum(
        1
        for (reader, url) in copies
        if reader not in readers or url not in by_url or not takes(readers[reader], by_url[url])
    )
    phases = Counter(c.phase for c in kills)

    lines = ["crash loop:"]
    lines += [
        f"  cycle {c.number:2d}: aimed at {c.target:8} -> {'killed in ' + c.phase if c.killed else 'ran to the end (rc ' + str(c.rc) + ')'}"  # noqa: E501
        f"{' with messages in flight' if c.in_flight else ''}"
        f"{f' after {c.delay:.3f}s' if c.killed and c.target not in ('send',) else ''}"
        f"{f' after {int(c.delay)} messages' if c.killed and c.target == 'send' else ''}"
        f"; +{c.new_posts} posts, {c.backdated} backdated; {c.accepted} accepted; {c.store}"
        + (f"; SURVIVORS {c.survivors}" if c.survivors else "")
        for c in cycles
    ]
    lines += [
        f"  kills: {len(kills)} ({', '.join(f'{p} {n}' for p, n in sorted(phases.items()))}); "
        f"{len(in_flight_kills)} with messages in flight",
        f"  readers {len(readers)}, posts {len(posts)} "
        f"({sum(p.backdated for p in posts)} backdated); "
        f"messages accepted {sum(accepted.values())}",
        f"  lost (reader, post) pairs: {lost_pairs} over {len(lost)} posts",
        f"  messages accepted twice or more (same reader and Message-ID): {resent_total} extra; "
        f"allowance {allowance} ({CONCURRENCY} connections x {len(in_flight_kills)} kills); "
        "per kill: "
        + (
            ", ".join(
                f"{'no kill' if k is None else f'cycle {k}'} {n}"
                for k, n in sorted(charged.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
            )
            or "-"
        ),
        f"  posts a reader got in two different messages: {len(repeated)}",
        f"  extra copies of posts in all: {extra_copies}; posts outside a reader's themes: "
        f"{unexpected}",
        f"  pending/deferred rows left: {left or 'none'}",
        f"  phase markers: {', '.join(sorted(set().union(*(c.hooks for c in cycles))))}",
        f"  runtime {elapsed:.0f}s",
    ]
    failures: list[str] = []
    if lost:
        worst = sorted(lost.items(), key=lambda kv: by_url[kv[0]].number)
        detail = [
            f"  {by_url[url].describe()}: missing for {len(who)} reader(s), e.g. "
            + ", ".join(f"{r} (themes {','.join(readers[r]) or 'all'})" for r in who[:3])
            for url, who in worst[:25]
        ]
        failures.append(
            f"LOST: {lost_pairs} (reader, post) pairs never delivered, over {len(lost)} of "
            f"{len(posts)} posts:\n" + "\n".join(detail)
        )
    if resent_total > allowance or over:
        worst_resent = sorted(resent.items(), key=lambda kv: -kv[1])[:10]
        per_kill = ", ".join(
            f"{'no kill' if k is None else f'cycle {k}'}: {n}"
            for k, n in sorted(charged.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
        )
        failures.append(
            f"DUPLICATES: {resent_total} messages accepted again (allowance {allowance}); "
            f"per kill (at most {CONCURRENCY}, one per connection): {per_kill}; e.g. "
            + ", ".join(f"{r} {m} x{n + 1}" for (r, m), n in worst_resent)
        )
    if repeated:
        sample = sorted(repeated.items())[:10]
        failures.append(
            f"DUPLICATES: {len(repeated)} times a reader got the same post in two different "
            "messages (not a message in flight at a kill):\n"
            + "\n".join(f"  {r}: {by_url[u].describe()} in {sorted(m)}" for (r, u), m in sample)
        )
    crashed = [c for c in cycles if not c.killed and c.rc != 0]
    if crashed:
        failures.append(
            "UNEXPECTED EXIT: a run that was not killed failed:\n"
            + "\n".join(
                f"  cycle {c.number}: rc {c.rc}\n{textwrap.indent(c.output, '    ')}"
                for c in crashed
            )
        )
    survivors = [c for c in cycles if c.survivors]
    if survivors:
        failures.append(
            "WORKERS OUTLIVED THE KILL: "
            + "; ".join(f"cycle {c.number}: pids {c.survivors}" for c in survivors)
        )
    shown = {
        name: int(m.group(1))
        for name in ("pending", "deferred")
        if (m := re.search(rf"^\s+{name}\s+(\d+)$", status, re.M))
    }
    if shown != {"pending": 0, "deferred": 0} or left:
        failures.append(
            f"NOT SETTLED: `digest status` shows {shown or 'no counts'}, the store has "
            f"{left} pending/deferred rows:\n{textwrap.indent(status, '  ')}"
        )
    if "nothing to resume" not in final_resume:
        failures.append(f"NOT SETTLED: `digest send --resume` at the end said: {final_resume}")
    return Summary("\n".join(lines), failures)
