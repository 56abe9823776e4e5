"""Helpers for the web tests: configs, the CLI, and serving an ASGI app on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from click.testing import CliRunner
from starlette.types import ASGIApp

from digest.cli import main
from tests.conftest import SMTPServer, write_config
from tests.golden.browser import CHROMIUM_ARGS

CHROMIUM = Path("/usr/bin/chromium")  # Debian's (.ci/run); Playwright's own is never installed
ARGS = CHROMIUM_ARGS  # the flags the golden screenshots use


def cli(config: Path, *args: str) -> str:
    # In a thread of its own: Playwright's sync API keeps an event loop running in the test's
    # thread, and the CLI calls asyncio.run.
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(CliRunner().invoke, main, ["--config", str(config), *args]).result()
    assert result.exit_code == 0, result.output
    return result.output


def web_config(
    folder: Path,
    smtp_server: SMTPServer | None = None,
    *,
    base_url: str = "https://news.example/digest",
    extra: str = "",
) -> Path:
    """The conftest config, sending to `smtp_server`, with the list imported once instead of
    synced before every send (a sync would overwrite choices made on the preferences page)."""
    smtp = (
        f'host = "127.0.0.1"\nport = {smtp_server.port}'
        if smtp_server
        else 'host = "embedded"\nmaildir = "var/mail"'
    )
    path = write_config(folder, smtp=smtp, extra=extra)
    text = path.read_text("utf-8")
    text = text.replace('files = ["subscribers.csv"]', "files = []")
    text = text.replace('base_url = "https://news.example/digest"', f'base_url = "{base_url}"')
    path.write_text(text, "utf-8")
    cli(path, "subscribers", "import", str(folder / "subscribers.csv"))
    return path


def links(markup: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', markup)


def listening_socket() -> socket.socket:
    """Bound to 127.0.0.1, port 0: the port is known before the app (and its config) exists."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving(app: ASGIApp, sock: socket.socket | None = None) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread; yields its base URL (no trailing slash)."""
    sock = sock or listening_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            thread.join(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
