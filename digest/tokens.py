"""Signed, purpose-bound links (healthchecks). A token for one purpose is refused for another.

Confirmation links expire, so they carry a timestamp. Unsubscribe and manage links must work for as long
as the emails that carry them exist (RFC 8058), and they are part of a digest's rendered bytes, so they
are deterministic: the same subscription always gets the same link, and a replay hashes the same.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from digest.errors import InvalidInputError

UNSUBSCRIBE = "unsubscribe"
MANAGE = "manage"
CONFIRM = "confirm"
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
