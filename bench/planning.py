"""Peak memory of planning and recording an edition, for many readers and 26 variants.

    python bench/planning.py                                  # 100k and 1M, SQLite and PostgreSQL
    python bench/planning.py --sizes 100000 --backends sqlite
    python bench/planning.py --code before=/tmp/digest-before --code after=.

runs each case with each code tree, side by side; /tmp/digest-before is a checkout of the
code to compare with, for instance
`mkdir /tmp/digest-before && git archive HEAD | tar -x -C /tmp/digest-before`.

Per (backend, size) one store is built once: the sample feed ingested (replayed, as
bench/send.py does) and N subscribers bulk-inserted (executemany on SQLite, COPY on
PostgreSQL; not `digest subscribers import`), reader i choosing the i % 26-th subset of the
five themes of config.toml with at most three of them (1 + 5 + 10 + 10 = 26 choices: 26
variants). Each code tree then gets a fresh copy of it (a file copy; `CREATE DATABASE ...
TEMPLATE` on PostgreSQL) and, in a fresh process each, plans and records two editions:

- week 1: planned when half the sample posts were out, nothing sent before, every reader's
  history empty;
- week 2: planned now, every reader has week 1's digest in their history (N delivery rows to
  read) and gets the posts week 1 left out (`max_posts` = 4 per section).

Every post's summary is cached in the store when it is built, so the runs measure planning
and recording, not the summarizer's model (Kiwi's, a fixed few hundred MB whatever the number
of readers, loaded by the first plan that has a post to summarize).

Every backend first runs a store of 26 readers, one per choice: its peak is the part that
does not depend on the readers (Kiwi's model, which theme matching loads, alone peaks at
about 530 MB here), and "readers MB" is each run's peak above it (same store kind, week and
code). Reported per run: the process's peak RSS (VmHWM: imports, the NLP stack and the store's
driver included), its RSS before planning (what the process holds before any reader), the
seconds planning and recording took, and the variants and recipients recorded, which must
be the same for every code tree. Needs a PostgreSQL server the current user may create
databases on (`--pg`, default the local socket); the databases are named
digest_bench_planning_* and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET_ENV = "BENCH_SECRET"
PREFIX = "digest_bench_planning"
THEMES = ("ai", "economy", "humanities", "policy", "work")
CHOICES = [c for r in range(4) for c in itertools.combinations(THEMES, r)]  # 26
CHUNK = 20_000
BASE = len(CHOICES)  # one reader per choice: what planning holds whatever the readers


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


def write_config(path: Path, store: dict[str, str]) -> Path:
    sections: dict[str, dict[str, object]] = {
        "site": {
            "name": "해봄의 아카이브",
            "url": "https://haebom.example",
            "sender": "해봄의 아카이브 <digest@haebom.example>",
            "timezone": "Asia/Seoul",
            "language": "ko",
            "postal_address": "서울특별시 중구 세종대로 110",
        },
        "store": dict(store),
        "web": {"base_url": "https://news.example/digest", "secret_env": SECRET_ENV},
        "selection": {"lookback_days": 365, "max_posts": 4},
    }
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    feed = ROOT / "samples/haebom/feed.atom"
    lines += ["[[sources]]", 'name = "haebom"', f"url = {toml_value(feed)}", "replay = true", ""]
    sample = (ROOT / "config.toml").read_text(encoding="utf-8")
    lines.append(sample[sample.index("[[themes]]") : sample.index("[[schedules]]")])
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def reader_rows(n: int, stamp: str) -> object:
    for i in range(n):
        themes = json.dumps(list(CHOICES[i % len(CHOICES)]))
        yield (f"reader{i:07d}@example.com", f"독자 {i}", themes, "ko", "active", stamp, stamp)


class Backend:
    """Where the stores live: SQLite files in a folder, or databases on a PostgreSQL server."""

    def __init__(self, name: str, folder: Path, pg: str) -> None:
        self.name, self.folder, self.pg = name, folder, pg
        self.made: list[str] = []

    def store(self, label: str) -> dict[str, str]:
        if self.name == "sqlite":
            return {"path": str(self.folder / f"{label}.sqlite3")}
        import sqlalchemy as sa

        url = sa.engine.make_url(self.pg).set(database=f"{PREFIX}_{label}")
        return {"url": url.render_as_string(hide_password=False)}

    def _admin(self, *statements: str) -> None:
        import sqlalchemy as sa

        url = sa.engine.make_url(self.pg).set(database="postgres")
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for s in statements:
                    conn.exec_driver_sql(s)
        finally:
            engine.dispose()

    def build(self, label: str, n: int) -> tuple[float, datetime]:
        """A store with the sample posts and `n` readers: the seconds it took, and when half
        the posts were published (week 1 is planned then)."""
        started = time.perf_counter()
        if self.name == "sqlite":
            Path(self.store(label)["path"]).unlink(missing_ok=True)
        else:
            db = f"{PREFIX}_{label}"
            self._admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", f"CREATE DATABASE {db}")
            self.made.append(db)
        sys.path.insert(0, str(ROOT))
        from digest.config import load_config
        from digest.ingest import ingest_all
        from digest.store import Store

        config = load_config(write_config(self.folder / f"{label}.toml", self.store(label)))
        store = Store.from_config(config.store)
        try:
            asyncio.run(ingest_all(config, store, datetime.now(UTC)))
            # Summaries and theme matching's analyses stored here, as `digest ingest` does:
            # the runs measure planning, not the NLP stack's model.
            from digest.pipeline import prepare_analyses, summarize_posts

            posts = store.posts_since(datetime.min.replace(tzinfo=UTC), datetime.now(UTC))
            summarize_posts(posts, config, store)
            prepare_analyses(posts, config, store)
            published = sorted(p.published for p in posts)
        finally:
            store.close()
        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        rows = reader_rows(n, stamp)
        columns = "email, name, themes, language, status, created, updated"
        if self.name == "sqlite":
            with sqlite3.connect(self.store(label)["path"]) as conn:
                while chunk := list(itertools.islice(rows, CHUNK)):  # type: ignore[call-overload]
                    conn.executemany(f"INSERT INTO subscribers ({columns}) VALUES (?,?,?,?,?,?,?)",
                                     chunk)  # fmt: skip
                conn.execute("ANALYZE")
                conn.commit()
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            import psycopg

            with psycopg.connect(dbname=f"{PREFIX}_{label}") as conn:
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY subscribers ({columns}) FROM STDIN") as cp,
                ):
                    for row in rows:  # type: ignore[attr-defined]
                        cp.write_row(row)
                conn.execute("ANALYZE")
        return time.perf_counter() - started, published[len(published) // 2]

    def copy(self, template: str, label: str) -> None:
        if self.name == "sqlite":
            src, dst = Path(self.store(template)["path"]), Path(self.store(label)["path"])
            for suffix in ("", "-wal", "-shm"):
                Path(str(dst) + suffix).unlink(missing_ok=True)
            shutil.copyfile(src, dst)
        else:
            db, tmpl = f"{PREFIX}_{label}", f"{PREFIX}_{template}"
            self._admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)",
                        f"CREATE DATABASE {db} TEMPLATE {tmpl}")  # fmt: skip
            self.made.append(db)
        shutil.copyfile(self.folder / f"{template}.toml", self.folder / f"{label}.toml")
        write_config(self.folder / f"{label}.toml", self.store(label))

    def drop_all(self) -> None:
        if self.name == "postgresql" and self.made:
            self._admin(*(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)" for db in self.made))
        self.made.clear()


def peak_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc/self/status")


def child(args: argparse.Namespace) -> None:
    """One plan and record, in a process of its own: its peak RSS is the run's."""
    code = Path(args.child_code).resolve()
    sys.path.insert(0, str(code))
    import digest

    if not Path(digest.__file__).resolve().is_relative_to(code):
        raise SystemExit(f"imported {digest.__file__}, not the code in {code}")
    from digest.config import load_config
    from digest.outbox import MessageFactory, record_edition
    from digest.pipeline import plan_edition
    from digest.store import Store

    config = load_config(Path(args.config))
    store = Store.from_config(config.store)
    factory = MessageFactory(config)
    before = peak_mb()
    started = time.perf_counter()
    edition = plan_edition(config, store, now=datetime.fromisoformat(args.now))
    planned = time.perf_counter()
    plan_mb = peak_mb()
    record_edition(edition, factory, store)
    recorded = time.perf_counter()
    store.close()
    result = {
        "variants": len(edition.variants),
        "recipients": edition.recipients,
        "quiet": len(edition.quiet),
        "start_mb": before,
        "plan_mb": plan_mb,
        "peak_mb": peak_mb(),
        "plan_s": planned - started,
        "record_s": recorded - planned,
    }
    print(json.dumps(result))


