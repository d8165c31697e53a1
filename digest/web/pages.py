"""Public pages: health, the home page (skills of the last 90 days), the skill index and one page per skill.

Every page here reads the daily tables ``digest.site.figures`` keeps (issue 8), not the tags: the home page
and ``/skills`` share one cached ranking (issue 13), so neither runs a ``GROUP BY`` over tags per request.
"""

from __future__ import annotations

from datetime import UTC
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import text

from digest.db import transaction
from digest.ingest.skills import resolve_skill
from digest.site.figures import ranking, read, records
from digest.web.context import Web
from digest.web.forms import whole_number

# Searches longer than any skill name find nothing anyway.
MAX_QUERY = 100
# Past any real index; a larger page number is read as the first page.
MAX_PAGE = 100_000


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    ranked_by_volume = ranking.IndexCache()

    @routes.get("/healthz")
    def health() -> JSONResponse:
        with transaction(web.rt.sessions) as session:
            session.execute(text("SELECT 1"))
        return JSONResponse({"ok": True})

    @routes.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        today = web.clock().astimezone(UTC).date()
        with transaction(web.rt.sessions) as session:
            top = ranking.top_skills(ranked_by_volume.ranked(session, today))
        return web.page(request, "index.html", skills=top)

    @routes.get("/skills", response_class=HTMLResponse)
    def skills_index(request: Request, q: str = "", page: str = "1") -> HTMLResponse:
        today = web.clock().astimezone(UTC).date()
        number = whole_number(page, 1, MAX_PAGE) or 1
        with transaction(web.rt.sessions) as session:
            ranked = ranked_by_volume.ranked(session, today)
            listing = ranking.skill_index(session, ranked, q[:MAX_QUERY], number, records.INDEX_PAGE_SIZE)
        return web.page(request, "skills.html", listing=listing)

    @routes.get("/skills/{slug}", response_class=HTMLResponse, response_model=None)
    def skill_page(request: Request, slug: str) -> HTMLResponse | RedirectResponse:
        today = web.clock().astimezone(UTC).date()
        with transaction(web.rt.sessions) as session:
            skill = resolve_skill(session, slug)
            if slug != skill.slug:
                # A merged skill's old slug, an alias or an id: one canonical address per skill.
                return RedirectResponse(f"/skills/{quote(skill.slug)}", status_code=301)
            shown = read.skill_figures(session, skill.id, today)
            latest = read.latest_items(session, skill.id)
        return web.page(request, "skill.html", figures=shown, latest=latest, description=skill.description)

    return routes
