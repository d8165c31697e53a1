"""Abuse limits: count hits per key in fixed windows, in Redis when one is configured, else in the database.

Fixed windows (a UTC day, an hour) are coarse — a burst can straddle a boundary and get twice the limit
once — but they need one counter per key and never a scan, which is what an abuse limit wants.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.models import RateCount

REDIS_SCHEMES = ("redis", "rediss")


class Limiter(Protocol):
    """Counts hits of a key within the current window."""

    def hit(self, key: str, window: timedelta, now: datetime) -> int:
        """Count one hit of ``key``; return the hits in the window holding ``now``, this one included."""

    def close(self) -> None:
        """Release connections."""


def window_start(window: timedelta, now: datetime) -> datetime:
    """The start of the fixed window (aligned to the Unix epoch, in UTC) that holds ``now``."""
    seconds = int(window.total_seconds())
    stamp = int(now.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, UTC)


def retry_after(window: timedelta, now: datetime) -> int:
    """Whole seconds until the window holding ``now`` ends: the Retry-After of a 429 (RFC 9110 §10.2.3),
    rounded up so a client that obeys it is let in."""
    return max(1, math.ceil((window_start(window, now) + window - now).total_seconds()))


class DatabaseLimiter:
    """One row per key and window, incremented by an upsert so concurrent hits are all counted."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def hit(self, key: str, window: timedelta, now: datetime) -> int:
        """Count one hit; older windows of the same key are deleted on the way, so the table stays small."""
        start = window_start(window, now)
        with transaction(self.sessions) as session:
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            upsert = (
                insert(RateCount)
                .values(key=key, window_start=start, count=1)
                .on_conflict_do_update(
                    index_elements=["key", "window_start"], set_={"count": RateCount.count + 1}
                )
                .returning(RateCount.count)
            )
            count = int(session.execute(upsert).scalar_one())
            session.execute(delete(RateCount).where(RateCount.key == key, RateCount.window_start < start))
        return count

    def close(self) -> None:
        """Nothing to release: sessions belong to the runtime."""


class RedisLimiter:
    """INCR on a key per window that expires with its window."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)

    def hit(self, key: str, window: timedelta, now: datetime) -> int:
        """Count one hit in Redis."""
        start = window_start(window, now)
        name = f"digest:limit:{key}:{int(start.timestamp())}"
        pipeline = self.client.pipeline()
        pipeline.incr(name)
        pipeline.expire(name, int(window.total_seconds()) + 60)
        count, _ = pipeline.execute()
        return int(count)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def limiter_for(broker_url: str, sessions: sessionmaker[Session]) -> Limiter:
    """Redis when the broker is Redis (the only Redis URL settings carry), else the database."""
    if urlsplit(broker_url).scheme in REDIS_SCHEMES:
        return RedisLimiter(broker_url)
    return DatabaseLimiter(sessions)
