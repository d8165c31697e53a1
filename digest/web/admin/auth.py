"""Who may enter /admin: the token compared in constant time, the session cookie, a bearer's form."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from digest.errors import InvalidInputError
from digest.models import Setting
from digest.web import security

COOKIE = "digest_admin"
SESSION_MAX_AGE = 12 * 3600
# The generation every session cookie carries; logging out moves it on, so a cookie copied before the
# logout is refused by every web process at once (issue 14, finding 10). In the ``settings`` table.
GENERATION_KEY = "admin.session_generation"


@dataclass(frozen=True, slots=True)
class Admin:
    """An authenticated admin request, and how it proved itself: ``cookie`` or ``bearer``."""

    via: str


def token_matches(given: str, expected: str) -> bool:
    """True if ``given`` is ``expected``, in time that does not depend on how much of it matches.

    Compared as bytes: ``compare_digest`` raises on non-ASCII text, and a wrong guess must just fail.
    """
    return hmac.compare_digest(given.encode(), expected.encode())


def session_cookie(secret: str, admin_token: str, generation: int) -> str:
    """The signed value of an admin session cookie for the token now configured and this generation."""
    return _sessions(secret).dumps({"f": _fingerprint(secret, admin_token), "g": generation})


def session_generation(session: Session) -> int:
    """The generation a session cookie must carry to be valid now."""
    row = session.get(Setting, GENERATION_KEY)
    value = row.value.get("generation") if row is not None else 0
    return value if isinstance(value, int) else 0


def end_sessions(session: Session, now: datetime) -> None:
    """Refuse every session cookie made before now (logout)."""
    generation = session_generation(session) + 1
    session.merge(Setting(key=GENERATION_KEY, value={"generation": generation}, updated_at=now))


def _sessions(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="digest.admin-session")


def _fingerprint(secret: str, admin_token: str) -> str:
    return hmac.new(secret.encode(), admin_token.encode(), hashlib.sha256).hexdigest()


def valid_session(secret: str, admin_token: str, cookie: str, generation: int) -> bool:
    """True if ``cookie`` is an unexpired session signed here for the token now configured, made since the
    last logout (``generation``)."""
    if not cookie:
        return False
    try:
        payload = _sessions(secret).loads(cookie, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return False
    if not isinstance(payload, dict) or payload.get("g") != generation:
        return False
    fingerprint = payload.get("f")
    return isinstance(fingerprint, str) and token_matches(fingerprint, _fingerprint(secret, admin_token))


async def plain_form(request: Request) -> dict[str, list[str]]:
    """A bearer request's form: no CSRF token, the same refusal of files and line breaks."""
    data = await request.form()
    fields: dict[str, list[str]] = {}
    for key, value in data.multi_items():
        if not isinstance(value, str):
            raise InvalidInputError("files cannot be uploaded here")
        fields.setdefault(key, []).append(value)
    security.refuse_line_breaks([*fields, *(v for values in fields.values() for v in values)])
    return fields


def local_path(target: str) -> str:
    """``target`` if it is a page of /admin, else /admin: the login form must not send anyone elsewhere."""
    if target == "/admin" or (target.startswith("/admin/") and "//" not in target and "\\" not in target):
        return target
    return "/admin"
