"""What the /api/v1 tests share: a clock the test moves, keys with scopes, and a check of problem answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from digest.db import transaction
from digest.ops import apikeys
from digest.runtime import Runtime

PROBLEM = "application/problem+json"


@dataclass
class Clock:
    """The app's clock (the limiter's too), moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def new_key(rt: Runtime, name: str, now: datetime, *scopes: str) -> str:
    """A key called ``name`` with ``scopes`` (read if none)."""
    with transaction(rt.sessions) as session:
        _, key = apikeys.create(session, name, now, scopes or (apikeys.READ,))
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def problem_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    """The RFC 9457 body of ``answer``, after checking it is one with ``status``."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["type"] == "about:blank"
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body
