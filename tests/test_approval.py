"""Approval: a schedule with `approval = "draft"` composes and records its edition held, tells
the editor, and sends it when approved (`digest approve`, the preview's button) or at its
deadline. Real SMTP (aiosmtpd), the CLI through CliRunner, the scheduler under a controlled
clock (time-machine), the preview in Chromium."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from click.testing import CliRunner

from digest.cli import main
from digest.compose.strings import EMAIL
from digest.config import load_config
from digest.errors import ConfigError
from digest.scheduling.events import StopSignal
from digest.scheduling.runner import RunContext, owner_token, release_owner, run_period
from digest.scheduling.service import SchedulerService
from digest.store import Store
from tests.conftest import SMTPServer, write_config
from tests.test_schedule import Harness

SEOUL = ZoneInfo("Asia/Seoul")
MONDAY_0700 = datetime(2025, 3, 3, 7, 0, tzinfo=SEOUL)
EDITOR = "editor@haebom.example"
READERS = sorted(
    ["minji.kim@example.com", "jun.park@example.com", "seoyeon.lee@example.com",
     "alex.morgan@example.org"]
)  # fmt: skip


def draft_schedule(deadline: str = "", notify: str = "") -> str:
    return f"""
[[schedules]]
name = "weekly"
cron = "weekly on monday at 08:00"
approval = "draft"
approve_deadline = "{deadline}"
notify = "{notify}"

