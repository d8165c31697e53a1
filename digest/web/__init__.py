"""The web app: ``create_app(settings)``. Pages are Jinja2 templates under ``templates/web``.

Links in emails are signed tokens; GET shows a page with a button and only POST acts, because mail
scanners open links (healthchecks). RFC 8058 one-click unsubscribe POSTs to the same URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select, text

from digest import subscribers
from digest.compose import templates_dir
from digest.config import Settings
from digest.db import transaction
from digest.errors import DigestError, NotFoundError
from digest.models import Item, Skill, Source, Subscriber, Subscription, Tag
from digest.runtime import Runtime
from digest.skills import resolve_skill
from digest.tokens import MANAGE, UNSUBSCRIBE, make_token, read_token

RECENT = timedelta(days=90)


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI application for these settings."""
    rt = Runtime(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        rt.close()

    app = FastAPI(title="digest", lifespan=lifespan, docs_url="/api/docs", redoc_url=None)
    pages = Jinja2Templates(directory=templates_dir() / "web")

    def page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
        return pages.TemplateResponse(
            request, name, {"base_url": settings.base_url, **context}, status_code=status
        )

    @app.exception_handler(DigestError)
    async def refused(request: Request, exc: DigestError) -> HTMLResponse:
        status = 404 if isinstance(exc, NotFoundError) else 400
        return page(request, "message.html", status, title="That did not work", message=str(exc))

    @app.get("/healthz")
    def health() -> JSONResponse:
        with transaction(rt.sessions) as session:
            session.execute(text("SELECT 1"))
        return JSONResponse({"ok": True})

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        since = datetime.now(UTC) - RECENT
        with transaction(rt.sessions) as session:
            top = session.execute(
                select(Skill.name, Skill.slug, func.count(Tag.item_id).label("n"))
                .join(Tag, Tag.skill_id == Skill.id)
                .where(Tag.ingested_at >= since)
                .group_by(Skill.id, Skill.name, Skill.slug)
                .order_by(func.count(Tag.item_id).desc(), Skill.name)
                .limit(40)
            ).all()
        return page(request, "index.html", skills=top)

    @app.get("/skills/{slug}", response_class=HTMLResponse)
    def skill_page(request: Request, slug: str) -> HTMLResponse:
        with transaction(rt.sessions) as session:
            skill = resolve_skill(session, slug)
            items = session.execute(
                select(Item, Source.name, Tag.matched)
                .join(Tag, Tag.item_id == Item.id)
                .join(Source, Source.id == Item.source_id)
                .where(Tag.skill_id == skill.id)
                .order_by(Item.ingested_at.desc(), Item.id.desc())
                .limit(50)
            ).all()
        return page(request, "skill.html", skill=skill, items=items)

    @app.get("/u/{token}", response_class=HTMLResponse)
    def unsubscribe_form(request: Request, token: str) -> HTMLResponse:
        payload = read_token(settings.secret_key, UNSUBSCRIBE, token)
        with transaction(rt.sessions) as session:
            info = subscribers.describe(session, int(payload["s"]))
        return page(request, "unsubscribe.html", info=info, token=token, done=info.state == "unsubscribed")

    @app.post("/u/{token}", response_class=HTMLResponse)
    def unsubscribe(request: Request, token: str) -> HTMLResponse:
        payload = read_token(settings.secret_key, UNSUBSCRIBE, token)
        with transaction(rt.sessions) as session:
            info = subscribers.unsubscribe(session, int(payload["s"]))
        return page(request, "unsubscribe.html", info=info, token=token, done=True)

    @app.get("/manage/{token}", response_class=HTMLResponse)
    def manage(request: Request, token: str) -> HTMLResponse:
        payload = read_token(settings.secret_key, MANAGE, token)
        with transaction(rt.sessions) as session:
            subscriber = session.get(Subscriber, int(payload["u"]))
            if subscriber is None:
                raise NotFoundError("this subscriber no longer exists")
            ids = session.scalars(
                select(Subscription.id)
                .where(Subscription.subscriber_id == subscriber.id)
                .order_by(Subscription.id)
            ).all()
            infos = [subscribers.describe(session, sid) for sid in ids]
        links = {info.id: make_token(settings.secret_key, UNSUBSCRIBE, {"s": info.id}) for info in infos}
        return page(request, "manage.html", email=subscriber.email, subscriptions=infos, links=links)

    return app
