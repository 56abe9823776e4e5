"""Who holds what: tokens that name a process (host:pid:random) and whether it is gone."""

from __future__ import annotations

import os
import secrets
import socket


def pid_alive(pid: int) -> bool:
    """Whether process `pid` on this host is running (a zombie, killed and not yet reaped by
    its new parent, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rpartition(")")[2].split()[:1]
    except OSError:
        return True  # no /proc: trust kill(0)
    return state != ["Z"]


def process_token() -> str:
    """A name for one holder in this process: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def token_gone(token: str, live: set[str]) -> bool:
    """True only when the holder named by `token` is known to be gone: same host and its pid
    is dead, or it is this process and `live` no longer holds the token. False when it
    cannot be told (another host: only a heartbeat or a lease's end can tell)."""
    parts = token.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or parts[0] != socket.gethostname():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return token not in live
    return not pid_alive(pid)
