"""Form safety: CSRF tokens, line-break refusal and signed-link payloads.

CSRF: each form carries a token signed (itsdangerous, with a timestamp) over the form's name, what it
acts on (the manage token, for instance) and a random nonce that also sits in a SameSite cookie. A
cross-site page can fetch a valid token for itself but cannot make a visitor's browser send the matching
cookie (OWASP "signed double-submit cookie"). The two links whose URL token is the proof — confirm and
RFC 8058 unsubscribe — need no other field, as their issue asks.

Line breaks (CR, LF) and NUL are refused in every submitted value, so no header can be injected whatever
a later step does with the text.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from digest.errors import InvalidInputError
from digest.tokens import read_token

COOKIE = "digest_csrf"
CSRF_FIELD = "csrf"
CSRF_MAX_AGE = 24 * 3600
FORBIDDEN = ("\r", "\n", "\x00")


def browser_nonce(request: Request) -> tuple[str, bool]:
    """This browser's CSRF nonce, and whether it is new (and must be set as a cookie)."""
    nonce = request.cookies.get(COOKIE)
    if nonce and 16 <= len(nonce) <= 64:
        return nonce, False
    return secrets.token_urlsafe(16), True


def set_nonce(response: Response, nonce: str, *, secure: bool) -> None:
    """Store the nonce in a cookie scripts cannot read and other sites' forms do not send (SameSite)."""
    response.set_cookie(COOKIE, nonce, httponly=True, samesite="lax", secure=secure, path="/")


def csrf_token(secret: str, form: str, bind: str, nonce: str) -> str:
    """A token for one form, acting on ``bind``, in the browser holding ``nonce``."""
    return _serializer(secret).dumps({"f": form, "b": bind, "n": nonce})


def check_csrf(secret: str, request: Request, token: str, form: str, bind: str = "") -> None:
    """``InvalidInputError`` unless ``token`` was made for this form, target and browser within a day."""
    stale = InvalidInputError(
        "this form has expired or was sent from another page: please reload the page and try again"
    )
    try:
        payload = _serializer(secret).loads(token, max_age=CSRF_MAX_AGE)
    except BadSignature:
        raise stale from None
    if payload != {"f": form, "b": bind, "n": request.cookies.get(COOKIE, "")}:
        raise stale


def refuse_line_breaks(values: Iterable[str]) -> None:
    """``InvalidInputError`` if any value holds CR, LF or NUL (header injection)."""
    if any(char in value for value in values for char in FORBIDDEN):
        raise InvalidInputError("line breaks are not allowed in any field")


async def read_form(request: Request, secret: str, form: str, bind: str = "") -> dict[str, list[str]]:
    """The submitted fields, after the CSRF and line-break checks; files are refused."""
    data = await request.form()
    fields: dict[str, list[str]] = {}
    for key, value in data.multi_items():
        if not isinstance(value, str):
            raise InvalidInputError("files cannot be uploaded here")
        fields.setdefault(key, []).append(value)
    refuse_line_breaks([*fields, *(v for values in fields.values() for v in values)])
    refuse_line_breaks(request.query_params.values())
    check_csrf(secret, request, first(fields, CSRF_FIELD), form, bind)
    return fields


def first(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    """The first value of a field, or ``default``."""
    return fields.get(name, [default])[0]


def token_id(secret: str, purpose: str, token: str, key: str) -> int:
    """The id a signed link carries under ``key``; any malformed payload is the same friendly 400."""
    payload: dict[str, Any] = read_token(secret, purpose, token)
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError("this link is not valid")
    return value


def client_ip(request: Request) -> str:
    """The client address: the peer, or what a trusted proxy says it saw (``edge.ClientAddress``)."""
    return request.client.host if request.client else "unknown"


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="digest.csrf")
