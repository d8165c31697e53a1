"""/admin/coverage (issue 16): ``digest skills coverage`` as a page, worst-covered skills first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from digest.db import transaction
from digest.ingest import coverage
from digest.web.context import Web


def add_routes(private: APIRouter, page: Callable[..., HTMLResponse], web: Web) -> None:
    """Add the coverage page to the admin's authorised routes."""

    @private.get("/admin/coverage", response_class=HTMLResponse)
    def coverage_page(request: Request) -> HTMLResponse:
        with transaction(web.rt.sessions) as session:
            rows = coverage.coverage(session, web.clock())
        context: dict[str, Any] = {
            "rows": rows,
            "recent_days": coverage.RECENT.days,
            "span_days": coverage.SPAN.days,
        }
        return page(request, "coverage.html", **context)
