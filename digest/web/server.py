"""Running an ASGI app with uvicorn, for `digest preview` and `digest serve`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

from digest.errors import DigestError


def serve(
    app: ASGIApp,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
    *,
    proxy_headers: bool = False,
) -> None:
    """Serve until interrupted; `on_ready` gets the URL once the socket listens (port 0: any).

    A port that cannot be bound is a DigestError naming it, not a traceback.
    """
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            proxy_headers=proxy_headers,
            server_header=False,
            # Small, fixed limits: these apps have nothing to stream.
            h11_max_incomplete_event_size=16 * 1024,
            timeout_keep_alive=5,
        )
    )

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                raise DigestError(f"cannot listen on {host}:{port}")
            await asyncio.sleep(0.05)
        bound = server.servers[0].sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown}:{bound}/")
        await task

    try:
        asyncio.run(run())
    except SystemExit:  # uvicorn exits this way when the port is taken
        raise DigestError(f"cannot listen on {host}:{port} (in use?)") from None
