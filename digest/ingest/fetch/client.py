"""Conditional GETs with limits and redirect bookkeeping: ``Fetcher``."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import NamedTuple, Self

import httpx

from digest import __version__
from digest.config import HostLimit
from digest.errors import FetchError
from digest.ingest.fetch.deadline import DeadlineBackend, until
from digest.ingest.fetch.guard import GuardedBackend, wrap_backend
from digest.ingest.politeness import Gate, Lease
from digest.records import FetchResult

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


class Fetcher:
    """Conditional GETs on one pooled ``httpx.Client`` shared by every thread of the process: at most
    ``per_host`` at once per host in this process, and for the hosts of ``config.host_limits`` their limits
    across processes (``gate``).

    Each fetch runs in its caller's thread on a kept-alive connection to the host: no event loop to hand
    requests to and back (issue 18: the async client and the hand-over cost about 2 ms a request, the sync
    one about 0.6 ms). Create it in the process that uses it (after a Celery prefork, not before).
    """

    def __init__(self, config: FetchConfig, gate: Gate | None = None) -> None:
        self.config = config
        self._gate = gate
        # Enough idle connections kept alive for every host of a crawl round to reuse its own.
        transport = httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100), retries=0
        )
        guarded = config.block_private
        wrap_backend(transport, lambda inner: DeadlineBackend(GuardedBackend(inner) if guarded else inner))
        self._client = httpx.Client(
            transport=transport,
            # Backstops: the hard deadline over the whole fetch is deadline.until in _fetch.
            timeout=httpx.Timeout(config.total_timeout, connect=config.connect_timeout),
            follow_redirects=False,
            # No proxies or .netrc from the environment: the guard must see the feed's own host.
            trust_env=False,
            headers={"User-Agent": config.user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
        )
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._closed = False

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET ``url`` conditionally; blocks this thread only. Raises ``FetchError``."""
        if self._closed:
            raise RuntimeError("this Fetcher is closed")
        return self._fetch(url, etag, last_modified, self.config.max_bytes)

    def close(self) -> None:
        """Close the pooled connections (and the gate's). Calling it twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._client.close()
        if self._gate is not None:
            self._gate.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _fetch(self, url: str, etag: str | None, last_modified: str | None, max_bytes: int) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current, permanent = url, True
        deadline: float | None = None
        for _ in range(self.config.max_redirects + 1):
            target = _http_url(current)
            with self._slot(target.host), self._polite(target.host):
                # The deadline starts once the first request may go out: waiting for a slot is not the
                # server's fault.
                deadline = deadline or time.monotonic() + self.config.total_timeout
                try:
                    with until(deadline):
                        answer = self._get(current, target, headers, max_bytes)
                except FetchError:
                    raise
                except Exception as exc:
                    raise _describe(exc, target, self.config) from None
            if isinstance(answer, FetchResult):
                return replace(answer, permanent_url=current) if permanent and current != url else answer
            permanent = permanent and answer.status in PERMANENT_REDIRECTS
            current = answer.location
        raise FetchError(f"more than {self.config.max_redirects} redirects from {url}")

    @contextmanager
    def _polite(self, host: str) -> Iterator[None]:
        """Hold a slot of the host's limit shared by every process, waiting for one if need be."""
        limit = self.config.host_limits.get(host.lower()) if self._gate is not None else None
        if limit is None or self._gate is None:
            yield
            return
        gate = self._gate
        while True:
            # The gate's time is the wall clock because the spacing is between real requests.
            got = gate.try_acquire(host, limit, _wall_clock)
            if isinstance(got, Lease):
                break
            time.sleep(got)  # the gate said how long until a slot may be free
        try:
            yield
        finally:
            gate.release(got, _wall_clock)

    def _slot(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            slot = self._slots.get(host)
            if slot is None:
                slot = self._slots[host] = threading.BoundedSemaphore(self.config.per_host)
            return slot

    def _get(
        self, current: str, url: httpx.URL, headers: dict[str, str], max_bytes: int
    ) -> FetchResult | _Redirect:
        with self._client.stream("GET", url, headers=headers) as response:
            code = response.status_code
            if code in REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise FetchError(f"HTTP {code} without a Location header from {url}", status=code)
                return _Redirect(code, str(response.url.join(location)))
            # Retry-After dates are relative to the clock now; fetch is an edge, so it reads it here.
            _raise_for_status(response, now=time.time())
            content = b"" if code == 304 else _read_capped(response, max_bytes)
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


def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(
            f"feed is {declared} bytes, more than the {max_bytes} allowed", status=response.status_code
        )
    chunks, size = [], 0
    # Decoded bytes are counted, so a small gzip or brotli bomb is cut as well.
    for chunk in response.iter_bytes():
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
