"""The only package that speaks HTTP: conditional GET with limits, redirect bookkeeping and an SSRF guard.

    Fetcher.fetch (any thread) -> the fetch loop's thread -> AsyncFetcher.fetch
        -> per-host slot -> GET one hop (guarded connect, hard deadline) -> redirect? next hop
        -> status -> body streamed under a size cap -> FetchResult | FetchError

One event loop per process owns one pooled ``httpx.AsyncClient``; callers in any thread share its
connections and its per-host limits through the sync ``Fetcher`` facade.
"""

from __future__ import annotations

from digest.ingest.fetch.client import (
    ACCEPT,
    ACCEPT_ENCODING,
    PERMANENT_REDIRECTS,
    REDIRECTS,
    TRANSIENT_4XX,
    AsyncFetcher,
    FetchConfig,
    Fetcher,
    user_agent,
)
from digest.ingest.fetch.guard import AsyncGuardedBackend, guard_transport, is_public_address

__all__ = [
    "ACCEPT",
    "ACCEPT_ENCODING",
    "PERMANENT_REDIRECTS",
    "REDIRECTS",
    "TRANSIENT_4XX",
    "AsyncFetcher",
    "AsyncGuardedBackend",
    "FetchConfig",
    "Fetcher",
    "guard_transport",
    "is_public_address",
    "user_agent",
]
