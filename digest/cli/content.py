"""Commands on content: ingest, summarize, themes, bounces."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from digest.cli.base import Context, fail, main, pass_ctx
from digest.errors import DeliveryIncomplete
from digest.stop import StopSignal

if TYPE_CHECKING:
    pass

F = TypeVar("F", bound=Callable[..., Any])

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
        fail("every source failed")
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
        fail(f"{config.path}: no [[themes]] defined")
    now = datetime.now(UTC)
    since = now - timedelta(days=days if days else 36500)
    posts = state.store.posts_since(since, now + timedelta(days=36500))
    language = config.site.language
    if post_id is not None:
        post = find_post(posts, post_id)
        if post is None:
            fail(f"no post {post_id!r} in the store (ids: `digest themes`)")
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
