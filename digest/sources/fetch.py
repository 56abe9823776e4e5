"""Fetching a source's bytes, politely, within bounds, and only from where the source may.

The source's own configured `url` may be a local path (or `file://`), read as is. Everything
else goes through one shared `httpx.AsyncClient` per ingest run with: a deadline on the whole
response (connect, redirects, headers and body: a server that drips a byte at a time cannot
hold a fetch longer than the source's `timeout`), a size limit counted on the decoded bytes as
they stream (a small gzip bomb, however many times it is encoded, stops at the limit), at most
`per_host` requests at once to any one host, retries with exponential backoff (and jitter) on
5xx, 429 and connect or read timeouts, a User-Agent that names digest, and conditional GET:
with a stored ETag / Last-Modified an unchanged resource costs a 304.

What a source may fetch (see `Site`):

- Only http and https. A local path or `file://` URL is read only when it is the source's own
  configured `url`; a URL found in fetched content (a sitemap entry, a sitemap index's child, a
  teaser's link, a redirect's Location) is never read from disk, nor any other scheme followed.
- Only its own site: the host of its configured URL, or a host under the same registrable
  domain (the Public Suffix List's "eTLD+1": `www.example.com` and `blog.example.com` are one
  site, `alice.github.io` and `bob.github.io` are two, `example.co.uk` is not `other.co.uk`).
  An IP address or a name without a public suffix (`localhost`) is a site of its own only.
  The source's `allow_hosts` adds hosts (each entry matches that host and its subdomains).
- No loopback, link-local or private address (nor any other address that is not globally
  routable: `ipaddress.is_global`) unless the source's own host has one of that kind (a feed
  served on 127.0.0.1 in a local test setup may read its articles from 127.0.0.1, but not from
  169.254.169.254). Every address a host name resolves to is checked before each request, and
  again when connecting, where the connection is made to the address just checked, so a DNS
  answer that changes in between (DNS rebinding) gains nothing.
- Each redirect hop is checked like the first URL; at most `max_redirects` of them.

Proxies from the environment (HTTP_PROXY and the like) are not used: the address checks need
the connection to go where the check says.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import random
import socket
import typing
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpcore
import httpx
from tld import get_fld

from digest import __version__
from digest.errors import SourceError

USER_AGENT = f"digest/{__version__} (+https://github.com/digest/digest; newsletter digests)"
MAX_BYTES = 20 * 1024 * 1024
MAX_REDIRECTS = 5
PER_HOST = 2  # requests in flight to one host at once, across every source of a run
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0  # seconds: a longer Retry-After is not worth waiting for in a run
ACCEPT_ENCODING = "gzip, deflate"  # the encodings `_Decoded` undoes (and no others)
_PIECE = 64 * 1024  # at most this many bytes come out of a decompressor at once
_URL_IN_MESSAGE = 200  # a hostile URL is cut to this many characters in a message

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# The address kinds the current request may connect to (see `_GuardedBackend`).
_ALLOWED_KINDS: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar(
    "digest_allowed_address_kinds", default=None
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class Limits:
    timeout: float = 20.0  # the whole response (every redirect and the body) within this
    connect_timeout: float = 10.0
    max_bytes: int = MAX_BYTES  # decoded (after Content-Encoding) bytes
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
    return url[:8].lower().startswith(("http://", "https://"))


def is_local(url: str) -> bool:
    """A path or a file:// URL (only a source's own configured `url` is ever read so)."""
    return "://" not in url or url[:7].lower() == "file://"


def short(url: str) -> str:
    """`url` cut for a one-line message."""
    return url if len(url) <= _URL_IN_MESSAGE else url[:_URL_IN_MESSAGE] + "..."


