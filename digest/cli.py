"""The command line. Config is parsed once here; `DigestError`s become one-line messages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from digest import __version__
from digest.config import Config, load_config
from digest.errors import DeliveryIncomplete, DigestError, SubscriberError
from digest.send.delivery import DeliveryReport
from digest.stop import StopSignal
from digest.store import Store
from digest.tracking import click_report

if TYPE_CHECKING:
    from digest.sending import SendRequest

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.verbose = False
        self._config: Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.from_config(self.config.store)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class DigestGroup(click.Group):
    """Turns expected failures into `error: ...` on stderr and a non-zero exit code, and
    takes `--config FILE` after the command too (`digest run --config X`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _config_first(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            _fail(str(exc), exc.exit_code)


def _config_first(args: list[str]) -> list[str]:
    """`args` with a `--config FILE` (or `--config=FILE`) given after the command moved in
    front of it, where the group's option is parsed. Nothing after `--` is touched."""
    end = args.index("--") if "--" in args else len(args)
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    while i < end:
        arg = args[i]
        if arg == "--config" and i + 1 < end:
            moved += args[i : i + 2]
            i += 2
            continue
        if arg.startswith("--config="):
            moved.append(arg)
        else:
            rest.append(arg)
        i += 1
    return moved + rest + args[end:]


pass_ctx = click.make_pass_decorator(Context)


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("config.toml"),
    show_default=True,
    help="The config file.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def main(ctx: click.Context, config_path: Path, verbose: bool) -> None:
    """digest: summarize new posts into an email digest and send it to subscribers."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    state = Context(config_path)
    state.verbose = verbose
    ctx.obj = state
    ctx.call_on_close(state.close)


# -- ingest -----------------------------------------------------------------------------------


def run_ingest(state: Context, now: datetime, stop: StopSignal | None = None) -> bool:
    """Ingest every source and print a line per source; False when every source failed.
    A stop request cancels the sources still being read (each source's posts are stored in
    one transaction: a cancelled one stores nothing and is read again next time)."""
    from digest.ingest import ingest_all

    async def ingest() -> list[Any]:
        task = asyncio.ensure_future(ingest_all(state.config, state.store, now))
        if stop is None:
            return await task
        with stop.attached() as stopped:
            waiter = asyncio.ensure_future(stopped.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise DeliveryIncomplete(
                    f"stopped while ingesting ({stop.reason}); nothing sent",
                    exit_code=stop.exit_code(),
                )
            return task.result()

    reports = asyncio.run(ingest())
    # One row per source, then a total; problems and failures go to stderr with the reason.
    for r in reports:
        for problem in r.problems:
            click.echo(f"warning: {problem}", err=True)
        if r.failed:
            click.echo(f"error: {r.error}", err=True)
            click.echo(f"{r.name}: failed")
            continue
        row = f"{r.name}: {r.new} new, {r.updated} updated, {r.unchanged} unchanged"
        if r.not_modified:
            row += " (not modified)"
        if r.seen:
            row += f", {r.seen} older than the lookback marked as seen"
        if r.skipped:
            row += f", {len(r.skipped)} page(s) skipped: not articles"
            if not state.verbose:
                row += " (-v lists them)"
        click.echo(row)
        if state.verbose:
            for skipped in r.skipped:
                click.echo(f"  skipped {skipped}")
    if len(reports) > 1:
        failed = sum(1 for r in reports if r.failed)
        click.echo(
            f"total: {sum(r.new for r in reports)} new, {sum(r.updated for r in reports)} "
            f"updated, {sum(r.unchanged for r in reports)} unchanged, {failed} failed "
            f"of {len(reports)} sources"
        )
    return not reports or any(not r.failed for r in reports)


@main.command()
@pass_ctx
def ingest(state: Context) -> None:
    """Read every configured source into the store, then analyse and summarize what a
    digest could carry, so that the next send finds it ready."""
    from digest.pipeline import prepare_posts

    now = datetime.now(UTC)
    if not run_ingest(state, now):
        _fail("every source failed")
    prepare_posts(state.config, state.store, now)


# -- summarize --------------------------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--sentences", type=click.IntRange(1, 50), help="Sentences to keep.")
@click.option("--max-chars", type=click.IntRange(20), help="Character budget.")
@click.option(
    "--algorithm",
    help="hybrid (default), lead, lexrank, textrank, lsa, luhn, edmundson, kl, sumbasic.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input.")
@click.pass_context
def summarize(
    ctx: click.Context,
    paths: tuple[str, ...],
    sentences: int | None,
    max_chars: int | None,
    algorithm: str | None,
    as_json: bool,
) -> None:
    """Summarize text files (or - for stdin) with the same code that summarizes posts.

    All inputs are read first and summarized in one batch, in one process.
    """
    from digest.config import ALGORITHMS, SummaryConfig
    from digest.summarize import SummaryRequest, summarize_batch

    state: Context = ctx.obj
    base = state.config.summary if state.config_path.exists() else SummaryConfig()
    if algorithm and algorithm not in ALGORITHMS:
        raise click.BadParameter(f"choose from {', '.join(ALGORITHMS)}", param_hint="--algorithm")
    settings = replace(
        base,
        sentences=sentences or base.sentences,
        max_chars=max_chars or base.max_chars,
        algorithm=algorithm or base.algorithm,
    )
    failed = 0
    read: list[tuple[str, str]] = []
    stdin: str | None = None
    for path in paths:
        try:
            if path == "-":
                # `-` given twice reads stdin once and summarizes it twice.
                stdin = sys.stdin.read() if stdin is None else stdin
                text = stdin
            else:
                text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"error: {path}: {getattr(exc, 'strerror', None) or exc}", err=True)
            failed += 1
            continue
        read.append((path, text))
    language = None if settings.language == "auto" else settings.language
    requests = [SummaryRequest(text, language=language) for _, text in read]
    for (path, _), result in zip(read, summarize_batch(requests, config=settings), strict=True):
        if as_json:
            chosen = list(result.sentences)
            record = {"path": path, "language": result.language, "sentences": chosen}
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            if len(paths) > 1:
                click.echo(f"==> {path} <==")
            click.echo("\n".join(result.sentences))
    if failed:
        sys.exit(1)


# -- preview and serve ----------------------------------------------------------------------


@main.command()
@click.option("--theme", help="Preview this theme's digest.")
@click.option("--subscriber", metavar="EMAIL", help="Also show this subscriber's own copy.")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the HTML (or the message, if FILE ends in .eml) here; no server.",
)
@click.option("--no-browser", is_flag=True, help="Serve without opening a browser.")
@click.option(
    "--edition",
    metavar="N",
    help="Show a past issue as it went out: latest, an issue number or an edition id.",
)
@pass_ctx
def preview(
    state: Context,
    theme: str | None,
    subscriber: str | None,
    output: Path | None,
    no_browser: bool,
    edition: str | None,
) -> None:
    """Show what the next send would produce, without sending it (or, with --edition, an
    issue that went out)."""
    from digest.web.preview import build_previews, editor_app

    if edition is not None:
        if theme:
            raise click.UsageError("--edition shows one issue as it went out: no --theme")
        preview_past(state, edition, subscriber, output, no_browser)
        return
    if output is not None:
        previews = build_previews(
            state.config, state.store, now=datetime.now(UTC), theme=theme, subscriber=subscriber
        )
        # The copy asked for: the subscriber's, else the theme's, else the everything-digest.
        slug = "subscriber" if subscriber else f"theme-{theme}" if theme else "all"
        view = previews.view(slug)
        if view is None or view.envelope is None:
            from digest.web.preview import why_empty

            _fail(f"nothing new to preview: {why_empty(state.config, state.store)}")
            return
        for warning in view.warnings:
            click.echo(f"warning: {warning}", err=True)
        if output.suffix.lower() == ".eml":
            output.write_bytes(view.envelope.data)
        else:
            output.write_text(view.html, encoding="utf-8")
        click.echo(f"wrote {output} ({output.stat().st_size / 1024:.1f} KB)")
        return

    from digest.web.server import serve as serve_app

    app = editor_app(state.config_path, state.store, theme=theme, subscriber=subscriber)

    def ready(url: str) -> None:
        click.echo(f"preview at {url} (Ctrl-C to stop)")
        if not no_browser:
            webbrowser.open(url)

    serve_app(app, "127.0.0.1", state.config.web.preview_port, ready)


def preview_past(
    state: Context, ref: str, subscriber: str | None, output: Path | None, no_browser: bool
) -> None:
    """`digest preview --edition`: the issue's HTML as `subscriber` got it (or its public
    copy, with no one's links), in a file, opened in the browser unless told not to."""
    import tempfile

    from digest.outbox import MessageFactory
    from digest.past import past_digest, past_message, past_pages, subscriber_name
    from digest.subscribers import lookup_address
    from digest.web.archive import public_copy

    email = lookup_address(subscriber) if subscriber else ""
    digest = past_digest(state.store, ref, email)
    factory = MessageFactory(state.config)
    name = subscriber_name(state.store, email) if email else ""
    label = f"issue #{digest.issue_number} (edition {digest.edition}, {digest.variant or 'all'})"
    if output is not None and output.suffix.lower() == ".eml":
        if not email:
            _fail("a past issue as a message (.eml) is one reader's: add --subscriber EMAIL")
        output.write_bytes(past_message(factory, digest, email, name).data)
    else:
        if email:
            page = past_pages(factory, digest, email, name)
        else:
            page = public_copy(state.config, digest.html, digest.text, digest.subject)[0]
        if output is None:
            with tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", prefix="digest-issue-", suffix=".html", delete=False
            ) as out:
                out.write(page)
            output = Path(out.name)
        else:
            output.write_text(page, encoding="utf-8")
    click.echo(f"{label}: wrote {output} ({output.stat().st_size / 1024:.1f} KB)")
    _echo_clicks(state, digest.edition)
    if output.suffix.lower() != ".eml" and not no_browser:
        webbrowser.open(output.resolve().as_uri())


@main.command()
@click.option("--host", help="Listen on this address (default: web.listen_host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: web.listen_port).")
@pass_ctx
def serve(state: Context, host: str | None, port: int | None) -> None:
    """Serve the subscriber pages: unsubscribe, preferences, archive."""
    from digest.web.server import serve as serve_app
    from digest.web.site import subscriber_app

    config = state.config
    app = subscriber_app(config, state.store)

    def ready(url: str) -> None:
        click.echo(f"serving {config.web.base_url} at {url} (Ctrl-C to stop)")

    host = host or config.web.listen_host
    # Behind a proxy on this machine, trust its X-Forwarded-* headers (uvicorn's default
    # trusts only 127.0.0.1).
    port = config.web.listen_port if port is None else port
    serve_app(app, host, port, ready, proxy_headers=True)


@main.command("signup-snippet")
@click.option(
    "--themes", help='Theme keys to offer, comma-separated ("": no choice; default: all).'
)
@pass_ctx
def signup_snippet(state: Context, themes: str | None) -> None:
    """Print an HTML sign-up form for another site, posting to <web.base_url>/subscribe."""
    from digest.signup import snippet

    config = state.config
    keys = None if themes is None else [k.strip() for k in themes.split(",") if k.strip()]
    for key in keys or ():
        config.theme(key)  # an unknown key: a ConfigError naming the themes
    if not config.signup.enabled:
        click.echo(
            f"warning: signup.enabled is off in {config.path}: the form gets a 404", err=True
        )
    click.echo(snippet(config, keys), nl=False)


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
            _fail(
                f"no edition {edition!r} (see `digest status`)" if edition else "nothing sent yet"
            )
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
        _fail(f"no edition {edition!r} (see `digest status` for the latest)")
    counts = store.delivery_counts(edition)
    click.echo(f"edition {edition}, issue #{digests[0].issue_number}, {len(digests)} variant(s)")
    for state_name in ("pending", "sent", "deferred", "failed"):
        click.echo(f"  {state_name:9} {counts.get(state_name, 0)}")
    if counts.get("held"):
        click.echo(f"  {'held':9} {counts['held']} (a draft: `digest approve`)")
    for email, state_name, reply in store.failures(edition):
        click.echo(f"  {state_name}: {email}: {reply}")
    _echo_clicks(state, edition, recent=True)


def _echo_clicks(state: Context, edition: str, *, recent: bool = False) -> None:
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


@main.command()
@click.option(
    "--edition",
    "ref",
    default="latest",
    metavar="latest|N|ID",
    show_default=True,
    help="The draft: the newest, an issue number or an edition id.",
)
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
            _fail(f"{note_file}: cannot read the note: {exc.strerror}")
        except UnicodeDecodeError:
            _fail(f"{note_file}: the note is not UTF-8")
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
@click.option(
    "--edition",
    "ref",
    default="latest",
    metavar="latest|N|ID",
    show_default=True,
    help="The draft: the newest, an issue number or an edition id.",
)
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
            _fail("every source failed; nothing sent")
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
        _fail(f"{config.path}: no [[schedules]] defined")
    if list_only:
        for line in list_lines(config, state.store):
            click.echo(line)
        return
    click.echo(f"running {len(config.schedules)} schedule(s); SIGTERM or Ctrl-C to stop", err=True)
    serve(config, state.store)


# -- subscribers ------------------------------------------------------------------------------


@main.group()
def subscribers() -> None:
    """Manage the subscriber list."""


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows even if some are bad.")
@pass_ctx
def subscribers_import(state: Context, file: Path, skip_invalid: bool) -> None:
    """Validate and import a CSV list (email,name,themes[,language,status])."""
    from digest.subscribers import parse_subscribers

    parsed = parse_subscribers(file, [t.key for t in state.config.themes])
    # With --skip-invalid a bad row is skipped, not an error: the import goes on.
    for problem in parsed.problems:
        click.echo(f"{'skipped' if skip_invalid else 'error'}: {problem}", err=True)
    if parsed.problems and not skip_invalid:
        _fail(f"{file}: {len(parsed.problems)} bad row(s); nothing imported (--skip-invalid?)")
    added, updated, skipped = state.store.upsert_subscribers(parsed.subscribers)
    click.echo(
        f"{file}: {added} added, {updated} updated, {skipped} suppressed (not re-subscribed), "
        f"{parsed.duplicates} duplicate(s), {len(parsed.problems)} invalid"
    )


@subscribers.command("list")
@pass_ctx
def subscribers_list(state: Context) -> None:
    """List subscribers with their themes and status."""
    suppressed = state.store.suppressed()
    rows = state.store.subscribers()
    for sub in rows:
        status = suppressed.get(sub.email, sub.status)
        themes = ",".join(sub.themes) or "*"
        click.echo(f"{sub.email}\t{sub.name}\t{themes}\t{status}")
    click.echo(f"{len(rows)} subscriber(s)", err=True)


@subscribers.command("add")
@click.argument("email")
@click.option("--name", help="The subscriber's name.")
@click.option("--themes", help='Theme keys separated by commas ("": everything).')
@click.option("--language", help='ko or en ("": the site\'s).')
@click.option("--paused/--active", default=None, help="Pause or resume their digests.")
@pass_ctx
def subscribers_add(
    state: Context,
    email: str,
    name: str | None,
    themes: str | None,
    language: str | None,
    paused: bool | None,
) -> None:
    """Add a subscriber, or update the values given (a suppressed address is refused)."""
    from digest.subscribers import add_subscriber, make_subscriber

    keys = [t.key for t in state.config.themes]
    status = None if paused is None else ("paused" if paused else "active")
    sub = make_subscriber(
        state.store, email, keys, name=name, chosen=themes, language=language, status=status
    )
    click.echo(f"{sub.email}: {add_subscriber(state.store, sub)}")


@subscribers.command("remove")
@click.argument("email")
@pass_ctx
def subscribers_remove(state: Context, email: str) -> None:
    """Unsubscribe an address for good (it goes on the suppression list)."""
    from digest.subscribers import lookup_address, remove_subscriber

    address = lookup_address(email)
    click.echo(f"{address}: {remove_subscriber(state.store, address)}")


@subscribers.command("export")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here.")
@pass_ctx
def subscribers_export(state: Context, output: Path | None) -> None:
    """Write every subscriber as CSV in the import format (stdout by default)."""
    import io

    from digest.subscribers import export_subscribers

    buffer = io.StringIO()
    count = export_subscribers(state.store, buffer)
    if output is None:
        click.echo(buffer.getvalue(), nl=False)
    else:
        output.write_text(buffer.getvalue(), encoding="utf-8")
    click.echo(f"{count} subscriber(s) exported", err=True)


@subscribers.command("show")
@click.argument("email")
@pass_ctx
def subscribers_show(state: Context, email: str) -> None:
    """One subscriber: themes, status, and every digest sent to them, with when."""
    from digest.subscribers import describe_subscriber, lookup_address

    lines = describe_subscriber(state.store, lookup_address(email), state.config.site.timezone)
    click.echo("\n".join(lines))


# -- themes -----------------------------------------------------------------------------------


@main.command()
@click.option("--post", "post_id", help="One post (short id, key, guid or URL): every score.")
@click.option("--days", type=click.IntRange(1), help="Only posts of the last N days.")
@pass_ctx
def themes(state: Context, post_id: str | None, days: int | None) -> None:
    """Show the posts each theme takes, with scores and the words that matched."""
    from datetime import timedelta

    from digest.themes import (
        find_post,
        format_post_report,
        format_theme_report,
        post_report,
        theme_report,
    )

    config = state.config
    if not config.themes:
        _fail(f"{config.path}: no [[themes]] defined")
    now = datetime.now(UTC)
    since = now - timedelta(days=days if days else 36500)
    posts = state.store.posts_since(since, now + timedelta(days=36500))
    language = config.site.language
    if post_id is not None:
        post = find_post(posts, post_id)
        if post is None:
            _fail(f"no post {post_id!r} in the store (ids: `digest themes`)")
            return
        click.echo("\n".join(format_post_report(post, post_report(post, config.themes), language)))
        return
    click.echo("\n".join(format_theme_report(theme_report(posts, config.themes), language)))


# -- bounces ----------------------------------------------------------------------------------


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@pass_ctx
def bounces(state: Context, path: Path) -> None:
    """Read delivery status notifications (Maildir or mbox) and suppress hard bounces."""
    from digest.bounces import process_bounces
    from digest.compose.message import parse_sender

    config = state.config
    sender = parse_sender(config.site.sender)[1]
    report = process_bounces(path, state.store, sender, verp=True)
    for email, detail in report.hard:
        click.echo(f"hard: {email}: {detail} (suppressed)")
    for email, detail in report.soft:
        click.echo(f"soft: {email}: {detail}")
    for name, detail in report.unmatched:
        click.echo(f"warning: {name}: no recipient matched ({detail})", err=True)
    click.echo(f"{path}: {report.summary()}")
