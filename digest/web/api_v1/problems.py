"""Errors of the platform API as RFC 9457 problem details (``application/problem+json``).

Every answer that is not a success carries ``type``, ``title``, ``status`` and ``detail``; ``type`` is
``about:blank``, so ``title`` is the HTTP status phrase (RFC 9457 §4.2.1). A refused request body adds
``errors`` (an extension member, §3.2): where and what, never the input itself (issue 14, finding 6).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

MEDIA_TYPE = "application/problem+json"
ABOUT_BLANK = "about:blank"


class FieldError(BaseModel):
    """One refused field of a request: where (``loc``) and why (``msg``)."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field(default=ABOUT_BLANK, description="about:blank: the title is the HTTP status phrase")
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(default=None, description="the refused fields, for a 400 or 422")


class ProblemResponse(JSONResponse):
    """A JSON response served as ``application/problem+json``."""

    media_type = MEDIA_TYPE


def problem(
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> ProblemResponse:
    """The problem answer for ``status`` saying ``detail``."""
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail)
    content = body.model_dump(exclude_none=True)
    if errors is not None:
        content["errors"] = errors
    return ProblemResponse(content, status_code=status, headers=headers)


# What each error answer of the API means, for the OpenAPI document.
MEANINGS = {
    400: "malformed JSON or an invalid header",
    401: "no API key, or one unknown or revoked (`Authorization: Bearer <key>`)",
    403: "the API key lacks the scope this route needs",
    404: "no such resource, or not one this key made",
    409: "the resource's state forbids this (suppressed address, inactive subscription, run in progress)",
    422: "a field is missing, of the wrong type or out of range; or an Idempotency-Key reused for another "
    "request",
    429: "past the key's rate limit: wait `Retry-After` seconds",
}
SCHEMA = Problem.model_json_schema()


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route, each declared as ``application/problem+json``, for OpenAPI."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in sorted({400, 401, 403, 422, 429, *statuses}):
        declared[status] = {"description": MEANINGS[status], "content": {MEDIA_TYPE: {"schema": SCHEMA}}}
        if status == 429:
            retry = {"description": "seconds until the next request is let in", "schema": {"type": "integer"}}
            declared[status]["headers"] = {"Retry-After": retry}
    return declared