def address_kind(ip: IPAddress) -> str:
    """ "public", "loopback", "link-local" or "private" (anything else not globally routable)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_kind(embedded)
    if ip.is_loopback or ip.is_unspecified:  # 0.0.0.0 reaches this machine too
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_global and not ip.is_multicast:
        return "public"
    return "private"


def host_of(url: str) -> str:
    """The URL's host as it goes on the wire: lower case, IDNA, no trailing dot ("" if none)."""
    try:
        raw = httpx.URL(url).raw_host
    except (httpx.InvalidURL, ValueError, UnicodeError):
        return ""
    return raw.decode("ascii", "replace").lower().rstrip(".")


def registrable_domain(host: str) -> str | None:
    """The host's eTLD+1 by the Public Suffix List; None for an IP address or a name without a
    public suffix (`localhost`, `intranet`, `site.test`)."""
    if not host or _ip(host) is not None:
        return None
    try:
        found = get_fld(host, fix_protocol=True, fail_silently=True)
    except Exception:
        return None
    return found.lower() if isinstance(found, str) else None


def _ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Site:
    """Where one source may fetch from: its configured `url` (the only URL that may be a local
    path) and, over http(s), its own site plus `allow_hosts` (see the module docstring)."""

    url: str
    allow_hosts: tuple[str, ...] = field(default=())

    @cached_property
    def host(self) -> str | None:
        """The configured URL's host; None for a local source, which has no site of its own
        (links in a file on disk are fetched only from `allow_hosts`)."""
        return (host_of(self.url) or None) if is_remote(self.url) else None

    @cached_property
    def domain(self) -> str | None:
        return registrable_domain(self.host) if self.host else None

    @cached_property
    def extra_hosts(self) -> tuple[str, ...]:
        hosts = (h.strip().lower().removeprefix("*.").strip(".") for h in self.allow_hosts)
        return tuple(host_of(f"http://{h}/") for h in hosts if h)

    def allows_host(self, host: str) -> bool:
        if not host:
            return False
        if self.host is not None:
            if host == self.host:
                return True
            if self.domain is not None and registrable_domain(host) == self.domain:
                return True
        return any(host == h or host.endswith(f".{h}") for h in self.extra_hosts if h)

    def refusal(self, url: str) -> str:
        """Why `url` may not be fetched for this source without resolving it ("" if it may)."""
        if url == self.url and is_local(url):
            return ""
        scheme = urlsplit(url).scheme.lower() if "://" in url else ""
        if scheme not in ("http", "https"):
            return f"unsupported URL scheme in {short(url)!r} (only http and https are fetched)"
        host = host_of(url)
        if not self.allows_host(host):
            return (
                f"refused {short(url)}: {host or 'no host'} is not on the source's own site "
                "(allow_hosts may add it)"
            )
        return ""


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
        self._site_kinds: dict[str, frozenset[str]] = {}
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Fetcher:
        self._client = httpx.AsyncClient(
            follow_redirects=False,  # followed here, each hop checked (see `_follow`)
            transport=_GuardedTransport(),
            headers={"User-Agent": self.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            trust_env=False,
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
        site: Site | None = None,
    ) -> Response:
        """The resource at `url`; SourceError naming `name`. `site` is where the source may
        fetch from (default: `url` is the source's own configured URL)."""
        limits = limits or Limits()
        site = site or Site(url)
        refusal = site.refusal(url)
        if refusal:
            raise SourceError(f"source {name!r}: {refusal}")
        if is_local(url):
            return _read_file(name, url, limits.max_bytes)
        if self._client is None:
            raise RuntimeError("Fetcher used outside `async with`")
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        kinds = await self._allowed_kinds(site)
        semaphore = self._hosts.setdefault(host_of(url), asyncio.Semaphore(self.per_host))
        attempt = 0
        while True:
            try:
                async with semaphore:
                    return await self._once(name, url, limits, headers, site, kinds)
            except _Retryable as exc:
                if attempt >= limits.retries:
                    raise SourceError(exc.message) from None
                delay = self.backoff * 2**attempt * random.uniform(0.75, 1.25)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, MAX_RETRY_AFTER))
                attempt += 1
                await asyncio.sleep(delay)

    async def _allowed_kinds(self, site: Site) -> frozenset[str]:
        """Public addresses, plus the kinds the source's own host has (a local test setup)."""
        if site.host is None:
            return frozenset({"public"})
        if site.host not in self._site_kinds:
            own = {address_kind(ip) for ip in await _resolve(site.host, 80)}
            self._site_kinds[site.host] = frozenset({"public", *own})
        return self._site_kinds[site.host]

    async def _once(
        self,
        name: str,
        url: str,
        limits: Limits,
        headers: dict[str, str],
        site: Site,
        kinds: frozenset[str],
    ) -> Response:
        where = f"source {name!r}: {short(url)}"
        token = _ALLOWED_KINDS.set(kinds)
        try:
            async with asyncio.timeout(limits.timeout):
                return await self._follow(where, url, limits, headers, site, kinds)
        except TimeoutError:
            # The deadline on the whole response: a server this slow is not retried.
            raise SourceError(
                f"{where}: timed out: no complete response within {limits.timeout:g}s"
            ) from None
        except httpx.TimeoutException:
            raise _Retryable(f"{where}: timed out after {limits.timeout:g}s") from None
        except httpx.ConnectError as exc:
            # DNS failures and refused connections are not retried: they rarely heal in
            # seconds, and a run should not stall on a dead host.
            raise SourceError(f"{where}: cannot connect: {exc}") from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise _Retryable(f"{where}: connection broke: {exc}") from None
        except httpx.HTTPError as exc:
            raise SourceError(f"{where}: {type(exc).__name__}: {exc}") from None
        except httpx.InvalidURL as exc:
            # a Location such as `javascript:...` or `http://[::1`
            raise SourceError(f"{where}: unusable URL or redirect: {exc}") from None
        except _Refused as exc:
            raise SourceError(f"{where}: {exc}") from None
        finally:
            _ALLOWED_KINDS.reset(token)

    async def _follow(
        self,
        where: str,
        url: str,
        limits: Limits,
        headers: dict[str, str],
        site: Site,
        kinds: frozenset[str],
    ) -> Response:
        """GET `url`, following redirects by hand so that every hop is checked."""
        assert self._client is not None
        timeout = httpx.Timeout(limits.timeout, connect=min(limits.connect_timeout, limits.timeout))
        current = url
        for hop in range(self.max_redirects + 1):
            via = " (a redirect's target)" if hop else ""
            refusal = site.refusal(current)
            if refusal:
                raise SourceError(f"{where}: {refusal}{via}")
            await _check_addresses(current, kinds, via)
            request = self._client.build_request("GET", current, headers=headers, timeout=timeout)
            response = await self._client.send(request, stream=True)
            try:
                if response.next_request is not None:
                    current = str(response.next_request.url)
                    continue
                return await _read_response(where, response, limits.max_bytes)
            finally:
                await response.aclose()
        raise SourceError(f"{where}: more than {self.max_redirects} redirects")


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class _Refused(Exception):
    """A connection to an address the source may not reach (raised while connecting)."""


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to ([] when it does not resolve: the connection fails)."""
    literal = _ip(host)
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return []
    found: dict[IPAddress, None] = {}
    for info in infos:
        ip = _ip(str(info[4][0]).split("%")[0])
        if ip is not None:
            found[ip] = None
    return list(found)


async def _check_addresses(url: str, kinds: frozenset[str], via: str = "") -> None:
    parts = httpx.URL(url)
    host = parts.raw_host.decode("ascii", "replace")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for ip in await _resolve(host, port):
        kind = address_kind(ip)
        if kind not in kinds:
            raise _Refused(f"refused {short(url)}{via}: {host} has a {kind} address ({ip})")


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses of the kinds the current request may reach: the host name is
    resolved here, every address checked, and the connection made to a checked address."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        kinds = _ALLOWED_KINDS.get()
        if kinds is None:
            raise _Refused(f"refused a connection to {host}: no fetch policy in effect")
        addresses = await _resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host!r}")
        for ip in addresses:
            kind = address_kind(ip)
            if kind not in kinds:
                raise _Refused(f"refused a connection to {host}: a {kind} address ({ip})")
        error: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise _Refused("refused a connection to a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose connections go through
    `_GuardedBackend` (httpx takes no network backend, so its pool is replaced)."""

    def __init__(self) -> None:
        super().__init__(trust_env=False)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx.AsyncHTTPTransport changed: no connection pool to guard")
        limits = httpx.Limits()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(),
        )


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
    encodings = response.headers.get_list("Content-Encoding", split_commas=True)
    decoded = _Decoded(where, encodings, max_bytes)
    async for chunk in response.aiter_raw():
        decoded.feed(chunk)
    return Response(
        url=str(response.url),
        status=status,
        content=decoded.finish(),
        content_type=response.headers.get("Content-Type", ""),
        etag=response.headers.get("ETag", ""),
        last_modified=response.headers.get("Last-Modified", ""),
    )


