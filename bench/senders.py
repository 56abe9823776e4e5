"""Many senders and long lists: delivery by claims, measured with the real `digest send --resume`.

    python bench/senders.py                     # both parts, defaults (about 10-15 minutes)
    python bench/senders.py --only pair -n 20000 --rounds 3
    python bench/senders.py --only scale --sizes 10000,100000,1000000 --scale-rounds 1

1. pair (PostgreSQL): one recorded edition of N recipients (-n, 20,000) delivered into
   smtp-sink by ONE `digest send --resume` ([delivery] processes = 1, [smtp] concurrency = 4)
   and by TWO such processes started at the same instant (each processes = 1, concurrency 4).
   Reported: msg/s of each and the ratio two/one (the goal is >= 1.6x).
2. scale (SQLite and PostgreSQL): one `digest send --resume` (processes = 2, concurrency 4)
   delivering editions of each of `--sizes` recipients (10,000 and 100,000); reported: the
   time ratio of each size to the smallest (linear: 100k <= 10.5x 10k).

Every edition is planned and recorded ONCE per (store, size), as bench/send.py does (the
sample feed, many subscribers, every message a real ~70 KB digest), into a template store;
every run then delivers a fresh copy of it (`CREATE DATABASE ... TEMPLATE` on PostgreSQL, a
file copy on SQLite), so each run starts from the same rows, all pending, none dead. Each run
has its own smtp-sink (`-c`: its last "mesg=" count is what it received); a run counts only
if the sink received exactly N messages, every row ends `sent` and the digest's counters say
N sent. Two rates per run: `wall` (processes started to all exited, with Python's start-up
and the spawn of the workers) and `window` (first to last settle, from the rows' `updated`:
delivery alone). The machine is shared and noisy (2 cores): runs alternate within a round,
and min/median/max over rounds are printed; read the ratios, not the rates.

Needs postfix's /usr/sbin/smtp-sink and a PostgreSQL server that the current user can create
databases on (`--pg`, default the local socket); the databases are named digest_bench_* and
dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

SINK = "/usr/sbin/smtp-sink"
SECRET_ENV = "BENCH_SECRET"
PREFIX = "digest_bench"


# -- helpers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """One smtp-sink for one run; `-c` prints "sess=.. quit=.. mesg=N" after every event."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.cpu_seconds = 0.0
        self.log = folder / f"sink-{self.port}.out"
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [SINK, "-c", *user, f"127.0.0.1:{self.port}", "256"], stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("smtp-sink did not start")

    def count(self) -> int:
        # Only the log's tail: it grows by a line per SMTP event (about 25 MB at a million
        # messages), and reading it whole 20 times a second cost this script 152 s of CPU
        # in a 1M run, taken from the senders on a 2-core machine.
        with open(self.log, "rb") as fh:
            fh.seek(max(fh.seek(0, os.SEEK_END) - 200, 0))
            found = re.findall(rb"mesg=(\d+)", fh.read())
        return int(found[-1]) if found else 0

    def stop(self) -> int:
        """The number of messages received (once it stopped changing), then stop the sink."""
        last, stable = -1, 0
        while stable < 3:
            n = self.count()
            stable = stable + 1 if n == last else 0
            last = n
            time.sleep(0.05)
        self.cpu_seconds = CPU.process_seconds(self.proc.pid)
        self.proc.terminate()
        self.proc.wait()
        return last


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    raise TypeError(value)


