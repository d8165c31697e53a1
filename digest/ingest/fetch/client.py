"""Conditional GETs with limits and redirect bookkeeping: ``AsyncFetcher`` and its sync facade ``Fetcher``."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar

import httpx

from digest import __version__
from digest.config import HostLimit
from digest.errors import FetchError
from digest.ingest.fetch.guard import guard_transport
from digest.ingest.politeness import Gate, Lease
from digest.records import FetchResult

T = TypeVar("T")

ACCEPT = "application/atom+xml, application/rss+xml, application/feed+json, application/xml;q=0.9, */*;q=0.5"
# Said explicitly rather than left to httpx, which would also offer zstd if zstandard were installed.
ACCEPT_ENCODING = "gzip, deflate, br"
# 408, 425 and 429 mean "later"; other 4xx will not get better by themselves.
TRANSIENT_4XX = frozenset({408, 425, 429})
# Not httpx's is_redirect, which also counts 304 Not Modified. RFC 9110 §15.4: only 301 and 308 are
# permanent, so only a chain made of them moves the stored feed URL.
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})


def user_agent(base_url: str) -> str:
    """The User-Agent naming this service and where its operator can be found."""
    return f"digest/{__version__} (+{base_url})"


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """Limits applied to every fetch."""

    connect_timeout: float = 10.0
    # A hard deadline for the whole fetch (connect, headers, body, redirects), so a server trickling a
    # byte a second is cut as surely as one that never answers.
    total_timeout: float = 30.0
    max_bytes: int = 10_000_000
    max_redirects: int = 5
    per_host: int = 2
    user_agent: str = f"digest/{__version__}"
    # Refuse hosts that resolve to private, loopback, link-local, multicast or reserved addresses (SSRF).
    block_private: bool = True
    # DIGEST_HOST_LIMITS: hosts whose requests every process counts together, through the fetcher's gate.
    host_limits: Mapping[str, HostLimit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if min(self.connect_timeout, self.total_timeout) <= 0 or self.max_bytes <= 0 or self.per_host < 1:
            raise ValueError(f"timeouts, max_bytes and per_host must be positive: {self}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects cannot be negative: {self}")


# -- fetching ------------------------------------------------------------------------------------------------


class _Redirect(NamedTuple):
    status: int
    location: str


class AsyncFetcher:
    """Conditional GETs on one pooled ``httpx.AsyncClient``, at most ``per_host`` at once per host in this
    process, and for the hosts of ``config.host_limits`` their limits across processes (``gate``)."""

    def __init__(self, config: FetchConfig, gate: Gate | None = None) -> None:
        self.config = config
        self._gate = gate
        transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20), retries=0
        )
        if config.block_private:
            guard_transport(transport)
        self._client = httpx.AsyncClient(
            transport=transport,
            # The read timeout is only a backstop: the hard deadline is asyncio.timeout_at in _fetch.
            timeout=httpx.Timeout(config.total_timeout, connect=config.connect_timeout),
            follow_redirects=False,
            # No proxies or .netrc from the environment: the guard must see the feed's own host.
            trust_env=False,
            headers={"User-Agent": config.user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
        )
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET ``url`` conditionally. Raises ``FetchError`` for anything that is not a usable answer."""
        return await self._fetch(url, etag, last_modified, self.config.max_bytes)

    async def aclose(self) -> None:
        """Close the pooled connections (and the gate's)."""
        await self._client.aclose()
        if self._gate is not None:
            self._gate.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _fetch(
        self, url: str, etag: str | None, last_modified: str | None, max_bytes: int
    ) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current, permanent = url, True
        deadline: float | None = None
        for _ in range(self.config.max_redirects + 1):
            target = _http_url(current)
            async with self._slot(target.host), self._polite(target.host):
                # The deadline starts once the first request may go out: waiting for a slot is not the
                # server's fault.
                deadline = deadline or asyncio.get_running_loop().time() + self.config.total_timeout
                try:
                    async with asyncio.timeout_at(deadline):
                        answer = await self._get(current, target, headers, max_bytes)
                except FetchError:
                    raise
                except Exception as exc:
                    raise _describe(exc, target, self.config) from None
            if isinstance(answer, FetchResult):
                return replace(answer, permanent_url=current) if permanent and current != url else answer
            permanent = permanent and answer.status in PERMANENT_REDIRECTS
            current = answer.location
        raise FetchError(f"more than {self.config.max_redirects} redirects from {url}")

    @asynccontextmanager
    async def _polite(self, host: str) -> AsyncIterator[None]:
        """Hold a slot of the host's limit shared by every process, waiting for one if need be."""
        limit = self.config.host_limits.get(host.lower()) if self._gate is not None else None
        if limit is None or self._gate is None:
            yield
            return
        gate = self._gate
        while True:
            # The gate is a database or Redis: a blocking call, made off the event loop. Its time is the
            # wall clock because the spacing is between real requests.
            got = await asyncio.to_thread(gate.try_acquire, host, limit, _wall_clock)
            if isinstance(got, Lease):
                break
            await asyncio.sleep(got)
        try:
            yield
        finally:
            await asyncio.to_thread(gate.release, got, _wall_clock)

    def _slot(self, host: str) -> asyncio.Semaphore:
        slot = self._slots.get(host)
        if slot is None:
            slot = self._slots[host] = asyncio.Semaphore(self.config.per_host)
        return slot

    async def _get(
        self, current: str, url: httpx.URL, headers: dict[str, str], max_bytes: int
    ) -> FetchResult | _Redirect:
        async with self._client.stream("GET", url, headers=headers) as response:
            code = response.status_code
            if code in REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise FetchError(f"HTTP {code} without a Location header from {url}", status=code)
                return _Redirect(code, str(response.url.join(location)))
            # Retry-After dates are relative to the clock now; fetch is an edge, so it reads it here.
            _raise_for_status(response, now=time.time())
            content = b"" if code == 304 else await _read_capped(response, max_bytes)
            return FetchResult(
                url=current,
                status_code=code,
                content=content,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                content_type=response.headers.get("content-type", ""),
                headers=tuple(response.headers.multi_items()),
            )


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def _http_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError(f"{url!r} is not a valid URL: {exc}", permanent=True) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError(f"cannot fetch {url}: only http:// and https:// URLs are supported", permanent=True)
    return parsed


