"""The web app: ``create_app(settings)``. Pages are Jinja2 templates under ``templates/web``.

    pages.py      home page and skill pages
    subscribe.py  the pre-filled signup form and the confirmation link (double opt-in)
    manage.py     the signed manage page and RFC 8058 one-click unsubscribe
    api.py        the same operations as JSON under /api/, described at /docs
    alerts.py     trend alerts on the manage page and the API, and their one-click "turn off" link
    stream.py     a skill's items as JSON pages, Atom and JSON Feed; API keys and rate limits
    metrics.py    /metrics for Prometheus: counters, task latency, queue lengths read from the broker
    admin/        /admin behind DIGEST_ADMIN_TOKEN: deliveries, replays, feeds, schedules, subscribers
    security.py   CSRF tokens, line-break refusal, signed-link payloads

Links in emails are signed tokens; GET shows a page with a button and only POST acts, because mail
scanners open links (healthchecks). Errors we raise on purpose become a friendly page (or JSON under
/api/) with a 4xx status, never a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates

from digest.config import Settings
from digest.deliver.compose import templates_dir
from digest.deliver.signup import TooManyRequestsError
from digest.errors import DigestError, MailError, NotFoundError
from digest.runtime import Runtime
from digest.web import admin, alerts, api, manage, metrics, pages, stream, subscribe
from digest.web.context import Web


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, clock: Callable[[], datetime] = _utc_now) -> FastAPI:
    """The FastAPI application for these settings; ``clock`` is the only clock its routes read."""
    rt = Runtime(settings)
    web = Web(settings, rt, rt.signups, Jinja2Templates(directory=templates_dir() / "web"), clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        rt.close()

    app = FastAPI(title="digest", lifespan=lifespan, docs_url="/docs", redoc_url=None)

    @app.exception_handler(DigestError)
    async def refused(request: Request, exc: DigestError) -> Response:
        status = _status(exc)
        message = (
            "we could not send the email just now: please try again in a few minutes"
            if isinstance(exc, MailError)
            else str(exc)
        )
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=status)
        return web.page(request, "message.html", status, title="That did not work", message=message)

    for module in (pages, subscribe, manage, api, admin, stream, alerts, metrics):
        app.include_router(module.router(web))
    return app


def _status(exc: DigestError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, TooManyRequestsError):
        return 429
    if isinstance(exc, MailError):
        return 503
    return 400
