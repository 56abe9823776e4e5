"""SpamAssassin, local rules only (`spamassassin -L -t`), scores the sample digest message.

Skipped, with the reason, where the `spamassassin` binary is missing; `.ci/run` installs the
Debian package. The message is the sample digest exactly as MessageTemplate builds it for one
recipient (tests/golden/sample.py: sample_message).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.golden.sample import sample_message

SPAMASSASSIN = shutil.which("spamassassin")
MAX_SCORE = 1.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        SPAMASSASSIN is None, reason="spamassassin not installed (apt-get install -y spamassassin)"
    ),
]

RULE_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s", re.MULTILINE)


def score(message: bytes) -> tuple[float, dict[str, float]]:
    assert SPAMASSASSIN is not None
    result = subprocess.run(
        [SPAMASSASSIN, "-L", "-t"], input=message, capture_output=True, timeout=180, check=True
    )
    report = result.stdout.decode("utf-8", "replace")
    total = re.search(r"Content analysis details:\s+\((-?\d+(?:\.\d+)?) points", report)
    assert total, report[-2000:]
    details = report[total.end() :]
    return float(total.group(1)), {m.group(2): float(m.group(1)) for m in RULE_RE.finditer(details)}


def test_sample_digest_scores_at_most_one() -> None:
    total, rules = score(sample_message())
    assert total <= MAX_SCORE, rules
    # no credit from network trust or whitelists hides a content problem
    positive = sum(points for points in rules.values() if points > 0)
    assert positive <= MAX_SCORE, rules
    assert "HTML_FONT_LOW_CONTRAST" not in rules  # the preheader is visible text
    assert "HTML_IMAGE_ONLY_24" not in rules and "MIME_HTML_ONLY" not in rules
