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

from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from digest.errors import InvalidInputError, LinkExpiredError

UNSUBSCRIBE = "unsubscribe"
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