def run_child(config: Path, code: str, now: datetime) -> dict[str, float]:
    env = dict(os.environ, **{SECRET_ENV: "bench-secret-bench-secret-bench-secret"})
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--config", str(config), "--child-code", code,
         "--now", now.isoformat()],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg", default="postgresql+psycopg:///", help="a server URL")
    parser.add_argument(
        "--code", action="append", metavar="NAME=DIR",
        help="a code tree to run (repeatable, in order; default: this=the checkout it is in)",
    )  # fmt: skip
    parser.add_argument("--keep", help="a folder to keep the SQLite stores and configs in")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--child-code", default=str(ROOT), help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    trees = [tuple(c.split("=", 1)) for c in args.code or [f"this={ROOT}"]]
    folder = Path(args.keep or tempfile.mkdtemp(prefix="bench-planning-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.backends.split(","):
        backend = Backend(name, folder, args.pg)
        try:
            for n in [BASE, *(int(s) for s in args.sizes.split(","))]:
                template = f"{name}_{n}"
                built, week1 = backend.build(template, n)
                print(f"{name} {n:,}: store built in {built:.0f} s", file=sys.stderr)
                for tree, code in trees:
                    label = f"{template}_{tree}"
                    backend.copy(template, label)
                    for week, at in (("week 1", week1), ("week 2", datetime.now(UTC))):
                        r = run_child(folder / f"{label}.toml", code, at)
                        rows.append((name, n, week, tree, r))
                        print(f"  {tree} {week}: {json.dumps(r)}", file=sys.stderr)
        finally:
            backend.drop_all()
    print()
    base = {(name, week, tree): r["peak_mb"] for name, n, week, tree, r in rows if n == BASE}
    print(f"{'store':<11}{'readers':>10}  {'run':<7}{'code':<7}{'peak MB':>8}"
          f"{'readers MB':>11}{'start MB':>9}{'plan s':>8}{'record s':>9}{'variants':>9}"
          f"{'recipients':>11}")  # fmt: skip
    for name, n, week, tree, r in sorted(rows, key=lambda row: (row[0], row[1], row[2])):
        extra = r["peak_mb"] - base[name, week, tree]
        print(f"{name:<11}{n:>10,}  {week:<7}{tree:<7}{r['peak_mb']:>8.0f}{extra:>11.0f}"
              f"{r['start_mb']:>9.0f}{r['plan_s']:>8.1f}{r['record_s']:>9.1f}{r['variants']:>9}"
              f"{r['recipients']:>11,}")  # fmt: skip
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