def _raise_for_status(response: httpx.Response, *, now: float) -> None:
    code = response.status_code
    if (200 <= code < 300 and code != 204) or code == 304:
        return
    if code == 204:
        raise FetchError("HTTP 204: the server sent no feed", status=code)
    if code == 410:
        raise FetchError("HTTP 410 Gone: the feed was removed", permanent=True, status=code)
    transient = code >= 500 or code in TRANSIENT_4XX
    raise FetchError(
        f"HTTP {code} {response.reason_phrase}".strip(),
        permanent=not transient,
        status=code,
        retry_after=_retry_after(response.headers.get("retry-after"), now) if transient else None,
    )


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After of delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(
            f"feed is {declared} bytes, more than the {max_bytes} allowed", status=response.status_code
        )
    chunks, size = [], 0
    # Decoded bytes are counted, so a small gzip or brotli bomb is cut as well.
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(
                f"feed is larger than the {max_bytes} bytes allowed", status=response.status_code
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _describe(exc: BaseException, url: httpx.URL, config: FetchConfig) -> FetchError:
    """One readable sentence for an httpx, httpcore or socket error."""
    host = url.host
    causes = _causes(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return FetchError(f"timed out after {config.connect_timeout:g} s connecting to {host}")
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return FetchError(f"timed out after {config.total_timeout:g} s fetching {url}")
    if any(isinstance(cause, socket.gaierror) for cause in causes):
        return FetchError(f"cannot resolve {host}")
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return FetchError(f"could not connect to {host}: connection refused")
    if isinstance(exc, httpx.ConnectError):
        return FetchError(f"could not connect to {host}: {exc}")
    if isinstance(exc, httpx.DecodingError):
        return FetchError(f"could not decode the body of {url}: {exc}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return FetchError(f"{host} broke the HTTP protocol: {exc}")
    if isinstance(exc, httpx.InvalidURL):
        return FetchError(f"{url} redirected to an invalid URL: {exc}", permanent=True)
    if isinstance(exc, httpx.HTTPError | httpx.StreamError | OSError):
        return FetchError(f"could not fetch {url}: {exc or type(exc).__name__}")
    raise exc


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


# -- the sync facade ---------------------------------------------------------------------------------------


class Fetcher:
    """Thread-safe sync facade: one event loop in a daemon thread runs one ``AsyncFetcher`` for all callers.

    Create it in the process that uses it (after a Celery prefork, not before: threads do not survive fork).
    """

    def __init__(self, config: FetchConfig, gate: Gate | None = None) -> None:
        self.config = config
        self._async = AsyncFetcher(config, gate)
        self._loop = asyncio.new_event_loop()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run_loop, name="digest-fetch", daemon=True)
        self._thread.start()

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET ``url`` conditionally; blocks this thread only. Raises ``FetchError``."""
        return self._call(lambda: self._async.fetch(url, etag=etag, last_modified=last_modified))

    def close(self) -> None:
        """Close the pooled connections and stop the loop. Calling it twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._async.aclose(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        with self._lock:
            if self._closed:
                raise RuntimeError("this Fetcher is closed")
            future = asyncio.run_coroutine_threadsafe(make(), self._loop)
        return future.result()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()
