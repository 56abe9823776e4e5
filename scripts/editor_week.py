"""An editor's week on the sample content, and the README's screenshots of it.

    python scripts/editor_week.py                   # docs/screenshots/week-*.png
    python scripts/editor_week.py --no-screenshots  # the commands and their output only
    python scripts/editor_week.py --folder DIR      # keep the week's folder (else a temporary one)

From a fresh folder: the sample config (its own store, the embedded catcher's Maildir, the
weekly schedule with `approval = "draft"`, an `[editor] email`, `[tracking] clicks = true`),
the sample feed and list. It runs the commands the README shows through the real CLI, runs the
scheduled draft now as `digest schedule` would at Monday 08:00 (runner.run_period), follows a
few counted links through `digest serve`'s app, and screenshots the pages in Chromium. The time
zone and locale are pinned as in scripts/regen_golden.py; the dates are those of the run (the
sample source replays its newest post as published now).
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from digest.cli import main as digest_main  # noqa: E402
from digest.config import load_config  # noqa: E402
from digest.scheduling.events import StopSignal  # noqa: E402
from digest.scheduling.runner import RunContext, owner_token, release_owner, run_period  # noqa: E402
from digest.store import Store  # noqa: E402
from digest.web.site import subscriber_app  # noqa: E402

SCREENSHOT_DIR = ROOT / "docs" / "screenshots"
EDITOR = "editor@haebom.example"
READER = "minji.kim@example.com"  # whose copy the look back shows
NOTE = "이번 주는 **인공지능 특집**입니다."
CLICKS = 3  # counted link follows: the first post twice, the second once


def week_config(folder: Path, store_url: str = "") -> Path:
    """The sample config, feed and list copied into `folder`, adjusted for the week."""
    (folder / "samples" / "haebom").mkdir(parents=True, exist_ok=True)
    (folder / "subscribers").mkdir(exist_ok=True)
    shutil.copy(ROOT / "samples" / "haebom" / "feed.atom", folder / "samples" / "haebom")
    shutil.copy(ROOT / "subscribers" / "sample.csv", folder / "subscribers")
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    edits = {
        "clicks = false": "clicks = true",
        '# approval = "draft"': 'approval = "draft"',
        "# [editor]": "[editor]",
        '# email = "editor@example.com"': f'email = "{EDITOR}"',
    }
    if store_url:
        edits['path = "var/digest.sqlite3"'] = f'path = "var/digest.sqlite3"\nurl = "{store_url}"'
    for old, new in edits.items():
        if old not in text:
            raise SystemExit(f"config.toml changed: {old!r} not found; update {__file__}")
        text = text.replace(old, new, 1)
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Week:
    """The week's folder, and each step of it; every command's output is printed."""

    def __init__(self, folder: Path, *, store_url: str = "", echo: bool = True) -> None:
        self.folder = folder
        self.config_path = week_config(folder, store_url)
        self.config = load_config(self.config_path)
        self.echo = echo
        self.transcript: list[tuple[str, str]] = []

    # -- the CLI ------------------------------------------------------------------------------

    def cli(self, *args: str) -> str:
        """`digest ARGS` on the week's config; stops the week on a non-zero exit."""
        # In a thread of its own: the CLI calls asyncio.run, Playwright may hold a loop here.
        with ThreadPoolExecutor(1) as pool:
            result = pool.submit(
                CliRunner().invoke, digest_main, ["--config", str(self.config_path), *args]
            ).result()
        shown = " ".join(a if " " not in a else f'"{a}"' for a in args)
        self.say(f"$ digest {shown}", result.output)
        if result.exit_code != 0:
            raise RuntimeError(f"digest {shown} exited {result.exit_code}:\n{result.output}")
        return result.output

    def say(self, title: str, output: str) -> None:
        self.transcript.append((title, output))
        if self.echo:
            print(title)
            print(output.rstrip("\n"))
            print()

    @contextmanager
    def store(self) -> Iterator[Store]:
        store = Store.from_config(self.config.store)
        try:
            yield store
        finally:
            store.close()

    # -- the steps ----------------------------------------------------------------------------

    def ingest(self) -> str:
        return self.cli("ingest")

    def draft(self) -> str:
        """The weekly schedule's run, now, as `digest schedule` runs it at its time; returns
        the draft's edition id."""
        sched = next(s for s in self.config.schedules if s.name == "weekly")
        owner = owner_token()
        try:
            with self.store() as store:
                run = run_period(
                    RunContext(self.config, store, owner, StopSignal()), sched, datetime.now(UTC)
                )
        finally:
            release_owner(owner)
        if run is None or run.status != "drafted" or not run.editions:
            raise RuntimeError(f"the weekly run did not compose a draft: {run}")
        self.say(
            "(digest schedule: the weekly run, started now instead of at Monday 08:00)",
            f"run {run.schedule} {run.period}: {run.status}, edition {run.editions[0]}",
        )
        notice = next((m for m in self.messages() if EDITOR in str(m["To"])), None)
        if notice is not None:
            head = str(notice.get_content()).split("\n\n- ")[0].split("\n")[:8]
            self.say(
                f"(the notice in {EDITOR}'s mailbox)",
                "\n".join([f"Subject: {notice['Subject']}", "", *head, "..."]),
            )
        return run.editions[0]

    def approve(self, note: str = NOTE) -> str:
        return self.cli("approve", "--note", note)

    def follow_links(self, count: int = CLICKS) -> list[str]:
        """Follow `count` counted post links of a reader's copy through `digest serve`'s app
        (in-process): the first link each time but the last, then the second."""
        copy = next(m for m in self.messages() if READER in str(m["To"]))
        base = self.config.web.base_url.rstrip("/")
        links = counted_links(base, [html_of(copy)])
        if len(links) < 2:
            raise RuntimeError(f"no counted links in {READER}'s copy")
        chosen = [links[0]] * (count - 1) + [links[1]]
        with self.store() as store:
            app = subscriber_app(self.config, store)

            async def follow() -> list[str]:
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url=base) as client:
                    found = []
                    for link in chosen:
                        response = await client.get(link.removeprefix(base))
                        if response.status_code != 302:
                            raise RuntimeError(f"{link}: {response.status_code}")
                        found.append(response.headers["location"])
                    return found

            targets = asyncio.run(follow())
        self.say(f"(readers follow {count} post links: GET /c/...)", "\n".join(targets) + "\n")
        return targets

    def status(self) -> str:
        return self.cli("status")

    def look_back(self, output: Path) -> str:
        return self.cli(
            "preview", "--edition", "latest", "--subscriber", READER,
            "--output", str(output), "--no-browser",
        )  # fmt: skip

    def send_copy(self, to: str = EDITOR) -> str:
        return self.cli("send", "--to", to, "--edition", "latest")

    # -- the mailbox --------------------------------------------------------------------------

    def messages(self) -> list[EmailMessage]:
        """Every message the embedded catcher stored, in the order it stored them."""
        folder = self.config.smtp.maildir
        if not (folder / "new").is_dir():
            return []
        box = mailbox.Maildir(folder, create=False)
        try:
            parser = BytesParser(policy=policy.default)
            # Maildir names start "<seconds>.M<microseconds>P...": the time each was stored
            # (the Date header will not do: a copy of a past issue keeps the issue's date).
            keys = sorted(box.iterkeys(), key=lambda k: [int(n) for n in re.findall(r"\d+", k)[:2]])
            found = [parser.parsebytes(box.get_bytes(key)) for key in keys]
        finally:
            box.close()
        return [m for m in found if isinstance(m, EmailMessage)]


