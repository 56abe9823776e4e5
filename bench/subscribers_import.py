"""`digest subscribers import` of a big list: CPU seconds and peak memory, this tree beside a
reference commit, on SQLite (and PostgreSQL with --pg).

    python bench/subscribers_import.py                        # 100k rows, both trees, SQLite
    python bench/subscribers_import.py -n 1000000 --no-reference --pg postgresql+psycopg:///x
    python bench/subscribers_import.py --reference ded4e0d --rounds 3

The list is generated (seeded): N distinct addresses over 997 domains, Korean names, themes
from the sample config, a language column. Each run is the real CLI in a fresh process on a
fresh store (`python -m digest --config C subscribers import LIST`), then the same import a
second time (every row already stored: the re-import). Reported per run: CPU seconds of the
import process (user + sys, from wait4: what the issue's goal counts, "1M under 60 s"), wall
seconds and peak RSS. The reference is the same command run from a `git worktree` of
`--reference` (default: the commit before bulk import), imported by PYTHONPATH; its rows are
printed beside this tree's, and the ratio of CPU seconds (reference / this) is the figure to
read on this shared machine.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = "df93a9b"  # main before the batched import and the fast address check
Run = tuple[float, float, float, str]


def make_list(path: Path, n: int) -> None:
    rng = random.Random(1)
    themes = ["ai", "economy", "humanities", "", "ai,economy"]
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,themes,language,status\n")
        for i in range(n):
            chosen = rng.choice(themes)
            lang = rng.choice(["", "ko", "en"])
            out.write(f'reader{i}@mail{i % 997}.example.com,독자 {i},"{chosen}",{lang},active\n')


def make_config(folder: Path, pg_url: str | None) -> Path:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    store = f'url = "{pg_url}"' if pg_url else f'path = "{folder / "digest.sqlite3"}"'
    text = text.replace('path = "var/digest.sqlite3"', store)
    text = text.replace('files = ["subscribers/sample.csv"]', "files = []")
    feed = "samples/haebom/feed.atom"
    text = text.replace(f'url = "{feed}"', f'url = "{ROOT / feed}"')
    config = folder / "config.toml"
    config.write_text(text, encoding="utf-8")
    return config


def reset_pg(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> Run:
    """(cpu seconds, wall seconds, peak RSS MB, last output line) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode("utf-8", "replace")
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{output}")
    lines = output.strip().splitlines()
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def run_once(tree: Path, listing: Path, pg_url: str | None) -> list[Run]:
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        folder = Path(tmp)
        config = make_config(folder, pg_url)
        if pg_url:
            reset_pg(pg_url)
        env = {**os.environ, "PYTHONPATH": str(tree), "DIGEST_SECRET": "bench-secret-" + "x" * 32}
        cmd = [sys.executable, "-m", "digest", "--config", str(config)]
        cmd += ["subscribers", "import", str(listing)]
        # From the tree itself: `python -m` puts the working directory first on sys.path.
        return [timed(cmd, env, tree), timed(cmd, env, tree)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="rows in the list")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--reference", default=DEFAULT_REFERENCE)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--pg", metavar="URL", help="also on this PostgreSQL database (emptied)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    trees = {"this": ROOT}
    try:
        if not args.no_reference:
            ref = work / "reference"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(ref), args.reference],
                check=True,
                capture_output=True,
            )
            trees["reference"] = ref
        listing = work / "list.csv"
        make_list(listing, args.n)
        stores = [("sqlite", None)] + ([("postgresql", args.pg)] if args.pg else [])
        results: dict[tuple[str, str, int], list[Run]] = {}
        for _ in range(args.rounds):
            for store, url in stores:
                for name, tree in trees.items():  # side by side within a round
                    for k, run in enumerate(run_once(tree, listing, url)):
                        results.setdefault((store, name, k), []).append(run)
                        print(f"{store:10s} {name:9s} {('import', 're-import')[k]:9s} "
                              f"cpu {run[0]:7.1f} s  wall {run[1]:7.1f} s  "
                              f"peak {run[2]:6.0f} MB  | {run[3]}", flush=True)  # fmt: skip
        print(f"\n{args.n:,} rows, median of {args.rounds} round(s):")
        for store, _url in stores:
            for k, what in enumerate(("import", "re-import")):
                cpu = {n: statistics.median(r[0] for r in results[(store, n, k)]) for n in trees}
                line = f"{store:10s} {what:9s} this {cpu['this']:6.1f} s CPU"
                if "reference" in cpu:
                    line += f", reference {cpu['reference']:6.1f} s: "
                    line += f"{cpu['reference'] / cpu['this']:.1f}x less CPU"
                print(line)
    finally:
        if "reference" in trees:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(trees["reference"])],
                check=False,
            )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
