"""The only package that speaks HTTP: conditional GET with limits, redirect bookkeeping and an SSRF guard.

    Fetcher.fetch (any thread, in that thread)
        -> per-host slot -> GET one hop (guarded connect, hard deadline) -> redirect? next hop
        -> status -> body streamed under a size cap -> FetchResult | FetchError

One pooled ``httpx.Client`` per process; callers in any thread share its kept-alive connections and its
per-host limits.
"""

from __future__ import annotations

from digest.ingest.fetch.client import (
    ACCEPT,
    ACCEPT_ENCODING,
    PERMANENT_REDIRECTS,
    REDIRECTS,
    TRANSIENT_4XX,
    FetchConfig,
    Fetcher,
    user_agent,
)
from digest.ingest.fetch.guard import GuardedBackend, guard_transport, is_public_address

__all__ = [
    "ACCEPT",
    "ACCEPT_ENCODING",
    "PERMANENT_REDIRECTS",
    "REDIRECTS",
    "TRANSIENT_4XX",
    "FetchConfig",
    "Fetcher",
    "GuardedBackend",
    "guard_transport",
    "is_public_address",
    "user_agent",
]
