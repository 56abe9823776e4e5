"""Regenerate the email's golden files and screenshots from the fixed sample digest.

    python scripts/regen_golden.py            # tests/golden/sample.{html,txt} and
                                              # docs/screenshots/*.png (if Chromium is here)
    python scripts/regen_golden.py --no-screenshots

The clock and locale are pinned: the sample digest carries a fixed date (tests/golden/
sample.py), and this script runs with TZ=UTC and LC_ALL=C.UTF-8 so nothing can leak in
from the machine. Review the diff (`git diff tests/golden`) before committing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["TZ"] = "UTC"
os.environ["LC_ALL"] = "C.UTF-8"
time.tzset()

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.compose.render import Renderer, personalize  # noqa: E402
from tests.golden import browser  # noqa: E402
from tests.golden.sample import (  # noqa: E402
    GOLDEN_DIR,
    RECIPIENT,
    SCREENSHOT_DIR,
    golden_outputs,
    sample_digest,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args(argv)
    for name, content in golden_outputs().items():
        path = GOLDEN_DIR / name
        changed = not path.is_file() or path.read_text(encoding="utf-8") != content
        path.write_text(content, encoding="utf-8", newline="")
        print(f"{'updated' if changed else 'unchanged'}: {path.relative_to(ROOT)}")
    if args.no_screenshots:
        return 0
    why = browser.missing()
    if why:
        print(f"screenshots skipped: {why}", file=sys.stderr)
        return 0
    page, _ = personalize(Renderer().render(sample_digest()), RECIPIENT)
    with browser.browser() as instance:
        for name, (width, dark) in browser.SCREENSHOTS.items():
            browser.screenshot(instance, page, width, SCREENSHOT_DIR / name, dark=dark)
            print(f"written: {(SCREENSHOT_DIR / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
