"""Commands that send: send, status, approve, drafts, reject, run, schedule."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from digest.cli.base import Context, fail, main, pass_ctx
from digest.cli.content import run_ingest
from digest.errors import DeliveryIncomplete, SubscriberError
from digest.send.delivery import DeliveryReport
from digest.stop import StopSignal
from digest.tracking import click_report

if TYPE_CHECKING:
    from digest.sending import SendRequest

F = TypeVar("F", bound=Callable[..., Any])

# -- send -------------------------------------------------------------------------------------


def sync_subscribers(state: Context) -> None:
    """Add the new addresses of `subscribers.files`; bad rows are reported and skipped."""
    from digest.subscribers import sync_list_files

    for problem in sync_list_files(state.config, state.store):
        click.echo(f"warning: {problem}; row skipped", err=True)


class Progress:
    """One status line on stderr: redrawn in place on a terminal, every 5 s otherwise."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, report: DeliveryReport) -> None:
        now = time.monotonic()
        if report.done == 0 or (
            now - self.last < (0.1 if self.tty else 5.0) and report.done < self.total
        ):
            return
        self.last = now
        rate = report.rate()
        left = max(self.total - report.done, 0)
        eta = f"{left / rate:.0f}s left" if rate > 0 else "--"
        c = report.counts
        line = (
            f"{report.done}/{self.total}: {c.get('sent', 0)} sent, {c.get('deferred', 0)} "
            f"deferred, {c.get('failed', 0)} failed, {rate:.0f}/s, {eta}"
        )
        click.echo(f"\r{line}" if self.tty else line, err=True, nl=not self.tty)

    def close(self) -> None:
        if self.tty:
            click.echo("", err=True)


