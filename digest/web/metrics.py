"""``GET /metrics``: Prometheus' text format, with the queue lengths read from the broker at each scrape.

Behind the admin token (issue 14, finding 8): Prometheus sends it as ``Authorization: Bearer`` (its
``authorization: credentials_file`` option). With no admin token, /metrics does not exist (404), like /admin.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from digest.ops import metrics
from digest.tasks import QUEUES, broker_options
from digest.web.admin.auth import token_matches
from digest.web.context import Web


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    scrape = metrics.Scrape(
        metrics.process_metrics(), metrics.QueueCollector(*broker_options(web.settings), QUEUES)
    )

    @routes.get("/metrics", include_in_schema=False)
    def exposition(request: Request) -> Response:
        token = web.settings.admin_token
        if not token:
            raise HTTPException(404)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token_matches(given.strip(), token):
            raise HTTPException(401, "not authorised", headers={"WWW-Authenticate": "Bearer"})
        # A sync route: FastAPI runs it on a thread, so a slow broker never blocks the event loop.
        return Response(generate_latest(scrape), media_type=CONTENT_TYPE_LATEST)

    return routes
