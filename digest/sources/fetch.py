"""Fetching a source's bytes, politely and within bounds.

A local file is read as is. An http(s) URL goes through one shared `httpx.AsyncClient` per
ingest run with: connect and read timeouts plus an overall deadline (a server that drips bytes
cannot hold a source forever), a response size limit checked on the header and while
streaming, capped redirects, at most `per_host` requests at once to any one host, retries with
exponential backoff (and jitter) on 5xx, 429 and timeouts, a User-Agent that names digest, and
conditional GET: with a stored ETag / Last-Modified an unchanged resource costs a 304.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from digest import __version__
from digest.errors import SourceError

USER_AGENT = f"digest/{__version__} (+https://github.com/digest/digest; newsletter digests)"
MAX_BYTES = 20 * 1024 * 1024
MAX_REDIRECTS = 5
PER_HOST = 2  # requests in flight to one host at once, across every source of a run
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0  # seconds: a longer Retry-After is not worth waiting for in a run


@dataclass(frozen=True)
class Limits:
    timeout: float = 20.0  # read timeout; the whole response gets 3x this
    connect_timeout: float = 10.0
    max_bytes: int = MAX_BYTES
    retries: int = 2


@dataclass(frozen=True)
class Response:
    url: str  # after redirects
    status: int  # 200-299, or 304 when a conditional GET found nothing new
    content: bytes = b""
    content_type: str = ""
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://"))


class Fetcher:
    """One HTTP client and one per-host limit for a whole ingest run (use `async with`)."""

    def __init__(
        self,
        *,
        per_host: int = PER_HOST,
        max_redirects: int = MAX_REDIRECTS,
        backoff: float = 0.5,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.per_host = per_host
        self.max_redirects = max_redirects
        self.backoff = backoff
        self.user_agent = user_agent
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Fetcher:
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=self.max_redirects,
            headers={"User-Agent": self.user_agent},
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get(
        self,
        name: str,
        url: str,
        limits: Limits | None = None,
        *,
        etag: str = "",
        last_modified: str = "",
        accept: str = "*/*",
    ) -> Response:
        """The resource at `url` (a path, file:// or http(s)); SourceError naming `name`."""
        limits = limits or Limits()
        if "://" not in url or url.startswith("file://"):
            return _read_file(name, url, limits.max_bytes)
        if not is_remote(url):
            raise SourceError(f"source {name!r}: unsupported URL scheme in {url!r}")
        if self._client is None:
            raise RuntimeError("Fetcher used outside `async with`")
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        host = urlsplit(url).netloc.lower()
        semaphore = self._hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        attempt = 0
        while True:
            try:
                async with semaphore:
                    return await self._once(name, url, limits, headers)
            except _Retryable as exc:
                if attempt >= limits.retries:
                    raise SourceError(exc.message) from None
                delay = self.backoff * 2**attempt * random.uniform(0.75, 1.25)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, MAX_RETRY_AFTER))
                attempt += 1
                await asyncio.sleep(delay)

    async def _once(self, name: str, url: str, limits: Limits, headers: dict[str, str]) -> Response:
        assert self._client is not None
        timeout = httpx.Timeout(limits.timeout, connect=min(limits.connect_timeout, limits.timeout))
        where = f"source {name!r}: {url}"
        try:
            async with asyncio.timeout(limits.timeout * 3):
                async with self._client.stream(
                    "GET", url, headers=headers, timeout=timeout
                ) as response:
                    return await _read_response(where, response, limits.max_bytes)
        except TimeoutError:
            raise _Retryable(f"{where}: timed out after {limits.timeout * 3:g}s") from None
        except httpx.TimeoutException:
            raise _Retryable(f"{where}: timed out after {limits.timeout:g}s") from None
        except httpx.TooManyRedirects:
            raise SourceError(f"{where}: more than {self.max_redirects} redirects") from None
        except httpx.ConnectError as exc:
            # DNS failures and refused connections are not retried: they rarely heal in
            # seconds, and a run should not stall on a dead host.
            raise SourceError(f"{where}: cannot connect: {exc}") from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise _Retryable(f"{where}: connection broke: {exc}") from None
        except httpx.HTTPError as exc:
            raise SourceError(f"{where}: {exc}") from None


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


async def _read_response(where: str, response: httpx.Response, max_bytes: int) -> Response:
    status = response.status_code
    if status == 304:
        return Response(str(response.url), 304)
    if status in RETRY_STATUSES:
        raise _Retryable(f"{where}: HTTP {status}", _retry_after(response))
    if status >= 400:
        raise SourceError(f"{where}: HTTP {status}")
    if status >= 300:  # a redirect without a usable Location
        raise SourceError(f"{where}: HTTP {status} without a usable redirect")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SourceError(f"{where}: response larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise SourceError(f"{where}: response larger than {max_bytes} bytes")
        chunks.append(chunk)
    return Response(
        url=str(response.url),
        status=status,
        content=b"".join(chunks),
        content_type=response.headers.get("Content-Type", ""),
        etag=response.headers.get("ETag", ""),
        last_modified=response.headers.get("Last-Modified", ""),
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    with contextlib.suppress(ValueError):
        return float(value)
    return None


def _read_file(name: str, url: str, max_bytes: int) -> Response:
    path = Path(url.removeprefix("file://"))
    try:
        if path.stat().st_size > max_bytes:
            raise SourceError(f"source {name!r}: {path}: larger than {max_bytes} bytes")
        content = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"source {name!r}: {path}: {exc.strerror}") from None
    return Response(url=str(path), status=200, content=content)


async def fetch(name: str, url: str, timeout: float) -> bytes:
    """One resource's bytes with default limits (a convenience around `Fetcher`)."""
    async with Fetcher() as fetcher:
        response = await fetcher.get(name, url, Limits(timeout=timeout, retries=0))
    return response.content
