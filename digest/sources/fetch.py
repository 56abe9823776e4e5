"""Fetching a source's bytes: a local file or an http(s) URL, always with a timeout."""

from __future__ import annotations

from pathlib import Path

import httpx

from digest import __version__
from digest.errors import SourceError

USER_AGENT = f"digest/{__version__} (+https://github.com/digest/digest; newsletter digests)"
MAX_BYTES = 20 * 1024 * 1024


async def fetch(name: str, url: str, timeout: float) -> bytes:
    if "://" not in url or url.startswith("file://"):
        path = Path(url.removeprefix("file://"))
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SourceError(f"source {name!r}: {path}: {exc.strerror}") from None
    if not url.startswith(("http://", "https://")):
        raise SourceError(f"source {name!r}: unsupported URL scheme in {url!r}")
    try:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=True,
            max_redirects=5,
            headers={"User-Agent": USER_AGENT},
        ) as client:
            async with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise SourceError(f"source {name!r}: {url}: HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise SourceError(f"source {name!r}: {url}: larger than {MAX_BYTES} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
    except httpx.TimeoutException:
        raise SourceError(f"source {name!r}: {url}: timed out after {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"source {name!r}: {url}: {exc}") from None
