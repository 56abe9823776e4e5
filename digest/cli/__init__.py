"""The command line: `digest` and its commands, one module per kind (`base` holds the
group, its context and the error handling). Config is parsed once, at this edge;
`DigestError`s become one-line messages and exit codes."""

from digest.cli import content, pages, sending, subscribers  # noqa: F401  (they register)
from digest.cli.base import main

__all__ = ["main"]
