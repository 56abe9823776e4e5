"""The README's editor's week (scripts/editor_week.py) really happens: on the sample content,
through the real CLI, the scheduler's run, the embedded catcher's Maildir and `digest serve`'s
click route. On SQLite and, with DIGEST_TEST_PG, on PostgreSQL."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import store_url

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "editor_week.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("editor_week", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


week_script = _load()
EDITOR: str = week_script.EDITOR
READERS = sorted(
    row["email"]
    for row in csv.DictReader(
        (ROOT / "subscribers" / "sample.csv").read_text(encoding="utf-8").splitlines()
    )
    if row["status"] == "active"
)


def _to(message: EmailMessage) -> str:
    return str(message["To"].addresses[0].addr_spec)


def _parts(message: EmailMessage) -> tuple[str, str]:
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert html is not None and text is not None
    return str(html.get_content()), str(text.get_content())


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # The sample config's secret_env; unset, the link secret is made beside the store.
    monkeypatch.delenv("DIGEST_SECRET", raising=False)


@pytest.mark.parametrize("store_backend", ["sqlite", "postgresql"], indirect=True)
def test_the_editors_week(tmp_path: Path, store_backend: str) -> None:
    week = week_script.Week(tmp_path / "week", store_url=store_url(), echo=False)
    assert "haebom: 35 new" in week.ingest()

    # Monday 08:00: the weekly run composes a draft; only the editor gets mail.
    edition = week.draft()
    (notice,) = week.messages()
    assert _to(notice) == EDITOR
    assert notice["Subject"] == "[검토 요청] 해봄의 아카이브 #1 초안이 발송을 기다립니다"
    assert f"approve --edition {edition}" in notice.get_content()
    drafts = week.cli("drafts")
    assert f"issue #1  edition {edition}  {len(READERS)} recipient(s)" in drafts
    assert f"held      {len(READERS)}" in week.status()

    # Approved with a note: every active sample subscriber's copy arrives, with the note.
    out = week.approve()
    assert f"edition {edition} approved with its note" in out
    assert f"{len(READERS)} message(s) sent" in out
    copies = [m for m in week.messages() if _to(m) != EDITOR]
    assert sorted(_to(m) for m in copies) == READERS
    for copy in copies:
        html, text = _parts(copy)
        assert "<strong>인공지능 특집</strong>" in html
        assert "이번 주는 **인공지능 특집**입니다." in text

    # Readers follow counted links through `digest serve`; the status shows them.
    targets = week.follow_links()
    assert len(targets) == week_script.CLICKS
    assert all(t.startswith("https://haebom.example/posts/") for t in targets)
    status = week.status()
    assert f"sent      {len(READERS)}" in status
    assert "clicks (3 in all; per post, never per reader)" in status
    counts = [int(n) for n in re.findall(r"^ +(\d+) \S", status, re.M)]
    assert counts[:3] == [2, 1, 0] and sum(counts) == 3
    assert "clicks of the latest issues: #1 3" in status

    # Looking back: the issue as a reader got it, and a test copy of it.
    issue = tmp_path / "issue.html"
    assert "wrote" in week.look_back(issue)
    page = issue.read_text(encoding="utf-8")
    assert "김민지" in page and "<strong>인공지능 특집</strong>" in page
    assert "1 message(s) sent" in week.send_copy()
    test_copy = [m for m in week.messages() if _to(m) == EDITOR][-1]
    assert "[TEST]" in str(test_copy["Subject"])
    assert "<strong>인공지능 특집</strong>" in _parts(test_copy)[0]


def test_an_issue_approved_with_a_note_keeps_its_counted_links(tmp_path: Path) -> None:
    week = week_script.Week(tmp_path / "week", echo=False)
    week.ingest()
    week.draft()
    week.approve()
    base = week.config.web.base_url
    for copy in [m for m in week.messages() if _to(m) != EDITOR]:
        assert week_script.counted_links(base, [_parts(copy)[0]]), _to(copy)


@pytest.mark.slow
def test_the_script_runs_the_week_from_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DIGEST_SECRET", None)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--no-screenshots", "--folder", str(tmp_path / "w")],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for command in ("ingest", "drafts", "approve --note", "status", "preview --edition latest",
                    "send --to editor@haebom.example --edition latest"):  # fmt: skip
        assert f"$ digest {command}" in out
    assert ": drafted, edition " in out and "clicks of the latest issues: #1 3" in out
    assert (tmp_path / "w" / "issue.html").is_file()
    assert not (tmp_path / "w" / "docs").exists()  # no screenshots asked for, none taken
