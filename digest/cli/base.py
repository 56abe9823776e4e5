"""The command line's root: the `digest` group, its context (the config, parsed once, and the
store) and how a `DigestError` becomes a one-line message."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from digest import __version__
from digest.config import Config, load_config
from digest.errors import DigestError
from digest.store import Store

if TYPE_CHECKING:
    pass

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


def fail(message: str, code: int = 1) -> None:
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
            fail(str(exc), exc.exit_code)


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