def write_config(path: Path, *, store: dict, port: int, processes: int, concurrency: int) -> Path:
    sections = {
        "site": {
            "name": "해봄의 아카이브",
            "url": "https://haebom.example",
            "sender": "해봄의 아카이브 <digest@haebom.example>",
            "timezone": "Asia/Seoul",
            "language": "ko",
            "postal_address": "서울특별시 중구 세종대로 110",
        },
        "store": store,
        "smtp": {"host": "127.0.0.1", "port": port, "concurrency": concurrency, "timeout": 30},
        "web": {"base_url": "https://news.example/digest", "secret_env": SECRET_ENV},
        "selection": {"lookback_days": 365, "max_posts": 12},
        "delivery": {"processes": processes},
    }
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    feed = ROOT / "samples/haebom/feed.atom"
    lines += ["[[sources]]", 'name = "haebom"', f"url = {toml_value(str(feed))}", "replay = true"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def spread(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def fmt3(values: list[float], spec: str = ".0f") -> str:
    lo, med, hi = spread(values)
    return f"{lo:{spec}} / {med:{spec}} / {hi:{spec}}"


class CPU:
    """Where the machine's CPU went during a run, in seconds: the machine's busy time
    (/proc/stat), this run's processes (the senders and their workers, reaped, and the sink:
    RUSAGE_CHILDREN; this script: RUSAGE_SELF), and the PostgreSQL backends serving the run's
    database (sampled from /proc while they live). The rest of the busy time is the machine's
    other tenants."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, database: str) -> None:
        self.database = database
        self.backends: dict[int, tuple[float, float]] = {}  # pid: (first seen, last seen)
        self.busy0, self.total0 = self._machine()
        self.kids0 = self._rusage(resource.RUSAGE_CHILDREN)
        self.self0 = self._rusage(resource.RUSAGE_SELF)
        self.sample(first=True)

    @staticmethod
    def _machine() -> tuple[float, float]:
        with open("/proc/stat", encoding="ascii") as fh:
            v = [int(x) for x in fh.readline().split()[1:9]]
        return (sum(v) - v[3] - v[4]) / CPU.TICK, sum(v) / CPU.TICK

    @staticmethod
    def _rusage(who: int) -> float:
        r = resource.getrusage(who)
        return r.ru_utime + r.ru_stime

    @staticmethod
    def process_seconds(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                f = fh.read().rpartition(")")[2].split()
            return (int(f[11]) + int(f[12])) / CPU.TICK
        except (OSError, IndexError, ValueError):
            return 0.0

    def sample(self, first: bool = False) -> None:
        if not self.database:
            return
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as fh:
                    cmd = fh.read()
            except OSError:
                continue
            if cmd.startswith(b"postgres: ") and f" {self.database} ".encode() in cmd:
                pid = int(name)
                seconds = self.process_seconds(pid)
                seen = self.backends.get(pid)
                start = seen[0] if seen else (seconds if first else 0.0)
                self.backends[pid] = (start, max(seconds, seen[1] if seen else 0.0))

    def finish(self, sink_seconds: float) -> dict:
        busy, total = self._machine()
        elapsed = (total - self.total0) / (os.cpu_count() or 1)
        kids = self._rusage(resource.RUSAGE_CHILDREN) - self.kids0
        pg = sum(last - first for first, last in self.backends.values())
        bench = self._rusage(resource.RUSAGE_SELF) - self.self0
        senders = kids - sink_seconds
        ours = kids + pg + bench
        return {
            "elapsed": elapsed,
            "busy": busy - self.busy0,
            "senders": senders,
            "pg": pg,
            "sink": sink_seconds,
            "bench": bench,
            "others": max(busy - self.busy0 - ours, 0.0),
        }


# -- stores: a recorded template per (backend, size), a fresh copy per run ----------------------


@dataclass
class Backend:
    name: str  # sqlite | postgresql
    folder: Path
    pg_base: str = ""  # postgresql+psycopg:/// (a server URL without a database)
    made: list[str] = field(default_factory=list)  # PostgreSQL databases this run created

    def _admin(self) -> sa.Engine:
        url = sa.engine.make_url(self.pg_base).set(database="postgres")
        return sa.create_engine(url, isolation_level="AUTOCOMMIT")

    def _sql(self, *statements: str) -> None:
        engine = self._admin()
        try:
            with engine.connect() as conn:
                for s in statements:
                    conn.exec_driver_sql(s)
        finally:
            engine.dispose()

    def store(self, label: str) -> dict:
        """The [store] section of database `label`."""
        if self.name == "sqlite":
            return {"path": str(self.folder / f"{label}.sqlite3")}
        url = sa.engine.make_url(self.pg_base).set(database=f"{PREFIX}_{label}")
        return {"url": url.render_as_string(hide_password=False)}

    def create_empty(self, label: str) -> None:
        if self.name == "sqlite":
            Path(self.store(label)["path"]).unlink(missing_ok=True)
            return
        db = f"{PREFIX}_{label}"
        self._sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", f"CREATE DATABASE {db}")
        self.made.append(db)

    def finish_template(self, label: str) -> None:
        """Make the recorded template's physical state settle: a copy starts clean."""
        if self.name == "sqlite":
            with sqlite3.connect(self.store(label)["path"]) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("ANALYZE")
            return
        engine = sa.create_engine(self.store(label)["url"], isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE, FREEZE)")
        finally:
            engine.dispose()

    def copy(self, template: str, run: str) -> None:
        if self.name == "sqlite":
            src, dst = Path(self.store(template)["path"]), Path(self.store(run)["path"])
            for suffix in ("-wal", "-shm", "-journal"):
                Path(str(dst) + suffix).unlink(missing_ok=True)
            shutil.copyfile(src, dst)
            return
        db, tmpl = f"{PREFIX}_{run}", f"{PREFIX}_{template}"
        self._sql(
            f"DROP DATABASE IF EXISTS {db} WITH (FORCE)",
            f"CREATE DATABASE {db} TEMPLATE {tmpl} STRATEGY FILE_COPY",
        )
        if db not in self.made:
            self.made.append(db)

    def drop_all(self) -> None:
        if self.name != "postgresql" or not self.made:
            return
        self._sql(*(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)" for db in self.made))
        self.made.clear()


def build_template(backend: Backend, label: str, n: int) -> dict:
    """Ingest the sample feed, add `n` subscribers, plan and record one edition, once."""
    from digest.config import load_config
    from digest.ingest import ingest_all
    from digest.outbox import MessageFactory, record_edition
    from digest.pipeline import plan_edition
    from digest.store import Store, StoredSubscriber

    sys.path.insert(0, str(ROOT / "bench"))
    from send import add_subscribers  # bench/send.py: the same readers

    backend.create_empty(label)
    path = write_config(
        backend.folder / f"{label}.toml", store=backend.store(label), port=25,
        processes=1, concurrency=4,
    )  # fmt: skip
    config = load_config(path)
    started = time.perf_counter()
    store = Store.from_config(config.store)
    try:
        now = datetime.now(UTC)
        asyncio.run(ingest_all(config, store, now))
        add_subscribers(store, n)
        edition = plan_edition(config, store, now=now)
        factory = MessageFactory(config)
        variant = edition.variants[0]
        sample = factory.envelope(
            variant, StoredSubscriber("x@example.com", "독자", (), "ko", "active")
        )
        planned = time.perf_counter()
        record_edition(edition, factory, store)
        recorded = time.perf_counter()
        if edition.recipients != n:
            raise SystemExit(f"{label}: planned {edition.recipients} recipients, not {n}")
    finally:
        store.close()
    backend.finish_template(label)
    return {
        "edition": edition.id,
        "plan_seconds": planned - started,
        "record_seconds": recorded - planned,
        "message_bytes": len(sample.data),
    }


# -- one run: K `digest send --resume` processes on a fresh copy --------------------------------


def inspect(backend: Backend, run: str) -> dict:
    """Statuses, counters and the first and last settle of the run's copy."""
    from digest.store import Store
    from digest.store.tables import UTCDateTime, deliveries, digest_counts

    cfg = backend.store(run)
    if backend.name == "sqlite":
        store = Store.open(Path(cfg["path"]))
    else:
        store = Store.from_url(cfg["url"])
    try:
        with store.begin() as conn:
            statuses = dict(
                conn.execute(
                    sa.select(deliveries.c.status, sa.func.count()).group_by(deliveries.c.status)
                ).all()
            )
            counted = conn.execute(sa.select(sa.func.sum(digest_counts.c.sent))).scalar()
            first, last = conn.execute(
                sa.select(
                    sa.func.min(deliveries.c.updated, type_=UTCDateTime),
                    sa.func.max(deliveries.c.updated, type_=UTCDateTime),
                ).where(deliveries.c.status == "sent")
            ).one()
    finally:
        store.close()
    window = (last - first).total_seconds() if first and last else 0.0
    return {"statuses": statuses, "counted_sent": int(counted or 0), "window": window}


def _counted_sent(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def run_senders(
    backend: Backend, template: str, n: int, *, senders: int, processes: int,
    concurrency: int, timeout: float, grace: float,
) -> dict:  # fmt: skip
    """Start `senders` x `digest send --resume` at once on a fresh copy of `template`.

    `done` is when the sink has all `n` messages and the store's counters say `n` sent. A
    sender still running `grace` seconds after that (waiting out another sender's leases,
    see the report) is killed: every row is settled by then, nothing is lost; it is counted
    as `lingered`. A run past `timeout` is killed too and reported with what it sent."""
    run = "run"
    backend.copy(template, run)
    sink = Sink(backend.folder)
    store = backend.store(run)
    cfg = write_config(
        backend.folder / f"{run}.toml", store=store, port=sink.port,
        processes=processes, concurrency=concurrency,
    )  # fmt: skip
    env = {**os.environ, SECRET_ENV: os.environ.get(SECRET_ENV, "bench-secret")}
    command = [sys.executable, "-m", "digest", "--config", str(cfg), "send", "--resume"]
    logs = [backend.folder / f"sender-{i}.log" for i in range(senders)]
    url = store.get("url") or f"sqlite:///{store['path']}"
    poll = _counted_sent(url)
    procs: list[subprocess.Popen[bytes]] = []
    cpu = CPU(f"{PREFIX}_{run}" if backend.name == "postgresql" else "")
    ticks = 0
    timed_out = False
    done_at: float | None = None
    killed_after = 0.0  # seconds the lingering senders were still running after `done`
    try:
        started = time.perf_counter()
        for log in logs:
            with open(log, "wb") as out:
                procs.append(
                    subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,
                                     stderr=subprocess.STDOUT)
                )  # fmt: skip
        while True:
            now = time.perf_counter()
            if all(p.poll() is not None for p in procs):
                break
            if done_at is None and sink.count() >= n:
                with poll.connect() as conn:
                    sent = conn.exec_driver_sql("SELECT sum(sent) FROM digest_counts").scalar()
                if int(sent or 0) >= n:
                    done_at = now
            if done_at is not None and now - done_at > grace:
                killed_after = now - done_at
                break
            if now - started > timeout:
                timed_out = True
                break
            ticks += 1
            if ticks % 10 == 0:
                cpu.sample()
            time.sleep(0.05)
        cpu.sample()
        exited = time.perf_counter()
    finally:
        lingered = 0
        for p in procs:
            if p.poll() is None:
                lingered += 1
                p.kill()  # our own process, by its id; its workers die with it (PDEATHSIG)
                p.wait()
        poll.dispose()
        received = sink.stop()
    used = cpu.finish(sink.cpu_seconds)
    done = (done_at if done_at is not None else exited) - started
    codes = [p.returncode for p in procs]
    state = inspect(backend, run)
    sent = state["statuses"].get("sent", 0)
    ok = (
        not timed_out
        and received == n
        and sent == n
        and state["counted_sent"] == n
        and all(c == 0 for c in codes if c != -9)
    )
    result = {
        "senders": senders,
        "done": done,
        "window": state["window"],
        "rate": sent / done if done else 0.0,
        "window_rate": sent / state["window"] if state["window"] else 0.0,
        "received": received,
        "statuses": state["statuses"],
        "counted_sent": state["counted_sent"],
        "exit_codes": codes,
        "lingered": lingered if not timed_out else 0,
        "lingered_seconds": killed_after,
        "timed_out": timed_out,
        "ok": ok,
        "cpu": used,
        # CPU per message sent: the senders (with their workers) and PostgreSQL's backends
        "ms_per_msg": 1000 * (used["senders"] + used["pg"]) / sent if sent else 0.0,
    }
    if not ok:
        result["logs"] = {log.name: log.read_text(errors="replace")[-800:] for log in logs}
        if not timed_out:
            print(f"  !! run not clean: {json.dumps(result, ensure_ascii=False, default=str)}",
                  flush=True)  # fmt: skip
    return result


def describe(r: dict) -> str:
    extra = ""
    if r["lingered"]:
        extra = f", {r['lingered']} sender(s) still waiting {r['lingered_seconds']:.0f} s after"
    if r["timed_out"]:
        extra = ", TIMED OUT"
    flag = "" if r["ok"] or r["timed_out"] else "  NOT OK"
    return (f"{r['done']:.1f} s to all sent, {r['rate']:.0f} msg/s, window "
            f"{r['window']:.1f} s ({r['window_rate']:.0f} msg/s), sink {r['received']}, "
            f"rows {r['statuses']}{extra}{flag}; {cores(r)}")  # fmt: skip


def cores(r: dict) -> str:
    """CPU over the run, in cores: senders+workers, PostgreSQL, sink, other tenants, idle."""
    c = r["cpu"]
    t = max(c["elapsed"], 1e-9)
    idle = (os.cpu_count() or 1) - c["busy"] / t
    return (f"cores: senders {c['senders'] / t:.2f}, pg {c['pg'] / t:.2f}, sink "
            f"{c['sink'] / t:.2f}, others {c['others'] / t:.2f}, idle {idle:.2f}; "
            f"{r['ms_per_msg']:.2f} ms CPU/msg")  # fmt: skip


# -- the two parts ------------------------------------------------------------------------------


def part_pair(args: argparse.Namespace, pg: Backend) -> dict:
    label = f"pair_{args.n}"
    info = build_template(pg, label, args.n)
    print(f"pair: recorded {args.n} rows on PostgreSQL (plan {info['plan_seconds']:.0f} s, "
          f"record {info['record_seconds']:.1f} s, {info['message_bytes']} bytes a message)",
          flush=True)  # fmt: skip
    runs: dict[str, list[dict]] = {"one": [], "two": []}
    for k in range(args.rounds):
        order = ("one", "two") if k % 2 == 0 else ("two", "one")  # alternate: drift cancels
        for name in order:
            r = run_senders(
                pg, label, args.n, senders=1 if name == "one" else 2, processes=1,
                concurrency=4, timeout=args.timeout * max(1.0, args.n / 100000),
                grace=args.grace,
            )  # fmt: skip
            runs[name].append(r)
            print(f"  round {k + 1} {name}: {describe(r)}", flush=True)
    return {"info": info, "runs": runs}


def part_scale(args: argparse.Namespace, backends: list[Backend]) -> dict:
    sizes = sorted(args.sizes)
    infos: dict[str, dict] = {}
    for b in backends:
        for n in sizes:
            infos[f"{b.name}:{n}"] = info = build_template(b, f"scale_{n}", n)
            print(f"scale: recorded {n} rows on {b.name} (plan {info['plan_seconds']:.0f} s, "
                  f"record {info['record_seconds']:.1f} s)", flush=True)  # fmt: skip
    runs: dict[str, list[dict]] = {key: [] for key in infos}
    for k in range(args.scale_rounds):
        for b in backends:
            for n in sizes if k % 2 == 0 else sizes[::-1]:
                r = run_senders(
                    b, f"scale_{n}", n, senders=1, processes=2, concurrency=4,
                    timeout=args.timeout * max(1.0, n / 100000), grace=args.grace,
                )  # fmt: skip
                runs[f"{b.name}:{n}"].append(r)
                print(f"  round {k + 1} {b.name} {n}: {describe(r)}", flush=True)
    return {"info": infos, "runs": runs, "sizes": sizes}


def report_pair(args: argparse.Namespace, pair: dict) -> None:
    one, two = pair["runs"]["one"], pair["runs"]["two"]
    print()
    print(f"1. PostgreSQL, {args.n} recipients, {pair['info']['message_bytes']} bytes a message, "
          f"{args.rounds} round(s); min / median / max")  # fmt: skip
    print(f"   {'senders':38} {'msg/s to all sent':>20} {'msg/s settle window':>20} "
          f"{'lingered':>9}")  # fmt: skip
    for rs, what in (
        (one, "1 x send --resume (processes 1, conc 4)"),
        (two, "2 x send --resume (processes 1, conc 4)"),
    ):
        print(f"   {what:38} {fmt3([r['rate'] for r in rs]):>20} "
              f"{fmt3([r['window_rate'] for r in rs]):>20} "
              f"{sum(1 for r in rs if r['lingered']):>5} of {len(rs)}")  # fmt: skip
    for rs, what in ((one, "one"), (two, "two")):
        mid = sorted(rs, key=lambda r: r["rate"])[len(rs) // 2]
        print(f"   {what}, the median run's CPU: {cores(mid)}")
    rates = [b["rate"] / a["rate"] for a, b in zip(one, two, strict=True)]
    windows = [b["window_rate"] / a["window_rate"] for a, b in zip(one, two, strict=True)]
    print(f"   {'ratio two/one (per round)':38} {fmt3(rates, '.2f'):>20} "
          f"{fmt3(windows, '.2f'):>20}   goal >= 1.6")  # fmt: skip
    clean = all(r["ok"] for r in one + two)
    print(
        f"   every run: sink got exactly {args.n}, every row sent, counters say {args.n} "
        f"sent: {'yes' if clean else 'NO (see the lines marked NOT OK)'}"
    )


def report_scale(args: argparse.Namespace, scale: dict) -> None:
    sizes = scale["sizes"]
    print()
    print(
        f"2. one send --resume (processes 2, concurrency 4), {args.scale_rounds} round(s); "
        "seconds min / median / max"
    )
    print(f"   {'store':10} {'recipients':>10} {'to all sent, s':>22} {'settle window, s':>22} "
          f"{'msg/s':>6}   time / {sizes[0]} (all sent; window; linear)")  # fmt: skip
    for b in dict.fromkeys(k.split(":")[0] for k in scale["runs"]):
        base = scale["runs"][f"{b}:{sizes[0]}"]
        base_done = statistics.median([r["done"] for r in base])
        base_win = max(statistics.median([r["window"] for r in base]), 1e-9)
        for n in sizes:
            rs = scale["runs"][f"{b}:{n}"]
            done = [r["done"] for r in rs]
            wins = [r["window"] for r in rs]
            rate = statistics.median([r["rate"] for r in rs])
            late = any(r["timed_out"] for r in rs)
            ge = ">= " if late else ""
            ratio = (
                f"{ge}{statistics.median(done) / base_done:.2f}x; "
                f"{ge}{statistics.median(wins) / base_win:.2f}x; {n / sizes[0]:.0f}x"
            )
            note = ""
            if late:
                sent = min(r["statuses"].get("sent", 0) for r in rs)
                note = f"  TIMED OUT with {sent} of {n} sent"
            elif not all(r["ok"] for r in rs):
                note = "  NOT OK"
            print(f"   {b:10} {n:>10} {fmt3(done, '.1f'):>22} {fmt3(wins, '.1f'):>22} "
                  f"{rate:>6.0f}   {ratio}{note}")  # fmt: skip
            mid = sorted(rs, key=lambda r: r["rate"])[len(rs) // 2]
            print(f"   {'':10} {'':>10} {cores(mid)}")
    lingered = sum(1 for rs in scale["runs"].values() for r in rs if r["lingered"])
    total = sum(len(rs) for rs in scale["runs"].values())
    print(f"   runs where a worker still waited after everything was sent: {lingered} of {total}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20000, help="recipients of the 1-vs-2 part")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the 1-vs-2 part")
    parser.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10000, 100000],
        help="recipients of the scaling part, comma-separated (add 1000000 if time allows)",
    )  # fmt: skip
    parser.add_argument("--scale-rounds", type=int, default=1, help="rounds of the scaling part")
    parser.add_argument("--stores", default="sqlite,postgresql", help="stores of the scaling part")
    parser.add_argument("--only", choices=("pair", "scale"), help="run one part only")
    parser.add_argument("--pg", default="postgresql+psycopg:///", help="PostgreSQL server URL")
    parser.add_argument(
        "--timeout", type=float, default=300.0,
        help="seconds a run may take (per 100,000 recipients above that), then it is stopped",
    )  # fmt: skip
    parser.add_argument(
        "--grace", type=float, default=5.0,
        help="seconds a sender may run on after every row is sent, then it is killed",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()
    os.environ.setdefault(SECRET_ENV, "bench-secret")
    if not shutil.which(SINK):
        raise SystemExit("needs postfix's smtp-sink (apt-get install postfix)")
    started = time.perf_counter()
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="digest-senders-") as tmp:
        folder = Path(tmp)
        pg = Backend("postgresql", folder / "pg", pg_base=args.pg)
        lite = Backend("sqlite", folder / "sqlite")
        pg.folder.mkdir()
        lite.folder.mkdir()
        try:
            if args.only in (None, "pair"):
                results["pair"] = part_pair(args, pg)
            if args.only in (None, "scale"):
                chosen = [{"sqlite": lite, "postgresql": pg}[s] for s in args.stores.split(",")]
                results["scale"] = part_scale(args, chosen)
        finally:
            pg.drop_all()
    print(
        f"\ncommand: {' '.join([Path(sys.executable).name, *sys.argv])}; "
        f"{os.cpu_count()} CPUs; {time.perf_counter() - started:.0f} s in all"
    )
    if "pair" in results:
        report_pair(args, results["pair"])
    if "scale" in results:
        report_scale(args, results["scale"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