class _Inflate:
    """One gzip or deflate layer, never producing more than `_PIECE` bytes at once."""

    def __init__(self, encoding: str) -> None:
        gzip = encoding in ("gzip", "x-gzip")
        self._decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        # "deflate" is meant to be zlib-wrapped, but some servers send raw deflate
        self._may_be_raw = not gzip

    def decode(self, data: bytes) -> Iterator[bytes]:
        while not self._decompressor.eof:  # bytes after the end of the stream are ignored
            try:
                out = self._decompressor.decompress(data, _PIECE)
            except zlib.error:
                if not self._may_be_raw:
                    raise
                self._may_be_raw = False
                self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._may_be_raw = False
            if out:
                yield out
            data = self._decompressor.unconsumed_tail
            if not data and len(out) < _PIECE:
                return

    def flush(self) -> Iterator[bytes]:
        yield from self.decode(b"")
        if not self._decompressor.eof:
            out = self._decompressor.flush()
            if out:
                yield out


class _Decoded:
    """The body with its Content-Encoding undone layer by layer as the bytes arrive; every
    layer's output is counted, and more than `max_bytes` from any one ends the response."""

    def __init__(self, where: str, encodings: list[str], max_bytes: int) -> None:
        self.where = where
        self.max_bytes = max_bytes
        names = [e.strip().lower() for e in encodings]
        # Content-Encoding lists the codings in the order they were applied: undo the last first.
        # Unknown codings (and "identity") are passed through, as httpx does.
        self.layers = [_Inflate(n) for n in reversed(names) if n in ("gzip", "x-gzip", "deflate")]
        self.sizes = [0] * (len(self.layers) + 1)
        self.chunks: list[bytes] = []

    def feed(self, data: bytes) -> None:
        try:
            self._push(0, data)
        except zlib.error as exc:
            raise SourceError(
                f"{self.where}: cannot decode the compressed response: {exc}"
            ) from None

    def finish(self) -> bytes:
        try:
            for index, layer in enumerate(self.layers):
                for piece in layer.flush():
                    self._push(index + 1, piece)
        except zlib.error as exc:
            raise SourceError(
                f"{self.where}: cannot decode the compressed response: {exc}"
            ) from None
        return b"".join(self.chunks)

    def _push(self, index: int, data: bytes) -> None:
        """`data` into layer `index` (the raw body into 0; the last one's output is the body)."""
        self.sizes[index] += len(data)
        if self.sizes[index] > self.max_bytes:
            raise SourceError(f"{self.where}: response larger than {self.max_bytes} bytes")
        if index == len(self.layers):
            self.chunks.append(data)
            return
        for piece in self.layers[index].decode(data):
            self._push(index + 1, piece)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    with contextlib.suppress(ValueError):
        return float(value)
    return None


def _read_file(name: str, url: str, max_bytes: int) -> Response:
    path = Path(url[7:] if url[:7].lower() == "file://" else url)
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
