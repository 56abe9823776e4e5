"""Personalization without recompiling: building N personalized messages from one compiled
digest (MessageTemplate.build) against compiling the MJML for each of them (Renderer.render),
measured side by side in one run. The goal (issue 6): building costs < 1/20 of compiling.

    python bench/personalize.py [--count 10000] [--compiles N] [--digest sample|largest]

"build" times, for `count` recipients with distinct addresses, names and signed links: one
render and one MessageTemplate (the per-variant work, counted in) and then one `build` per
recipient, producing the complete message bytes. "compile" times `Renderer.render` of the
same digest once per recipient; it does not even build the messages, so the ratio is on the
cautious side. `--compiles N` times only N compiles and scales them to `count` (reported as
an estimate); by default all `count` are timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.compose.render import Renderer
from digest.models import Recipient
from tests.golden.sample import largest_week_digest, message_template, sample_digest

GOAL = 1 / 20


def recipients(count: int) -> list[Recipient]:
    return [
        Recipient(
            email=f"reader{i:05d}@example.com",
            name=f"독자{i}" if i % 3 else "",
            unsubscribe_url=f"https://haebom.example/digest/u/cmVhZGVy{i:05d}.aB3dE5gH7jK9mN1p",
            preferences_url=f"https://haebom.example/digest/p/cmVhZGVy{i:05d}.qR2sT4uV6wX8yZ0a",
        )
        for i in range(count)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--compiles", type=int, default=0, help="time only N compiles (0 = all)")
    parser.add_argument("--digest", choices=("sample", "largest"), default="sample")
    args = parser.parse_args(argv)
    digest = sample_digest() if args.digest == "sample" else largest_week_digest()
    people = recipients(args.count)
    renderer = Renderer()
    renderer.render(digest)  # warm up: templates loaded and compiled by Jinja

    start = time.perf_counter()
    template = message_template(renderer.render(digest), digest)
    size = 0
    for person in people:
        size += len(template.build(person).data)
    build = time.perf_counter() - start

    compiles = args.compiles or args.count
    start = time.perf_counter()
    for _ in range(compiles):
        renderer.render(digest)
    compile_ = (time.perf_counter() - start) * args.count / compiles
    estimated = f" (estimated from {compiles} compiles)" if compiles != args.count else ""

    ratio = build / compile_
    print(f"digest: {args.digest}, {len(digest.items)} posts; {args.count} recipients")
    print(
        f"build   {args.count} personalized messages: {build:8.3f} s "
        f"({build / args.count * 1e6:7.1f} us each, {size / args.count / 1024:.1f} KiB avg)"
    )
    print(
        f"compile MJML for each of them:         {compile_:8.3f} s "
        f"({compile_ / args.count * 1e3:7.2f} ms each){estimated}"
    )
    print(
        f"ratio build/compile: 1/{1 / ratio:.0f} ({ratio:.4f}); goal < 1/20: "
        f"{'met' if ratio < GOAL else 'NOT met'}"
    )
    return 0 if ratio < GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