[editor]
email = "{EDITOR}"
"""


class Setup(Harness):
    """A config sending to the test server, its stores and schedulers (test_schedule's
    harness); all closed after."""

    def cli(self, *args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, ["--config", str(self.path), *args])
        assert result.exit_code == code, result.output
        return result.output

    def messages(self, to: str | None = None) -> list[EmailMessage]:
        return [m.message for m in self.server.handler.messages if to is None or to in m.rcpt_tos]

    def readers(self) -> list[str]:
        return sorted(r for m in self.server.handler.messages for r in m.rcpt_tos if r != EDITOR)


@pytest.fixture
def setup(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[type[Setup]]:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    made: list[Setup] = []

    class Made(Setup):
        def __init__(self, schedules: str = draft_schedule()) -> None:
            super().__init__(tmp_path, smtp_server, schedules)
            made.append(self)

    yield Made  # type: ignore[misc]
    for s in made:
        s.close()


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(MONDAY_0700, tick=False) as traveller:
        yield traveller


def parts(msg: EmailMessage) -> tuple[str, str]:
    html_part, text_part = msg.get_body(("html",)), msg.get_body(("plain",))
    assert html_part is not None and text_part is not None
    return str(html_part.get_content()), str(text_part.get_content())


def drafted(s: Setup, clock: time_machine.Coordinates) -> SchedulerService:
    """The weekly run at Monday 08:00, with the scheduler left running."""
    service = s.service()
    service.start()
    clock.move_to(datetime(2025, 3, 3, 8, 0, 1, tzinfo=SEOUL))
    service.scheduler.tick()
    return service


# -- composing a draft ------------------------------------------------------------------------


def test_a_draft_schedule_sends_nothing_and_tells_the_editor(
    setup: type[Setup], clock: time_machine.Coordinates
) -> None:
    s = setup()
    service = drafted(s, clock)
    # Only the editor got mail: the notice, Korean subject encoded, with the posts
    # and how to approve it.
    assert s.readers() == []
    (notice,) = s.messages(EDITOR)
    assert "=?utf-8?" in s.server.handler.messages[0].data.decode("ascii").lower()
    assert notice["Subject"] == "[검토 요청] 해봄의 아카이브 #1 초안이 발송을 기다립니다"
    body = notice.get_content()
    store = service.store
    (draft,) = store.drafts()
    titles = [item for d in store.edition_digests(draft.edition) for item in [d.subject]]
    assert titles and "제1호" in body and "받는 사람: 4명" in body
    assert f"approve --edition {draft.edition}" in body and "digest preview" in body
    posts = re.findall(r"^- (.+)$", body, re.M)
    assert len(posts) >= 3
    # Recorded whole, held: every reader's row is there, none pending.
    assert store.delivery_counts(draft.edition) == {"held": 4}
    run = store.get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.status == "drafted" and run.editions == (draft.edition,)
    assert draft.notified is not None
    listed = s.cli("drafts")
    assert f"issue #1  edition {draft.edition}  4 recipient(s)" in listed
    assert s.cli("approve", "--list") == listed
    assert "held      4" in s.cli("status")


def test_a_held_draft_is_claimed_by_no_sender(
    setup: type[Setup], clock: time_machine.Coordinates
) -> None:
    s = setup()
    service = drafted(s, clock)
    (draft,) = service.store.drafts()
    # A resume, a worker's pass, and the scheduler's own recovery and retries: nothing.
    assert "nothing to resume" in s.cli("send", "--resume")
    service.recover()
    service.retry("weekly")
    assert service.store.unfinished_editions() == []
    # A plain send plans nothing new: the draft's posts are taken (held) for every reader.
    assert "nothing new to send" in s.cli("send")
    assert s.readers() == []
    assert service.store.delivery_counts(draft.edition) == {"held": 4}


# -- approving --------------------------------------------------------------------------------


NOTE = (
    "**이번 호**는 특집입니다. <script>alert(1)</script>\n\n[사이트](https://haebom.example/) 참고"
    "\n\n주소: %%DIGEST_EMAIL%%"
)


def test_approve_with_a_note_sends_every_copy_with_the_note(
    setup: type[Setup], clock: time_machine.Coordinates
) -> None:
    s = setup()
    service = drafted(s, clock)
    (draft,) = service.store.drafts()
    before = {d.id: d.html for d in service.store.edition_digests(draft.edition)}
    out = s.cli("approve", "--note", NOTE)
    assert f"edition {draft.edition} approved with its note" in out and "4 message(s) sent" in out
    assert s.readers() == READERS
    for msg in [m for m in s.messages() if m["To"] != EDITOR]:
        markup, text = parts(msg)
        assert "<strong>이번 호</strong>는 특집입니다." in markup
        assert '<a href="https://haebom.example/" rel="noopener noreferrer">사이트</a>' in markup
        assert "<script>" not in markup and "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
        assert "**이번 호**는 특집입니다. <script>alert(1)</script>" in text
        assert "[사이트](https://haebom.example/) 참고" in text
        # A placeholder typed into the note stays text: no reader's address is filled in.
        assert "주소: %%&#68;IGEST_EMAIL%%" in markup and "주소: %%\u2060DIGEST_EMAIL%%" in text
        # On top: before the first post card (in the reader's language).
        read_more = EMAIL["en" if 'lang="en"' in markup[:200] else "ko"]["read_more"]
        assert markup.index("특집입니다") < markup.index(read_more)
    # Recorded: the stored bodies carry it, so a copy of the past issue shows the same note.
    after = {d.id: d.html for d in service.store.edition_digests(draft.edition)}
    assert after.keys() == before.keys() and all("특집입니다" in h for h in after.values())
    s.cli("send", "--to", "copy@example.net", "--edition", "1")
    (copy,) = s.messages("copy@example.net")
    assert "<strong>이번 호</strong>는 특집입니다." in parts(copy)[0]
    # Once: a second approval, or the deadline, finds it released.
    assert "already released (by editor)" in s.cli("approve", "--edition", draft.edition, code=1)
    service.retry("weekly")
    run = service.store.get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.status == "sent"
    assert [r for r in s.readers() if r != "copy@example.net"] == READERS


def test_approving_without_a_note_sends_the_body_as_composed(
    setup: type[Setup], clock: time_machine.Coordinates, tmp_path: Path
) -> None:
    s = setup()
    service = drafted(s, clock)
    (draft,) = service.store.drafts()
    before = {d.id: (d.html, d.text) for d in service.store.edition_digests(draft.edition)}
    # An empty note file: no note block at all.
    (tmp_path / "note.md").write_text("\n", encoding="utf-8")
    s.cli("approve", "--edition", "1", "--note-file", str(tmp_path / "note.md"), "--no-send")
    after = {d.id: (d.html, d.text) for d in service.store.edition_digests(draft.edition)}
    assert after == before
    assert service.store.delivery_counts(draft.edition) == {"pending": 4}
    assert "1 message" not in s.cli("send", "--resume") and s.readers() == READERS


def test_a_note_renders_the_same_digest_plus_the_note(
    setup: type[Setup], clock: time_machine.Coordinates
) -> None:
    """The snapshot is what was composed: rendered again without a note, it is the recorded
    body byte for byte, so approving with a note changes nothing but the note."""
    from digest.approval import rendered_bodies

    s = setup()
    service = drafted(s, clock)
    (draft,) = service.store.drafts()
    recorded = {d.id: (d.html, d.text) for d in service.store.edition_digests(draft.edition)}
    config = load_config(s.path)
    assert rendered_bodies(config, service.store, draft, "") == recorded


def test_reject_discards_the_draft_and_its_posts_go_out_next_time(
    setup: type[Setup], clock: time_machine.Coordinates
) -> None:
    s = setup()
    service = drafted(s, clock)
    (draft,) = service.store.drafts()
    assert f"edition {draft.edition} discarded" in s.cli("reject")
    assert service.store.drafts() == [] and service.store.edition_digests(draft.edition) == []
    assert "no draft waits" in s.cli("approve", code=1)
    s.cli("send")
    assert s.readers() == READERS
    assert "#1" in s.messages(READERS[0])[0]["Subject"]


# -- the deadline -----------------------------------------------------------------------------


def test_after_the_deadline_the_next_tick_sends_the_draft(
    setup: type[Setup], clock: time_machine.Coordinates, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digest")
    s = setup(draft_schedule(deadline="6h"))
    service = drafted(s, clock)
    (draft,) = service.store.drafts()
    assert draft.deadline == datetime(2025, 3, 3, 14, 0, 1, tzinfo=SEOUL)
    clock.move_to(datetime(2025, 3, 3, 13, 59, tzinfo=SEOUL))
    service.scheduler.tick()
    assert s.readers() == []
    clock.move_to(datetime(2025, 3, 3, 14, 1, tzinfo=SEOUL))
    service.scheduler.tick()
    assert s.readers() == READERS
    released = service.store.draft(draft.edition)
    assert released is not None and released.status == "released"
    assert released.decided_by == "deadline"
    (line,) = [r.getMessage() for r in caplog.records if "event=draft_deadline" in r.getMessage()]
    assert "sent without approval" in line and f"edition={draft.edition}" in line
    run = service.store.get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.status == "sent"
    # Later ticks send nothing more; the editor can no longer approve it.
    clock.move_to(datetime(2025, 3, 3, 15, 0, tzinfo=SEOUL))
    service.scheduler.tick()
    assert len(s.readers()) == 4
    assert "already released (by deadline)" in s.cli("approve", "--edition", draft.edition, code=1)


def test_an_editor_not_told_is_told_by_the_next_check_and_can_still_approve(
    setup: type[Setup], clock: time_machine.Coordinates
) -> None:
    """The window between recording a draft and telling the editor (a crash, a refused
    notice): the draft stays held and approvable, and the next check tells the editor."""
    s = setup()
    s.server.handler.reject.add(EDITOR)
    service = drafted(s, clock)
    (draft,) = service.store.drafts()
    assert draft.notified is None and s.server.handler.messages == []
    s.server.handler.reject.clear()
    clock.move_to(datetime(2025, 3, 3, 8, 2, tzinfo=SEOUL))
    service.scheduler.tick()
    (notice,) = s.messages(EDITOR)
    assert draft.edition in notice.get_content()
    told = service.store.draft(draft.edition)
    assert told is not None and told.notified is not None
    clock.move_to(datetime(2025, 3, 3, 8, 4, tzinfo=SEOUL))
    service.scheduler.tick()
    assert len(s.messages(EDITOR)) == 1  # told once
    s.cli("approve")
    assert s.readers() == READERS


CRASH_AFTER_COMPOSING = """
import os, sys
from datetime import datetime
from zoneinfo import ZoneInfo
import time_machine
from digest.config import load_config
from digest.scheduling import runner
from digest.scheduling.service import SchedulerService
from digest.store import Store


