"""Public pages: health, the home page (skills of the last 90 days) and one page per skill."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import func, select, text

from digest.db import transaction
from digest.models import Item, Skill, Source, Tag
from digest.skills import resolve_skill
from digest.web.context import Web

RECENT = timedelta(days=90)


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()

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

    @routes.get("/skills/{slug}", response_class=HTMLResponse)
    def skill_page(request: Request, slug: str) -> HTMLResponse:
        with transaction(web.rt.sessions) as session:
            skill = resolve_skill(session, slug)
            items = session.execute(
                select(Item, Source.name, Tag.matched)
                .join(Tag, Tag.item_id == Item.id)
                .join(Source, Source.id == Item.source_id)
                .where(Tag.skill_id == skill.id)
                .order_by(Item.ingested_at.desc(), Item.id.desc())
                .limit(50)
            ).all()
        return web.page(request, "skill.html", skill=skill, items=items)

    return routes
