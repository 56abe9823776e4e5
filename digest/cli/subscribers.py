"""`digest subscribers ...`: the list."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from digest.cli.base import Context, fail, main, pass_ctx

if TYPE_CHECKING:
    pass

F = TypeVar("F", bound=Callable[..., Any])

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
        fail(f"{file}: {len(parsed.problems)} bad row(s); nothing imported (--skip-invalid?)")
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
