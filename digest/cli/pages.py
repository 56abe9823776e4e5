"""Commands that show: the preview, the subscribers' web server, the sign-up snippet."""

from __future__ import annotations

import webbrowser
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from digest.cli.base import Context, fail, main, pass_ctx
from digest.cli.sending import echo_clicks

if TYPE_CHECKING:
    pass

F = TypeVar("F", bound=Callable[..., Any])

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

            fail(f"nothing new to preview: {why_empty(state.config, state.store)}")
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
            fail("a past issue as a message (.eml) is one reader's: add --subscriber EMAIL")
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
    echo_clicks(state, digest.edition)
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
