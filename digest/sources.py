"""Which feeds are due and when each is fetched next. Pure: every function takes ``now``."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from digest.errors import InvalidInputError
from digest.records import SOURCE_KINDS

DEFAULT_INTERVALS = {"news": 15 * 60, "blog": 60 * 60, "paper": 6 * 60 * 60}
MIN_INTERVAL = 60
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


def parse_duration(text: str) -> int:
    """Seconds in a duration like ``90s``, ``15m``, ``1h`` or ``2d``; raises ``InvalidInputError``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    number, unit = text[:-1], text[-1:]
    if unit not in units or not (number.isascii() and number.isdigit()) or int(number) <= 0:
        raise InvalidInputError(f"not a duration: {text!r} (use forms like 90s, 15m, 1h, 2d)")
    return int(number) * units[unit]


def interval_for(kind: str, override: int | None) -> int:
    """The fetch interval of a source: its own, else its kind's default."""
    return max(MIN_INTERVAL, override or DEFAULT_INTERVALS[kind])


def next_fetch_after_success(now: datetime, interval: int, rng: random.Random) -> datetime:
    """The next fetch, jittered so feeds added together do not fetch together."""
    spread = interval * JITTER
    return now + timedelta(seconds=interval + rng.uniform(-spread, spread))


def next_fetch_after_failure(now: datetime, interval: int, failures: int) -> datetime:
    """Exponential back-off from the source's interval, capped at a day."""
    delay = min(MAX_BACKOFF, interval * 2 ** max(0, failures - 1))
    return now + timedelta(seconds=delay)
