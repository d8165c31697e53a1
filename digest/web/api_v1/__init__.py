"""The platform API, versioned under ``/api/v1`` (issue 19); README.md ("Platform API") describes it.

    auth.py           ``Authorization: Bearer <key>``, the per-key rate limit, the scope a route needs
    problems.py       every error as RFC 9457 ``application/problem+json``, declared in the OpenAPI document
    resolve.py        POST /resolve: text to the skills the matcher finds; names to skills
    skills.py         GET /skills/{skill} (a skill page's figures) and GET /trends (the skills moving most)
    subscriptions.py  POST, GET, PATCH, DELETE /subscriptions: a platform's own users' digests
    runs.py           POST /subscriptions/{id}/preview and /run (once; ``Idempotency-Key``)
    alerts.py         POST, GET, PATCH, DELETE /alerts: trend alerts, made for an address the same way
    alert_runs.py     POST /alerts/{id}/preview and /run (once a day; ``Idempotency-Key``)
    idempotency.py    storing the first answer of a request sent with an ``Idempotency-Key``

The routes under ``/api`` keep their shapes and codes; only ``/api/v1`` answers problems.
"""

from __future__ import annotations

from fastapi import APIRouter

from digest.web.api_v1 import alert_runs, alerts, resolve, runs, skills, subscriptions
from digest.web.api_v1.problems import problem
from digest.web.context import Web

PREFIX = "/api/v1"

__all__ = ["PREFIX", "problem", "router"]


def router(web: Web) -> APIRouter:
    """Every route of the platform API."""
    routes = APIRouter(prefix=PREFIX, tags=["platform API v1"])
    for module in (resolve, skills, subscriptions, runs, alerts, alert_runs):
        routes.include_router(module.router(web))
    return routes