class CLIReporter:
    """What a send says, on stdout and stderr (digest.sending.Reporter)."""

    def __init__(self) -> None:
        self._progress: Progress | None = None

    def info(self, line: str) -> None:
        click.echo(line)

    def warn(self, line: str) -> None:
        click.echo(f"warning: {line}", err=True)

    def progress(self, total: int) -> Callable[[DeliveryReport], None]:
        self._progress = Progress(total)
        return self._progress

    def progress_done(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None


@contextmanager
def stop_on_signals() -> Iterator[StopSignal]:
    """SIGTERM and Ctrl-C ask the send to stop gracefully: the messages in flight are
    recorded, the rest stays pending, the lock is released. A second signal kills at once."""
    stop = StopSignal()
    previous: dict[signal.Signals, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        click.echo(f"{name}: stopping after the messages in flight ...", err=True)
        stop.request(f"{name} received")

    # Handlers can only be set in the main thread (a CLI run in a thread keeps the defaults).
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def run_worker(state: Context, poll_seconds: float = 5.0) -> None:
    """`digest send --worker`: deliver what any edition has due, then look again, until a
    stop signal. Claims keep workers on many machines from sending a row twice."""
    from digest.sending import SendRequest
    from digest.sending import run_send as send_now

    reporter = CLIReporter()
    with stop_on_signals() as stop:
        click.echo("delivering editions in progress; SIGTERM or Ctrl-C to stop", err=True)
        while not stop.is_set():
            if state.store.unfinished_editions():
                try:
                    send_now(
                        state.config, state.store, SendRequest(resume_only=True), reporter,
                        now=datetime.now(UTC), stop=stop,
                    )  # fmt: skip
                except DeliveryIncomplete as exc:
                    if stop.is_set():
                        raise
                    click.echo(f"warning: {exc}", err=True)  # a busy server: look again
            stop.wait(poll_seconds)


def run_send(
    state: Context,
    *,
    now: datetime,
    request: SendRequest,
    stop: StopSignal,
) -> None:
    from digest.sending import run_send as send_now

    send_now(
        state.config, state.store, request, CLIReporter(), now=now, stop=stop,
        sync=lambda: sync_subscribers(state),
    )  # fmt: skip


@main.command()
@click.option("--theme", help="Send this theme's digest now.")
@click.option("--to", help="Send one test copy to this address; nothing is recorded.")
@click.option("--dry-run", is_flag=True, help="Compose everything, send nothing.")
@click.option("--resume", is_flag=True, help="Only finish earlier sends (pending, due retries).")
@click.option(
    "--worker",
    is_flag=True,
    help="Keep delivering: join every edition in progress, from any machine, until stopped "
    "(SIGTERM or Ctrl-C). Plans nothing.",
)
@click.option(
    "--retry-failed",
    "retry_failed",
    is_flag=True,
    help="Put the failed recipients of an edition (--edition, default: the latest) back in "
    "the queue and send to them (suppressed addresses stay failed).",
)
@click.option(
    "--edition",
    metavar="ID",
    help="With --retry-failed: its edition. With --to: send a copy of this past issue "
    "(latest, an issue number or an edition id).",
)
@pass_ctx
def send(
    state: Context,
    theme: str | None,
    to: str | None,
    dry_run: bool,
    resume: bool,
    worker: bool,
    retry_failed: bool,
    edition: str | None,
) -> None:
    """Compose the digest and send it now (finishing any interrupted send first)."""
    from digest.sending import SendRequest
    from digest.subscribers import normalize_address

    if (resume or worker) and (to or dry_run or theme):
        raise click.UsageError("--resume and --worker take no --to, --dry-run or --theme")
    if worker:
        run_worker(state)
        return
    if retry_failed and (to or dry_run or theme or resume):
        raise click.UsageError("--retry-failed takes only --edition")
    if edition is not None and not (retry_failed or to):
        raise click.UsageError("--edition goes with --retry-failed or --to")
    if edition is not None and to and (dry_run or theme):
        raise click.UsageError("--to with --edition sends that issue: no --dry-run or --theme")
    if to is not None:
        try:
            to = normalize_address(to)
        except SubscriberError as exc:
            raise click.BadParameter(f"{to!r}: {exc}", param_hint="--to") from None
    retry = None
    if retry_failed:
        retry = edition or state.store.latest_edition()
        if retry is None or not state.store.edition_digests(retry):
            fail(f"no edition {edition!r} (see `digest status`)" if edition else "nothing sent yet")
    request = SendRequest(
        theme=theme,
        to=to,
        dry_run=dry_run,
        resume_only=resume,
        retry_failed=retry,
        edition=edition if to else None,
    )
    with stop_on_signals() as stop:
        run_send(state, now=datetime.now(UTC), request=request, stop=stop)


@main.command()
@click.argument("edition", required=False)
@pass_ctx
def status(state: Context, edition: str | None) -> None:
    """Show delivery counts per state for an edition (default: the latest), its failures and,
    with `[tracking] clicks`, its clicks per post."""
    store = state.store
    holder = store.scheduler_lock("sender")
    if holder is not None:  # first: a first send that is still planning shows here too
        from digest.locks import SEND_STALE_SECONDS, send_holder_gone

        gone = send_holder_gone(holder, datetime.now(UTC), SEND_STALE_SECONDS)
        click.echo(
            f"{'left by a stopped send' if gone else 'sending now'}: pid {holder.pid} on "
            f"{holder.host}, since {holder.started:%Y-%m-%d %H:%M:%S} UTC (last heartbeat "
            f"{holder.heartbeat:%H:%M:%S} UTC)"
            + (f"; {gone}: `digest send --resume`" if gone else "")
        )
    edition = edition or store.latest_edition()
    if edition is None:
        click.echo("nothing sent yet")
        return
    digests = store.edition_digests(edition)
    if not digests:
        fail(f"no edition {edition!r} (see `digest status` for the latest)")
    counts = store.delivery_counts(edition)
    click.echo(f"edition {edition}, issue #{digests[0].issue_number}, {len(digests)} variant(s)")
    for state_name in ("pending", "sent", "deferred", "failed"):
        click.echo(f"  {state_name:9} {counts.get(state_name, 0)}")
    if counts.get("held"):
        click.echo(f"  {'held':9} {counts['held']} (a draft: `digest approve`)")
    for email, state_name, reply in store.failures(edition):
        click.echo(f"  {state_name}: {email}: {reply}")
    echo_clicks(state, edition, recent=True)


def echo_clicks(state: Context, edition: str, *, recent: bool = False) -> None:
    """The edition's clicks per post and opens, when they are counted or were; `recent`:
    and the clicks of the latest editions in all."""
    tracking = state.config.tracking
    clicks = state.store.edition_clicks(edition)
    if tracking.clicks or any(row.clicks for row in clicks):
        for line in click_report(clicks):
            click.echo(line)
        if recent:
            latest = state.store.recent_clicks()
            click.echo(
                "clicks of the latest issues: "
                + ", ".join(f"#{i}{f' ({th})' if th else ''} {n}" for _e, i, th, n in latest)
            )
    opened = state.store.edition_opens(edition)
    if tracking.opens or opened:
        click.echo(f"opens {opened} (pixel loads of the issue, never per reader)")


# Which draft `approve` and `reject` act on.
draft_option = click.option(
    "--edition",
    "ref",
    default="latest",
    metavar="latest|N|ID",
    show_default=True,
    help="The draft: the newest, an issue number or an edition id.",
)


@main.command()
@draft_option
@click.option("--note", help="An intro note (Markdown) on top of every copy of this issue.")
@click.option(
    "--note-file",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="The note from this UTF-8 file (- for stdin).",
)
@click.option("--list", "list_only", is_flag=True, help="List the drafts waiting for approval.")
@click.option(
    "--no-send",
    is_flag=True,
    help="Only release it: the scheduler, `digest send --resume` or a worker sends it.",
)
@pass_ctx
def approve(
    state: Context, ref: str, note: str | None, note_file: Path | None, list_only: bool,
    no_send: bool,
) -> None:  # fmt: skip
    """Approve a draft (see `approval = "draft"`) and send it, with an optional intro note."""
    from digest.approval import approve as release
    from digest.approval import find_draft
    from digest.sending import deliver_editions

    if list_only:
        _print_drafts(state)
        return
    if note is not None and note_file is not None:
        raise click.UsageError("--note or --note-file, not both")
    if note_file is not None:
        try:
            raw = sys.stdin.buffer.read() if str(note_file) == "-" else note_file.read_bytes()
            note = raw.decode("utf-8")
        except OSError as exc:
            fail(f"{note_file}: cannot read the note: {exc.strerror}")
        except UnicodeDecodeError:
            fail(f"{note_file}: the note is not UTF-8")
    draft = find_draft(state.store, ref)
    released = release(
        state.config, state.store, draft, note=note, by="editor", now=datetime.now(UTC)
    )
    with_note = " with its note" if released.note else ""
    click.echo(f"edition {draft.edition} approved{with_note}")
    if no_send:
        click.echo("released: `digest send --resume`, a worker or the scheduler sends it")
        return
    with stop_on_signals() as stop:
        deliver_editions(state.config, state.store, [draft.edition], CLIReporter(), stop=stop)


def _print_drafts(state: Context) -> None:
    from digest.approval import list_lines

    lines = list_lines(state.config, state.store)
    click.echo("\n".join(lines) if lines else "no draft waits for approval")


@main.command()
@pass_ctx
def drafts(state: Context) -> None:
    """List the drafts waiting for approval (as `digest approve --list`)."""
    _print_drafts(state)


@main.command()
@draft_option
@pass_ctx
def reject(state: Context, ref: str) -> None:
    """Discard a draft: nothing is sent, and its posts are new again for the next issue."""
    from digest.approval import find_draft
    from digest.approval import reject as discard

    draft = find_draft(state.store, ref)
    discard(state.store, draft, datetime.now(UTC))
    click.echo(f"edition {draft.edition} discarded: nothing sent")


@main.command()
@click.option("--theme", help="Send this theme's digest.")
@click.option("--dry-run", is_flag=True, help="Compose everything, send nothing.")
@pass_ctx
def run(state: Context, theme: str | None, dry_run: bool) -> None:
    """The main job: ingest every source, then compose and send the digest."""
    from digest.sending import SendRequest

    now = datetime.now(UTC)
    with stop_on_signals() as stop:
        if not run_ingest(state, now, stop):
            fail("every source failed; nothing sent")
        request = SendRequest(theme=theme, dry_run=dry_run)
        run_send(state, now=now, request=request, stop=stop)


# -- schedule ---------------------------------------------------------------------------------


@main.command()
@click.option(
    "--list", "list_only", is_flag=True, help="Print each schedule's next runs and last run."
)
@pass_ctx
def schedule(state: Context, list_only: bool) -> None:
    """Run the schedules from the config in the foreground (SIGTERM or Ctrl-C stops it)."""
    from digest.scheduling import list_lines, serve

    config = state.config
    if not config.schedules:
        fail(f"{config.path}: no [[schedules]] defined")
    if list_only:
        for line in list_lines(config, state.store):
            click.echo(line)
        return
    click.echo(f"running {len(config.schedules)} schedule(s); SIGTERM or Ctrl-C to stop", err=True)
    serve(config, state.store)