async def killed(*args, **kwargs):
    os._exit(9)  # killed between recording the draft and telling the editor


runner.notify_editors = killed
config = load_config(sys.argv[1])
seoul = ZoneInfo("Asia/Seoul")
with time_machine.travel(datetime(2025, 3, 3, 7, 0, tzinfo=seoul), tick=False) as clock:
    service = SchedulerService(config, Store.from_config(config.store), manual=True)
    service.start()
    clock.move_to(datetime(2025, 3, 3, 8, 0, 5, tzinfo=seoul))
    service.scheduler.tick()
print("not killed")
"""


def test_a_crash_between_composing_and_telling_leaves_an_approvable_draft(
    setup: type[Setup], clock: time_machine.Coordinates
) -> None:
    import os
    import subprocess
    import sys

    s = setup()
    env = {**os.environ, "DIGEST_TEST_SECRET": "test-secret"}
    child = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_COMPOSING, str(s.path)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 9, child.stdout + child.stderr
    store = s.store()
    (draft,) = store.drafts()
    assert draft.notified is None and store.delivery_counts(draft.edition) == {"held": 4}
    assert s.server.handler.messages == []
    # The next scheduler: the run stays a draft, the editor is told, nobody else gets mail.
    clock.move_to(datetime(2025, 3, 3, 8, 30, tzinfo=SEOUL))
    s.service().start()
    run = store.get_run("weekly", "2025-03-03T08:00")
    assert run is not None and run.status == "drafted"
    (notice,) = s.messages(EDITOR)
    assert draft.edition in notice.get_content() and s.readers() == []
    s.cli("approve", "--note", "늦어서 죄송합니다")
    assert s.readers() == READERS
    assert all("늦어서 죄송합니다" in parts(m)[1] for m in s.messages() if m["To"] != EDITOR)


# -- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (draft_schedule().replace('"draft"', '"maybe"'), "'schedules[0].approval' must be"),
        (draft_schedule(deadline="6 hours"), "'schedules[0].approve_deadline' must be like"),
        (draft_schedule(notify="two@x.example, three@x.example"), "'schedules[0].notify' must"),
        (draft_schedule().replace(f'email = "{EDITOR}"', 'email = ""'), "set '[editor] email'"),
    ],
)
def test_approval_config_errors_name_the_key_and_the_file(
    tmp_path: Path, schedule: str, message: str
) -> None:
    path = write_config(tmp_path, extra=schedule)
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_config(path)
    assert str(path) in str(raised.value)


def test_deadline_and_notify_are_parsed(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, extra=draft_schedule("90m", "chief@x.example")))
    (sched,) = config.schedules
    assert sched.deadline() == timedelta(minutes=90) and sched.notify == "chief@x.example"
    plain = draft_schedule().split("approval")[0]
    assert load_config(write_config(tmp_path, extra=plain)).schedules[0].approval == "send"


# -- the preview ------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")


def draft_now(path: Path) -> str:
    """One run of the config's draft schedule, now, as the scheduler would run it."""
    config = load_config(path)
    store = Store.from_config(config.store)
    owner = owner_token()
    try:
        run = run_period(RunContext(config, store, owner, StopSignal()), config.schedules[0],
                         datetime.now(UTC))  # fmt: skip
    finally:
        release_owner(owner)
        store.close()
    assert run is not None and run.status == "drafted", run
    return run.editions[0]


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_the_preview_shows_the_draft_and_its_button_approves_it(
    setup: type[Setup], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from digest.web.preview import editor_app
    from tests.browser.support import serving

    s = setup()
    edition = draft_now(s.path)
    store = s.store()
    with (
        serving(editor_app(s.path, store)) as url,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"], headless=True
        )
        try:
            page = browser.new_page()
            page.goto(f"{url}/")
            page.get_by_role("link", name="1호").click()
            expect(page.get_by_role("heading", name="초안: 1호")).to_be_visible()
            expect(page.locator("#status")).to_contain_text("승인 대기")
            email = page.frame_locator("iframe.email").first
            expect(email.get_by_role("heading", level=3).first).to_be_visible()
            page.fill("#note", "편집자의 말: **봄 특집**")
            page.get_by_role("button", name="승인하고 발송").click()
            expect(page.locator("#status")).to_contain_text("승인됨 (editor (preview))")
            expect(page.locator("#result")).to_contain_text("4 message(s) sent")
        finally:
            browser.close()
    assert s.readers() == READERS
    for msg in [m for m in s.messages() if m["To"] != EDITOR]:
        markup, text = parts(msg)
        assert "편집자의 말: <strong>봄 특집</strong>" in markup
        assert "편집자의 말: **봄 특집**" in text
    released = store.draft(edition)
    assert released is not None and released.note == "편집자의 말: **봄 특집**"


def test_the_preview_refuses_an_approval_without_its_token(setup: type[Setup]) -> None:
    import asyncio

    import httpx

    from digest.web.preview import editor_app

    s = setup()
    edition = draft_now(s.path)
    store = s.store()
    app = editor_app(s.path, store)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.post(f"/drafts/{edition}/approve", data={"note": "x", "csrf": "1.x"})

    assert asyncio.run(post()).status_code == 403
    assert [d.edition for d in store.drafts()] == [edition] and s.readers() == []
