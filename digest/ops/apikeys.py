"""API keys for programmatic use of the stream, and the per-caller rate limit.

A key is shown once, when it is created (``digest apikeys create``); only its SHA-256 is stored, with its
first characters in clear so a request finds its row by an indexed lookup. A key is random (192 bits), so
a fast unsalted hash is enough: there is nothing to brute-force that a salt or a slow hash would protect
(unlike a password). The final comparison is constant-time anyway, so the time a request takes says
nothing about how close a guess was.

A key holds scopes (issue 19), space-separated in one column as OAuth writes them (RFC 6749 §3.3):
``read`` (resolve, skills, trends), ``subscribe`` (create and manage the subscriptions and alerts the key
made) and ``admin`` (every scope, over every subscription). Keys made before scopes existed read.

A caller with a valid key is limited per key (``DIGEST_API_RATE_KEY`` per minute), anyone else per
client IP (``DIGEST_API_RATE_IP``, lower): counted in the shared limiter (``digest.ratelimit``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import DigestError, InvalidInputError, NotFoundError
from digest.models import ApiKey
from digest.ops import ratelimit
from digest.ops.ratelimit import Limiter

KEY_PREFIX = "dg_"
# 24 random bytes are 32 URL-safe characters.
KEY_BYTES = 24
KEY_LENGTH = len(KEY_PREFIX) + 32
# Stored in clear to find the row; 8 random characters (48 bits) leave no useful hint about the rest.
LOOKUP_CHARS = len(KEY_PREFIX) + 8
NAME_MAX = 100
RATE_WINDOW = timedelta(minutes=1)
# ``last_used_at`` is written at most this often per key, so a busy key does not write on every request.
USE_RESOLUTION = timedelta(minutes=1)


READ, SUBSCRIBE, ADMIN = "read", "subscribe", "admin"
SCOPES = (READ, SUBSCRIBE, ADMIN)


class InvalidKeyError(DigestError):
    """An API key that is unknown, malformed or revoked (HTTP 401)."""


class ScopeError(DigestError):
    """A valid key without the scope a route needs (HTTP 403)."""


class RateLimitedError(DigestError):
    """A caller used up its requests for this window (HTTP 429); ``retry_after`` seconds until the next."""

    permanent = False

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as listed: never the key itself."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    scopes: tuple[str, ...] = (READ,)

    def allows(self, scope: str) -> bool:
        """Whether this key may act in ``scope``: it holds it, or holds ``admin``."""
        return scope in self.scopes or ADMIN in self.scopes

    def require(self, scope: str) -> None:
        """``ScopeError`` unless this key may act in ``scope``."""
        if not self.allows(scope):
            raise ScopeError(
                f"the API key {self.name!r} lacks the {scope!r} scope "
                f"(it has {', '.join(self.scopes)}; see `digest apikeys create --scope`)"
            )


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """The scopes asked for, without repeats, in the order of ``SCOPES``; ``read`` if none were named."""
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise InvalidInputError(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in scopes) or (READ,)


def hash_key(key: str) -> str:
    """The SHA-256 (hex) stored for ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


def create(
    session: Session, name: str, now: datetime, scopes: Sequence[str] = (READ,)
) -> tuple[ApiKeyInfo, str]:
    """A new key called ``name`` with ``scopes``: its row, and the key itself, which is shown once and
    stored only hashed."""
    granted = check_scopes(scopes)
    name = name.strip()
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise InvalidInputError(f"an API key name is 1 to {NAME_MAX} printable characters")
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise InvalidInputError(f"an API key called {name!r} exists already: pick another name")
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    row = ApiKey(
        name=name,
        prefix=key[:LOOKUP_CHARS],
        key_hash=hash_key(key),
        created_at=now,
        scopes=" ".join(granted),
    )
    session.add(row)
    session.flush()
    return _info(row), key


def list_keys(session: Session) -> list[ApiKeyInfo]:
    """Every key, revoked ones included, oldest first."""
    return [_info(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke(session: Session, name: str, now: datetime) -> tuple[ApiKeyInfo, bool]:
    """Revoke the key called ``name`` from ``now`` on; the second value is False if it already was."""
    row = session.scalars(select(ApiKey).where(ApiKey.name == name.strip())).first()
    if row is None:
        raise NotFoundError(f"no API key called {name!r} (see `digest apikeys list`)")
    if row.revoked_at is not None:
        return _info(row), False
    row.revoked_at = now
    return _info(row), True


def authenticate(session: Session, key: str, now: datetime) -> ApiKeyInfo:
    """The active key ``key`` is; ``InvalidKeyError`` otherwise. Notes when it was used."""
    refused = InvalidKeyError("this API key is not valid or has been revoked")
    if len(key) != KEY_LENGTH or not key.startswith(KEY_PREFIX):
        raise refused
    digest = hash_key(key)
    for row in session.scalars(select(ApiKey).where(ApiKey.prefix == key[:LOOKUP_CHARS])):
        if hmac.compare_digest(row.key_hash, digest):
            if row.revoked_at is not None:
                raise refused
            if row.last_used_at is None or now - row.last_used_at >= USE_RESOLUTION:
                row.last_used_at = now
            return _info(row)
    raise refused


def throttle(limiter: Limiter, bucket: str, limit: int, now: datetime) -> None:
    """Count one request of ``bucket``; ``RateLimitedError`` once it passes ``limit`` in this minute."""
    if limiter.hit(bucket, RATE_WINDOW, now) <= limit:
        return
    retry_after = ratelimit.retry_after(RATE_WINDOW, now)
    raise RateLimitedError(
        f"too many requests: at most {limit} a minute; try again in {retry_after} s", retry_after=retry_after
    )


def _info(row: ApiKey) -> ApiKeyInfo:
    scopes = tuple(row.scopes.split())
    return ApiKeyInfo(row.id, row.name, row.prefix, row.created_at, row.last_used_at, row.revoked_at, scopes)
