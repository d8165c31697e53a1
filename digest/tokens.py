"""Signed, purpose-bound links (healthchecks). A token for one purpose is refused for another.

Confirmation links expire, so they carry a timestamp. Unsubscribe and manage links must work for as long
as the emails that carry them exist (RFC 8058), and they are part of a digest's rendered bytes, so they
are deterministic: the same subscription always gets the same link, and a replay hashes the same.

Links that expire yet must stay deterministic or be checked against the caller's clock (a digest's "view in
browser" link is part of its bytes; an unsubscribe's undo is tested on a pinned clock) carry their own
deadline, ``"x"`` in Unix seconds, inside the signed payload (``make_until`` / ``read_until``) instead of
itsdangerous' timestamp, which is the signing machine's wall clock.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from digest.errors import InvalidInputError, LinkExpiredError

UNSUBSCRIBE = "unsubscribe"
# The VERP return path of a delivery (issue 19): a short signature, since it lives in an address's local part.
BOUNCE = "bounce"
MANAGE = "manage"
CONFIRM = "confirm"
# Re-subscribe one click after unsubscribing (issue 17), and a delivery's "view in browser" page.
UNDO = "undo-unsubscribe"
VIEW = "view-delivery"
EXPIRING = frozenset({CONFIRM})


def _serializer(secret: str, purpose: str) -> URLSafeSerializer | URLSafeTimedSerializer:
    salt = f"digest.{purpose}"
    return (
        URLSafeTimedSerializer(secret, salt=salt)
        if purpose in EXPIRING
        else URLSafeSerializer(secret, salt=salt)
    )


def make_token(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    """A URL-safe token carrying ``payload``, signed for ``purpose``."""
    return _serializer(secret, purpose).dumps(payload)


def read_token(secret: str, purpose: str, token: str, max_age: int | None = None) -> dict[str, Any]:
    """The payload of a token made for ``purpose``; ``InvalidInputError`` if tampered, foreign or expired.

    ``max_age`` (seconds) applies to purposes that expire.
    """
    serializer = _serializer(secret, purpose)
    try:
        if isinstance(serializer, URLSafeTimedSerializer):
            payload = serializer.loads(token, max_age=max_age)
        else:
            payload = serializer.loads(token)
    except SignatureExpired:
        raise InvalidInputError("this link has expired") from None
    except BadSignature:
        raise InvalidInputError("this link is not valid") from None
    if not isinstance(payload, dict):
        raise InvalidInputError("this link is not valid")
    return payload


def make_until(secret: str, purpose: str, payload: dict[str, Any], until: datetime) -> str:
    """A token like ``make_token``'s that ``read_until`` refuses after ``until`` (whole seconds)."""
    return make_token(secret, purpose, {**payload, "x": int(until.timestamp())})


def read_until(secret: str, purpose: str, token: str, now: datetime) -> tuple[dict[str, Any], datetime]:
    """The payload of a ``make_until`` token (without its deadline) and the deadline; ``InvalidInputError``
    if tampered or foreign, ``LinkExpiredError`` once ``now`` is past the deadline."""
    payload = read_token(secret, purpose, token)
    deadline = payload.pop("x", None)
    if not isinstance(deadline, int):
        raise InvalidInputError("this link is not valid")
    until = datetime.fromtimestamp(deadline, now.tzinfo)
    if now > until:
        raise LinkExpiredError("this link has expired", until)
    return payload, until


# 80 bits: forging one costs 2^80 tries against a mailbox that reads a few messages a minute.
SHORT_SIGNATURE = 20


def short_signature(secret: str, purpose: str, value: str) -> str:
    """A short, lower-case hex HMAC-SHA256 of ``value`` for ``purpose``: it fits an address's local part,
    which mail systems may lower-case on the way back (RFC 5321 2.4: only the final host reads its case)."""
    mac = hmac.new(f"{secret}\x00digest.{purpose}".encode(), value.encode(), hashlib.sha256)
    return mac.hexdigest()[:SHORT_SIGNATURE]


def check_short_signature(secret: str, purpose: str, value: str, signature: str) -> bool:
    """Whether ``signature`` is ``short_signature`` of ``value`` for ``purpose`` (in constant time)."""
    return hmac.compare_digest(short_signature(secret, purpose, value), signature.lower())
