"""Who calls: the API key of ``Authorization: Bearer``, its per-key rate limit, and the scope a route needs.

The limit is the stream API's (``DIGEST_API_RATE_KEY`` a minute, counted in the same bucket per key), so a
platform's key has one budget whichever API it uses. A request is counted before its scope is checked, so
a key cannot probe without cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from digest.db import transaction
from digest.ops import apikeys
from digest.ops.apikeys import ApiKeyInfo
from digest.web.context import Web

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="an API key from `digest apikeys create NAME --scope read|subscribe|admin`",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def scoped(web: Web, scope: str) -> Callable[[HTTPAuthorizationCredentials | None], ApiKeyInfo]:
    """A dependency answering the calling key, after its rate limit and a check that it holds ``scope``."""

    def caller(credentials: Credentials) -> ApiKeyInfo:
        if credentials is None:
            raise apikeys.InvalidKeyError("send an API key as `Authorization: Bearer <key>`")
        now = web.clock()
        with transaction(web.rt.sessions) as session:
            key = apikeys.authenticate(session, credentials.credentials, now)
        apikeys.throttle(web.rt.signups.limiter, f"api-key:{key.id}", web.settings.api_rate_key, now)
        key.require(scope)
        return key

    return caller
