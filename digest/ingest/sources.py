"""Which feeds are due and when each is fetched next. Pure: every function takes ``now``."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from digest.errors import InvalidInputError
from digest.vocabulary import MAX_INTERVAL, MIN_INTERVAL, SOURCE_KINDS

MAX_BACKOFF = 24 * 60 * 60
MAX_FAILURES = 10
JITTER = 0.1


@dataclass(frozen=True, slots=True)
class SourceForFetch:
    """What the crawler needs to know about a source before fetching it."""

    id: int
    url: str
    kind: str
    interval: int
    etag: str | None
    last_modified: str | None
    consecutive_failures: int
    body_hash: str | None = None


def check_feed_url(url: str) -> str:
    """Return ``url`` stripped, or raise ``InvalidInputError``: only absolute http(s) URLs are feeds."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(f"not a feed URL: {url!r} (only http:// and https:// URLs are accepted)")
    return url


def check_kind(kind: str) -> str:
    """Return ``kind`` or raise ``InvalidInputError``."""
    if kind not in SOURCE_KINDS:
        raise InvalidInputError(f"unknown kind {kind!r}: use one of {', '.join(SOURCE_KINDS)}")
    return kind


def next_fetch_after_success(
    now: datetime, interval: int, rng: random.Random, *, publisher_hint: float | None = None
) -> datetime:
    """The next fetch: the interval, or longer if the publisher asks (``cache_hint``), clamped, jittered.

    Jitter (±10 %) keeps feeds added together from fetching together. Like miniflux, a publisher's hint
    can only make us wait longer, never shorter, and never more than a day.
    """
    delay = float(interval) if publisher_hint is None else max(float(interval), publisher_hint)
    delay = min(float(MAX_INTERVAL), max(float(MIN_INTERVAL), delay))
    spread = delay * JITTER
    return now + timedelta(seconds=delay + rng.uniform(-spread, spread))


def next_fetch_after_failure(
    now: datetime, interval: int, failures: int, *, retry_after: float | None = None
) -> datetime:
    """Exponential back-off from the source's interval, at least any ``Retry-After``, capped at a day."""
    delay = min(MAX_BACKOFF, interval * 2 ** max(0, failures - 1))
    if retry_after is not None:
        delay = min(MAX_BACKOFF, max(delay, int(retry_after)))
    return now + timedelta(seconds=delay)


def cache_hint(headers: Mapping[str, str], ttl_minutes: int | None, now: datetime) -> float | None:
    """Seconds the publisher asks us to wait: the largest of ``Cache-Control: max-age``, ``Expires`` and
    RSS ``<ttl>``; None when it says nothing usable. ``headers`` has lower-case names.
    """
    hints = [_max_age(headers.get("cache-control", "")), _expires(headers.get("expires"), now)]
    if ttl_minutes is not None and ttl_minutes > 0:
        hints.append(ttl_minutes * 60.0)
    present = [hint for hint in hints if hint is not None and hint > 0]
    return max(present) if present else None


def _max_age(cache_control: str) -> float | None:
    for directive in cache_control.lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name == "max-age" and value.strip().strip('"').isdigit():
            return float(value.strip().strip('"'))
    return None


def _expires(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()
