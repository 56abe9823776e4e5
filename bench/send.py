"""Delivery speed and memory, side by side with Postfix's smtp-source, in one run.

    python bench/send.py                      # 10,000 messages, with and without DKIM
    python bench/send.py --memory 100000      # also: peak RSS of a send to 100,000 recipients

Needs Debian's postfix for /usr/sbin/smtp-sink and /usr/sbin/smtp-source (run as ordinary
processes on 127.0.0.1; no mail daemon). Each digest message is a real digest composed from the
sample feed (every sample post in one week), personalized per recipient, about 60 KB.
The machine is shared and noisy: the senders run back to back in `--rounds` rounds (3) and
the medians are compared; read the ratios, not the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from digest.config import parse_config  # noqa: E402
from digest.send.workers import deliver_in_workers  # noqa: E402
from digest.store import Store, StoredSubscriber, subscribers  # noqa: E402

SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    args = [SINK, *(["-u", "nobody"] if os.geteuid() == 0 else []), f"127.0.0.1:{port}", "256"]
    proc = subprocess.Popen(args)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("smtp-sink did not start")


def make_config(
    folder: Path, port: int, concurrency: int, dkim_key: Path | None, processes: int
) -> object:
    data = {
        "site": {
            "name": "해봄의 아카이브",
            "url": "https://haebom.example",
            "sender": "해봄의 아카이브 <digest@haebom.example>",
            "timezone": "Asia/Seoul",
            "language": "ko",
            "postal_address": "서울특별시 중구 세종대로 110",
        },
        "store": {"path": "bench.sqlite3"},
        "smtp": {"host": "127.0.0.1", "port": port, "concurrency": concurrency, "timeout": 30},
        "web": {"base_url": "https://news.example/digest", "secret_env": "BENCH_SECRET"},
        "selection": {"lookback_days": 365, "max_posts": 12},
        "delivery": {"processes": processes},
        "sources": [
            {"name": "haebom", "url": str(ROOT / "samples/haebom/feed.atom"), "replay": True}
        ],
    }
    if dkim_key:
        data["delivery"].update(dkim_selector="bench", dkim_key_file=str(dkim_key))  # type: ignore[attr-defined]
    return parse_config(data, folder / "config.toml")


def add_subscribers(store: Store, n: int) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "email": f"reader{i:06d}@example.com",
            "name": f"독자 {i}",
            "themes": [],
            "language": "ko",
            "status": "active",
            "created": now,
            "updated": now,
        }
        for i in range(n)
    ]
    with store.begin() as conn:
        for i in range(0, n, 10000):
            conn.execute(subscribers.insert(), rows[i : i + 10000])


async def plan(
    folder: Path, port: int, n: int, concurrency: int, dkim: Path | None, processes: int
):  # type: ignore[no-untyped-def]
    # Imported here, not at the top: worker processes are spawned and import this module
    # again, and must not pay for the NLP stack that only planning needs.
    from digest.ingest import ingest_all
    from digest.outbox import MessageFactory, record_edition
    from digest.pipeline import plan_edition

    config = make_config(folder, port, concurrency, dkim, processes)
    store = Store.open(config.store.path)  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    await ingest_all(config, store, now)  # type: ignore[arg-type]
    add_subscribers(store, n)
    edition = plan_edition(config, store, now=now)  # type: ignore[arg-type]
    factory = MessageFactory(config)  # type: ignore[arg-type]
    variant = edition.variants[0]
    sample = factory.envelope(
        variant, StoredSubscriber("x@example.com", "독자", (), "ko", "active")
    )
    started = time.perf_counter()
    record_edition(edition, factory, store)
    recorded = time.perf_counter() - started
    info = {
        "record_seconds": recorded,
        "message_bytes": len(sample.data),
        "html_bytes": len(variant.rendered.html.encode()),
    }
    return config, store, edition.id, info


def digest_send(
    folder: Path, port: int, n: int, concurrency: int, dkim: Path | None, processes: int
) -> dict:
    """Plan and record in this process, then deliver as `digest send` does: from workers."""
    config, store, edition_id, info = asyncio.run(
        plan(folder, port, n, concurrency, dkim, processes)
    )
    started = time.perf_counter()
    report = deliver_in_workers(config, edition_id, "127.0.0.1", port, store=store)
    elapsed = time.perf_counter() - started
    store.close()
    return {
        "sent": report.sent,
        "seconds": elapsed,
        "rate": report.sent / elapsed,
        "worker_rss_mb": report.worker_peak_rss_kb / 1024,
        **info,
    }


def smtp_source(port: int, n: int, size: int, sessions: int) -> dict:
    started = time.perf_counter()
    subprocess.run(
        [SOURCE, "-s", str(sessions), "-l", str(size), "-m", str(n), "-f", "a@example.com",
         "-t", "b@example.com", f"127.0.0.1:{port}"],
        check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    return {"sent": n, "seconds": elapsed, "rate": n / elapsed}


def _median_run(runs: list[dict]) -> dict:
    """The run with the median rate, with the lowest and highest rate beside it."""
    ordered = sorted(runs, key=lambda r: r["rate"])
    return {
        **ordered[len(ordered) // 2],
        "low": ordered[0]["rate"],
        "high": ordered[-1]["rate"],
    }


def memory_child(args: argparse.Namespace) -> None:
    """Runs in a child process so that its peak RSS is its own."""
    folder = Path(args.folder)
    result = digest_send(folder, args.port, args.n, args.concurrency, None, args.processes)
    result["planner_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10000, help="messages per run")
    parser.add_argument("--concurrency", type=int, default=4, help="connections in all")
    parser.add_argument("--processes", type=int, default=2, help="delivery worker processes")
    parser.add_argument("--sessions", type=int, default=2, help="smtp-source sessions")
    parser.add_argument("--memory", type=int, default=0, help="also measure a send to N")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three senders")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("BENCH_SECRET", "bench-secret")
    if args.child:
        memory_child(args)
        return
    if not (shutil.which(SINK) and shutil.which(SOURCE)):
        raise SystemExit("needs postfix's smtp-sink and smtp-source (apt-get install postfix)")
    sink, port = start_sink()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_file = folder / "dkim.pem"
            key_file.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                )
            )
            # Rounds of (digest, digest+dkim, smtp-source), back to back, so that every sender
            # sees the same spells of load from the machine's other tenants; medians reported.
            rounds: dict[str, list[dict]] = {"smtp-source": [], "digest": [], "digest+dkim": []}
            for k in range(args.rounds):
                for name, dkim in (("digest", None), ("digest+dkim", key_file)):
                    sub = folder / f"{name}-{k}"
                    sub.mkdir()
                    rounds[name].append(
                        digest_send(sub, port, args.n, args.concurrency, dkim, args.processes)
                    )
                size = rounds["digest"][0]["message_bytes"]
                rounds["smtp-source"].append(smtp_source(port, args.n, size, args.sessions))
            runs = {name: _median_run(rs) for name, rs in rounds.items()}
            if args.memory:
                sub = folder / "memory"
                sub.mkdir()
                out = subprocess.run(
                    [sys.executable, __file__, "--child", "--folder", str(sub), "--port",
                     str(port), "-n", str(args.memory), "--concurrency", str(args.concurrency),
                     "--processes", str(args.processes)],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                runs["memory"] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        sink.terminate()
        sink.wait()
    ref = runs["smtp-source"]["rate"]
    print(f"messages per run: {args.n}; {args.processes} worker process(es), "
          f"{args.concurrency} connections in all; message size {size} bytes "
          f"(HTML part {runs['digest']['html_bytes']} bytes before encoding)")  # fmt: skip
    print(f"medians of {args.rounds} rounds, each round the three senders back to back")
    print(f"{'sender':14} {'msg/s':>8} {'range':>12} {'vs smtp-source':>15} {'worker MB':>10}")
    for name in ("smtp-source", "digest", "digest+dkim"):
        r = runs[name]
        mb = f"{r['worker_rss_mb']:.0f}" if "worker_rss_mb" in r else "-"
        spread = f"{r['low']:.0f}-{r['high']:.0f}"
        print(f"{name:14} {r['rate']:8.0f} {spread:>12} {r['rate'] / ref:14.0%} {mb:>10}")
    if "memory" in runs:
        m = runs["memory"]
        print(f"memory, {m['sent']} recipients: sending workers' peak RSS "
              f"{m['worker_rss_mb']:.0f} MB; planning process (holds the Korean analyzer) "
              f"{m['planner_rss_mb']:.0f} MB; {m['rate']:.0f} msg/s")  # fmt: skip


if __name__ == "__main__":
    main()
