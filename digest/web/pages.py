"""Public pages: health, the home page (skills of the last 90 days), the skill index and one page per skill.

Skill figures come from the daily tables ``digest.figures`` keeps (issue 8), not from the tags.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import func, select, text

from digest.db import transaction
from digest.ingest import queries
from digest.ingest.skills import resolve_skill
from digest.models import Skill, Tag
from digest.site import figures
from digest.web.context import Web

RECENT = timedelta(days=90)
# Searches longer than any skill name find nothing anyway.
MAX_QUERY = 100


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    ranking = figures.IndexCache()

    @routes.get("/healthz")
    def health() -> JSONResponse:
        with transaction(web.rt.sessions) as session:
            session.execute(text("SELECT 1"))
        return JSONResponse({"ok": True})

    @routes.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        since = web.clock() - RECENT
        with transaction(web.rt.sessions) as session:
            top = session.execute(
                select(Skill.name, Skill.slug, func.count(Tag.item_id).label("n"))
                .join(Tag, Tag.skill_id == Skill.id)
                .where(Tag.ingested_at >= since)
                .group_by(Skill.id, Skill.name, Skill.slug)
                .order_by(func.count(Tag.item_id).desc(), Skill.name)
                .limit(40)
            ).all()
        return web.page(request, "index.html", skills=top)

    @routes.get("/skills", response_class=HTMLResponse)
    def skills_index(request: Request, q: str = "", page: str = "1") -> HTMLResponse:
        today = web.clock().astimezone(UTC).date()
        number = int(page) if page.isdigit() else 1
        with transaction(web.rt.sessions) as session:
            ranked = ranking.ranked(session, today)
            listing = figures.skill_index(session, ranked, q[:MAX_QUERY], number, figures.INDEX_PAGE_SIZE)
        return web.page(request, "skills.html", listing=listing)

    @routes.get("/skills/{slug}", response_class=HTMLResponse, response_model=None)
    def skill_page(request: Request, slug: str) -> HTMLResponse | RedirectResponse:
        today = web.clock().astimezone(UTC).date()
        with transaction(web.rt.sessions) as session:
            skill = resolve_skill(session, slug)
            if slug != skill.slug:
                # A merged skill's old slug, an alias or an id: one canonical address per skill.
                return RedirectResponse(f"/skills/{quote(skill.slug)}", status_code=301)
            shown = figures.skill_figures(session, skill.id, today)
            latest = figures.latest_items(session, skill.id)
            watched = queries.watched_for(session, skill.id)
        return web.page(
            request,
            "skill.html",
            figures=shown,
            latest=latest,
            description=skill.description,
            watched=watched,
        )

    return routes
