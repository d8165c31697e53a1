"""``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header): a retried POST answers the first result.

    begin:  reserve (key, Idempotency-Key) with the request's fingerprint, unique per key  -> first: run
            already there: another request under this Idempotency-Key -> 422; still running -> 409;
            finished -> its stored answer, unchanged
    finish: store the answer; abandon: drop the reservation of a request that failed, so a retry runs it
    once:   the three around a route's work, for every route that takes the header (the runs of
            subscriptions and alerts)

The reservation commits before the work starts, so two calls at once run it once: the second waits on the
unique row (PostgreSQL) or the write lock (SQLite), then finds it running or finished.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.errors import ConflictError, DigestError
from digest.models import IdempotentRequest

HEADER = "Idempotency-Key"
MAX_LENGTH = 255

# The header as a route parameter.
KeyHeader = Annotated[
    str | None, Header(alias=HEADER, description="repeat the first answer to a retry with this key")
]


@dataclass(frozen=True, slots=True)
class Answer:
    """A stored answer: status code and JSON body."""

    status: int
    body: dict[str, Any]


def check_key(value: str) -> str:
    """The header's value, or a 400: 1 to 255 printable ASCII characters (it is stored and compared)."""
    if not 0 < len(value) <= MAX_LENGTH or not value.isascii() or not value.isprintable():
        raise HTTPException(400, f"{HEADER} is 1 to {MAX_LENGTH} printable ASCII characters")
    return value


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests the same one: method, path and body."""
    return hashlib.sha256(b"\0".join((method.encode(), path.encode(), body))).hexdigest()


def begin(
    sessions: sessionmaker[Session], api_key_id: int, key: str, print_: str, now: datetime
) -> Answer | None:
    """Reserve ``key`` for this request: None if it is the first (run it, then ``finish``), else the first
    request's answer; 422 if ``key`` was used for another request, ``ConflictError`` while it runs."""
    with transaction(sessions) as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        reserved = session.execute(
            insert(IdempotentRequest)
            .values(api_key_id=api_key_id, key=key, fingerprint=print_, created_at=now)
            .on_conflict_do_nothing(index_elements=["api_key_id", "key"])
            .returning(IdempotentRequest.id)
        ).first()
        if reserved is not None:
            return None
        row = session.scalars(
            select(IdempotentRequest).where(
                IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.key == key
            )
        ).one()
        if row.fingerprint != print_:
            raise HTTPException(
                422, f"this {HEADER} was used for another request: use a new key for this one"
            )
        if row.status is None or row.body is None:
            raise ConflictError(f"the first request with this {HEADER} is still running: retry in a moment")
        return Answer(row.status, row.body)


def finish(sessions: sessionmaker[Session], api_key_id: int, key: str, answer: Answer) -> None:
    """Store the answer that repeats of ``key`` get."""
    with transaction(sessions) as session:
        session.execute(
            update(IdempotentRequest)
            .where(IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.key == key)
            .values(status=answer.status, body=answer.body)
        )


def abandon(sessions: sessionmaker[Session], api_key_id: int, key: str) -> None:
    """Drop the reservation of a request that failed before it changed anything, so a retry runs it."""
    with transaction(sessions) as session:
        session.execute(
            delete(IdempotentRequest).where(
                IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.key == key
            )
        )


async def raw_body(request: Request) -> bytes:
    """The request body as sent: part of an idempotent request's fingerprint."""
    return await request.body()


def once(
    sessions: sessionmaker[Session],
    api_key_id: int,
    header: str | None,
    request: Request,
    body: bytes,
    now: datetime,
    work: Callable[[], BaseModel],
) -> BaseModel | JSONResponse:
    """``work``'s answer (status 200); under an ``Idempotency-Key`` header, the first answer to it."""
    if header is None:
        return work()
    key = check_key(header)
    print_ = fingerprint(request.method, request.url.path, body)
    stored = begin(sessions, api_key_id, key, print_, now)
    if stored is None:
        try:
            answer = work()
        except DigestError:
            abandon(sessions, api_key_id, key)
            raise
        stored = Answer(200, answer.model_dump(mode="json"))
        finish(sessions, api_key_id, key, stored)
    return JSONResponse(stored.body, status_code=stored.status)
