"""``GET /metrics``: Prometheus' text format, with the queue lengths read from the broker at each scrape.

Operators scrape it from inside the network; a public reverse proxy should not forward ``/metrics``.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from digest.ops import metrics
from digest.tasks import QUEUES, broker_options
from digest.web.context import Web


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    scrape = metrics.Scrape(
        metrics.process_metrics(), metrics.QueueCollector(*broker_options(web.settings), QUEUES)
    )

    @routes.get("/metrics", include_in_schema=False)
    def exposition() -> Response:
        # A sync route: FastAPI runs it on a thread, so a slow broker never blocks the event loop.
        return Response(generate_latest(scrape), media_type=CONTENT_TYPE_LATEST)

    return routes
