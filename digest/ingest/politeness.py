"""Politeness per host (issue 16): at most N requests at once to a host, and a minimum spacing between their
starts, honoured by every process of a deployment.

    DIGEST_HOST_LIMITS="export.arxiv.org=1/3s,hnrss.org=2" -> config.parse_host_limits -> {host: HostLimit}
    fetch -> gate.try_acquire(host, limit, clock) -> Lease | seconds to wait -> GET -> gate.release(lease)

The spacing counts from a request's start and from its end: what a server sees as the start of a request
can lag the moment its slot was taken, so counting from the end is what keeps the promise on a busy
machine. With ``1/3s`` that is one request at a time and 3 s of quiet after each.

arXiv's API terms ask for one request at a time and 3 s between them; a crawl has many workers in several
processes, so a per-process semaphore is not enough. The gate keeps the state where every process sees it:
in Redis when the broker is Redis (one Lua script, atomic), else in the database (a locked row per host).
A lease expires after ``LEASE`` so a process that died holding one does not block the host for good.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from digest.config import HostLimit
from digest.db import transaction
from digest.models import HostGate, HostLease

REDIS_SCHEMES = ("redis", "rediss")
# Longer than any fetch (DIGEST_HTTP_TIMEOUT is at most 300 s): a live holder is never overtaken.
LEASE = timedelta(seconds=330)
# How long to wait before asking again when the host is full (a slot may free up at any moment).
RETRY = 0.05
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Lease:
    """A slot held on a host until released (or until it expires)."""

    host: str
    token: str
    spacing: timedelta


class Gate(Protocol):
    """Where the hosts' slots are kept, shared by every process."""

    def try_acquire(self, host: str, limit: HostLimit, clock: Callable[[], datetime]) -> Lease | float:
        """A slot on ``host``, or the seconds to wait before asking again. ``clock`` is read once the
        host's state is locked: a time read before waiting for the lock would space requests too little."""

    def release(self, lease: Lease, clock: Callable[[], datetime]) -> None:
        """Give a slot back. The spacing also counts from here: a request's start, as the server sees it,
        may lag its slot (a busy machine), so the next one waits ``spacing`` after this one ended too."""

    def close(self) -> None:
        """Release connections."""


class DatabaseGate:
    """A row per host (its next allowed start) locked while a slot is taken, and a row per lease."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def try_acquire(self, host: str, limit: HostLimit, clock: Callable[[], datetime]) -> Lease | float:
        """Take a slot when the host has one free and its spacing has passed."""
        with transaction(self.sessions) as session:
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            session.execute(insert(HostGate).values(host=host, next_start=EPOCH).on_conflict_do_nothing())
            # The UPDATE takes the row's lock (PostgreSQL) or the write lock (SQLite) until commit, so two
            # processes never both see a free slot.
            session.execute(update(HostGate).where(HostGate.host == host).values(host=host))
            now = clock()
            next_start = session.scalar(select(HostGate.next_start).where(HostGate.host == host))
            session.execute(delete(HostLease).where(HostLease.host == host, HostLease.expires_at <= now))
            held = session.scalar(select(func.count()).select_from(HostLease).where(HostLease.host == host))
            if next_start is not None and next_start > now:
                return (next_start - now).total_seconds()
            if (held or 0) >= limit.concurrency:
                return RETRY
            token = secrets.token_hex(8)
            session.add(HostLease(host=host, token=token, expires_at=now + LEASE))
            session.execute(
                update(HostGate).where(HostGate.host == host).values(next_start=now + limit.spacing)
            )
        return Lease(host, token, limit.spacing)

    def release(self, lease: Lease, clock: Callable[[], datetime]) -> None:
        """Delete the lease's row and push the host's next start to at least ``spacing`` from now."""
        with transaction(self.sessions) as session:
            session.execute(update(HostGate).where(HostGate.host == lease.host).values(host=lease.host))
            later = clock() + lease.spacing
            session.execute(
                update(HostGate)
                .where(HostGate.host == lease.host, HostGate.next_start < later)
                .values(next_start=later)
            )
            session.execute(delete(HostLease).where(HostLease.token == lease.token))

    def close(self) -> None:
        """Nothing to release: sessions belong to the runtime."""


# KEYS: the host's lease set (token -> expiry, ms) and its next allowed start (ms).
# ARGV: now, concurrency, spacing, lease length (ms), token. Returns 0 when taken, else ms to wait.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local now = tonumber(ARGV[1])
local next_start = tonumber(redis.call('GET', KEYS[2]) or '0')
if next_start > now then return next_start - now end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[5])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('SET', KEYS[2], now + tonumber(ARGV[3]), 'PX', tonumber(ARGV[3]) + 1)
return 0
"""
# KEYS as above; ARGV: now, spacing (ms), token.
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[3])
local later = tonumber(ARGV[1]) + tonumber(ARGV[2])
if later > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], later, 'PX', tonumber(ARGV[2]) + 1)
end
"""


class RedisGate:
    """The same rules in Redis, decided by one Lua script so they are atomic across processes."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)

    def try_acquire(self, host: str, limit: HostLimit, clock: Callable[[], datetime]) -> Lease | float:
        """Run the script; a token in the host's set is the slot."""
        token = secrets.token_hex(8)
        waited = int(
            self._acquire(
                keys=_keys(host),
                args=[
                    int(clock().timestamp() * 1000),
                    limit.concurrency,
                    int(limit.spacing.total_seconds() * 1000),
                    int(LEASE.total_seconds() * 1000),
                    token,
                ],
            )
        )
        if waited == 0:
            return Lease(host, token, limit.spacing)
        return RETRY if waited < 0 else waited / 1000

    def release(self, lease: Lease, clock: Callable[[], datetime]) -> None:
        """Remove the token from the host's set and push its next start."""
        spacing = int(lease.spacing.total_seconds() * 1000)
        self._release(keys=_keys(lease.host), args=[int(clock().timestamp() * 1000), spacing, lease.token])

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def _keys(host: str) -> list[str]:
    return [f"digest:host:{host}:leases", f"digest:host:{host}:next"]


def gate_for(broker_url: str, sessions: sessionmaker[Session]) -> Gate:
    """Redis when the broker is Redis, else the database (as ``ops.ratelimit`` chooses)."""
    if urlsplit(broker_url).scheme in REDIS_SCHEMES:
        return RedisGate(broker_url)
    return DatabaseGate(sessions)
