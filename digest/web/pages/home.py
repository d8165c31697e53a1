"""``/healthz`` and the home page: what the service is, the skills rising most, the busiest of 90 days."""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import text

from digest.db import transaction
from digest.site.figures import daily, ranking, rising
from digest.site.figures.records import BASELINE_DAYS, RECENT_DAYS
from digest.web.context import Web
from digest.web.pages.sharing import Sharing


def router(web: Web, ranked: ranking.IndexCache) -> APIRouter:
    """The routes of this module; ``ranked`` is the skill ranking the public pages share."""
    routes = APIRouter()
    rises = rising.RisingCache()

    @routes.get("/healthz")
    def health() -> JSONResponse:
        with transaction(web.rt.sessions) as session:
            session.execute(text("SELECT 1"))
        return JSONResponse({"ok": True})

    @routes.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        today = web.clock().astimezone(UTC).date()
        with transaction(web.rt.sessions) as session:
            everything = ranked.ranked(session, today)
            top = ranking.top_skills(everything)
            rise = rises.rising(session, today)
            as_of = daily.data_as_of(session)
        sharing = Sharing(
            "Skill digests: news, blogs and papers by skill",
            f"Follow any of {len(everything):,} skills and get the news articles, blog posts and papers that "
            "mention them by email, hourly, daily or weekly.",
            f"{web.settings.base_url}/",
        )
        return web.page(
            request,
            "index.html",
            skills=top,
            rising=rise,
            skill_count=len(everything),
            as_of=as_of,
            today=today,
            recent_days=RECENT_DAYS,
            baseline_weeks=BASELINE_DAYS // 7,
            sharing=sharing,
        )

    return routes
