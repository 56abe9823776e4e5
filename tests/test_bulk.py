"""Bulk import: the fast address check agrees with email-validator, and a list import writes
in batches with the same results as row by row (added, updated, suppressed, spellings kept)."""

from __future__ import annotations

import random
import string
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from email_validator import EmailNotValidError, validate_email

from digest.cli import main
from digest.store import Store, bulk, subscribers
from digest.subscribers import _plain_address, normalize_address
from tests.conftest import write_config

BOTH = pytest.mark.parametrize("store_backend", ["sqlite", "postgresql"], indirect=True)

EDGES = [
    "a@b.co",
    "A.B@Example.COM",
    "a..b@x.com",
    ".a@x.com",
    "a.@x.com",
    "a@x",
    "a@x.test",
    "a@mail.x.local",
    "a@localhost",
    "a@example.arpa",
    "a@-x.com",
    "a@x-.com",
    "a@x--y.com",
    "a@xn--bcher-kva.example",
    "a@1.2.3.4",
    "a@x.c1",
    "a@x.c",
    "x" * 64 + "@a.com",
    "x" * 65 + "@a.com",
    "a@" + ("b" * 63 + ".") * 3 + "com",
    "a@" + ("b" * 63 + ".") * 4 + "com",
    "a@" + "b" * 64 + ".com",
    "user+tag@mail.co.kr",
    "a_b%c@x.io",
    "kim@bücher.example",
    "jörg@example.com",
    "a b@x.com",
    '"quoted"@x.com',
]


def _full(address: str) -> str | None:
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return None
    return f"{result.local_part}@{result.ascii_domain}"


def test_the_fast_address_check_agrees_with_email_validator() -> None:
    rng = random.Random(7)
    atext = string.ascii_letters + string.digits + "._%+-!#$&'*/=?^`{|}~@"
    label = string.ascii_letters + string.digits + "-"
    cases = list(EDGES)
    for _ in range(50_000):
        local = "".join(rng.choice(atext) for _ in range(rng.randint(1, 12)))
        domain = ".".join(
            "".join(rng.choice(label) for _ in range(rng.randint(1, 6)))
            for _ in range(rng.randint(1, 3))
        )
        cases.append(f"{local}@{domain}")
    fast = 0
    for address in cases:
        plain = _plain_address(address)
        if plain is None:
            continue
        fast += 1
        assert plain == _full(address), address
    assert fast > 2_000  # the common shapes do take the fast path
    # Anything the fast path passes over still gets email-validator's answer.
    assert normalize_address("kim@bücher.example") == "kim@xn--bcher-kva.example"
    assert normalize_address("Kim@Example.COM") == "Kim@example.com"


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def _rows(store: Store) -> dict[str, tuple[str, list[str], str, datetime]]:
    with store.engine.begin() as conn:
        found = conn.execute(
            sa.select(
                subscribers.c.email,
                subscribers.c.name,
                subscribers.c.themes,
                subscribers.c.status,
                subscribers.c.updated,
            )
        )
        return {r.email: (r.name, r.themes, r.status, r.updated) for r in found}


@BOTH
def test_import_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_backend: str
) -> None:
    """Batches smaller than the list: every row arrives; a second import of the same list
    writes nothing; a changed row updates every stored spelling; suppressed rows stay out."""
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    monkeypatch.setattr(bulk, "BATCH", 7)
    config = write_config(tmp_path)
    listed = tmp_path / "big.csv"
    lines = ["email,name,themes"] + [f"r{i}@example.com,독자 {i},ai" for i in range(50)]
    listed.write_text("\n".join(lines) + "\n", "utf-8")
    first = run(config, "subscribers", "import", str(listed))
    assert first.exit_code == 0, first.output
    assert "50 added, 0 updated, 0 suppressed" in first.output, first.output
    store = Store.from_config(_config(config).store)
    try:
        before = _rows(store)
        assert {e for e in before if e.startswith("r")} == {f"r{i}@example.com" for i in range(50)}
        assert before["r7@example.com"][:3] == ("독자 7", ["ai"], "active")
        again = run(config, "subscribers", "import", str(listed))
        assert "0 added, 50 updated" in again.output, again.output
        assert _rows(store) == before  # nothing written: the same `updated` everywhere
        store.suppress("r3@example.com", "unsubscribed")
        lines[1 + 5] = "R5@Example.com,새 이름,economy"
        listed.write_text("\n".join(lines) + "\n", "utf-8")
        changed = run(config, "subscribers", "import", str(listed))
        assert "0 added, 49 updated, 1 suppressed" in changed.output, changed.output
        after = _rows(store)
        assert after["r5@example.com"][:3] == ("새 이름", ["economy"], "active")
        assert "R5@example.com" not in after  # the stored spelling is kept
        assert after["r3@example.com"][2] == "unsubscribed"
        assert after["r6@example.com"] == before["r6@example.com"]
    finally:
        store.close()


def _config(path: Path):  # type: ignore[no-untyped-def]
    from digest.config import load_config

    return load_config(path)
