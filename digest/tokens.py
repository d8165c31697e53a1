"""Signed, purpose-bound links (healthchecks). A token for one purpose is refused for another."""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from digest.errors import InvalidInputError

UNSUBSCRIBE = "unsubscribe"
MANAGE = "manage"
CONFIRM = "confirm"


def make_token(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    """A URL-safe token carrying ``payload``, signed for ``purpose``."""
    return URLSafeTimedSerializer(secret, salt=f"digest.{purpose}").dumps(payload)


def read_token(secret: str, purpose: str, token: str, max_age: int | None = None) -> dict[str, Any]:
    """The payload of a token made for ``purpose``; ``InvalidInputError`` if tampered, foreign or expired."""
    serializer = URLSafeTimedSerializer(secret, salt=f"digest.{purpose}")
    try:
        payload = serializer.loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidInputError("this link has expired") from None
    except BadSignature:
        raise InvalidInputError("this link is not valid") from None
    if not isinstance(payload, dict):
        raise InvalidInputError("this link is not valid")
    return payload