def counted_links(base_url: str, pages: list[str]) -> list[str]:
    """The distinct counted post links (`<base_url>/c/...`) in `pages`, in order."""
    prefix = f"{base_url.rstrip('/')}/c/"
    links: list[str] = []
    for page in pages:
        for href in re.findall(r'href="([^"]+)"', page):
            link = href.replace("&amp;", "&")
            if link.startswith(prefix) and link not in links:
                links.append(link)
    return links


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    return str(part.get_content()) if part is not None else ""


# -- screenshots --------------------------------------------------------------------------------


@contextmanager
def chromium_page(width: int, height: int) -> Iterator[Any]:
    """A page in the system Chromium, Korean locale and Seoul time, no network but 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    from tests.golden.browser import CHROMIUM_ARGS, chromium_path

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": width, "height": height},
                device_scale_factor=1,
                locale="ko-KR",
                timezone_id="Asia/Seoul",
            )
            page = context.new_page()
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(
                        ("http://127.0.0.1", "file:", "data:", "about:")
                    )
                    else route.abort()
                ),
            )
            yield page
            context.close()
        finally:
            browser.close()


def shoot(page: Any, path: Path) -> None:
    page.evaluate("document.fonts.ready")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=False)
    print(f"written: {path} ({path.stat().st_size // 1024} KB)\n")


def shoot_preview(week: Week, out: Path, edition: str | None = None) -> None:
    """The preview's index (`digest preview`), or a draft's page with the note typed in."""
    from digest.web.preview import editor_app
    from tests.browser.support import serving

    with (
        week.store() as store,
        serving(editor_app(week.config_path, store)) as url,
        chromium_page(1280, 860) as page,
    ):
        if edition is None:
            page.goto(f"{url}/", wait_until="networkidle")
        else:
            page.goto(f"{url}/drafts/{edition}", wait_until="networkidle")
            page.fill("#note", NOTE)
        shoot(page, out)


def shoot_file(html: Path, out: Path) -> None:
    with chromium_page(800, 1100) as page:
        page.goto(html.resolve().as_uri(), wait_until="load")
        shoot(page, out)


def shoot_archive(week: Week, out: Path) -> None:
    from tests.browser.support import serving

    with (
        week.store() as store,
        serving(subscriber_app(week.config, store)) as url,
        chromium_page(1000, 400) as page,
    ):
        page.goto(f"{url}/archive", wait_until="networkidle")
        shoot(page, out)


# -- the week -----------------------------------------------------------------------------------


def run_week(folder: Path, shots: Path | None) -> Week:
    week = Week(folder)
    week.ingest()
    if shots:
        shoot_preview(week, shots / "week-preview.png")
    edition = week.draft()
    week.cli("drafts")
    if shots:
        shoot_preview(week, shots / "week-draft.png", edition)
    week.approve()
    week.follow_links()
    week.status()
    issue = folder / "issue.html"
    week.look_back(issue)
    if shots:
        shoot_file(issue, shots / "week-issue.png")
        shoot_archive(week, shots / "week-archive.png")
    week.send_copy()
    return week


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--no-screenshots", action="store_true")
    parser.add_argument("--folder", type=Path, help="the week's folder (default: temporary)")
    args = parser.parse_args(argv)
    # Pinned as in regen_golden.py, here rather than at import, so a test importing the
    # script leaves its process's clock alone.
    os.environ["TZ"] = "UTC"
    os.environ["LC_ALL"] = "C.UTF-8"
    time.tzset()
    shots: Path | None = None if args.no_screenshots else SCREENSHOT_DIR
    if shots is not None:
        from tests.golden.browser import missing

        why = missing()
        if why:
            print(f"screenshots skipped: {why}", file=sys.stderr)
            shots = None
    if args.folder:
        args.folder.mkdir(parents=True, exist_ok=True)
        if any(args.folder.iterdir()):
            parser.error(f"--folder {args.folder} is not empty: the week starts from nothing")
        run_week(args.folder, shots)
        return 0
    with tempfile.TemporaryDirectory(prefix="digest-week-") as folder:
        run_week(Path(folder), shots)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
