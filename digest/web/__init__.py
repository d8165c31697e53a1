"""The web app: ``create_app(settings)``. Pages are Jinja2 templates under ``templates/web``.

    pages/        home page (rising skills), skill pages, the skill search and its 404 with suggestions
    subscribe.py  the pre-filled signup form and the confirmation link (double opt-in)
    manage.py     the signed manage page and RFC 8058 one-click unsubscribe
    api.py        the same operations as JSON under /api/, described at /docs
    api_v1/       the platform API under /api/v1 (issue 19): API keys with scopes, RFC 9457 problems
    alerts.py     trend alerts on the manage page and the API, and their one-click "turn off" link
    view.py       a sent digest as a web page: the signed "view in browser" link of each digest
    stream.py     a skill's items as JSON pages, Atom and JSON Feed; API keys and rate limits
    metrics.py    /metrics for Prometheus: counters, task latency, queue lengths read from the broker
    webhooks.py   email providers' bounce and complaint webhooks, signatures verified (issue 19)
    admin/        /admin behind DIGEST_ADMIN_TOKEN: deliveries, replays, feeds, schedules, subscribers
    security.py   CSRF tokens, line-break refusal, signed-link payloads
    edge.py       before any route: client address, NUL and body-size refusals, security headers
    docs.py       /docs: Swagger UI served from the fastapi-offline package, never from a CDN

Links in emails are signed tokens; GET shows a page with a button and only POST acts, because mail
scanners open links (healthchecks). Errors we raise on purpose become a friendly page (or JSON under
/api/) with a 4xx status, never a 500; so do inputs FastAPI refuses, without echoing them (issue 14).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from digest.config import Settings, proxy_networks
from digest.deliver.bounces.sns import CertificateFetcher
from digest.deliver.compose import templates_dir
from digest.deliver.signup import TooManyRequestsError
from digest.errors import ConflictError, DigestError, LinkExpiredError, MailError, NotFoundError, PrunedError
from digest.ops import apikeys
from digest.runtime import Runtime
from digest.web import (
    admin,
    alerts,
    api,
    api_v1,
    docs,
    edge,
    manage,
    metrics,
    pages,
    rights,
    stream,
    subscribe,
    view,
    webhooks,
)
from digest.web.context import Web


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    clock: Callable[[], datetime] = _utc_now,
    *,
    certificates: CertificateFetcher | None = None,
) -> FastAPI:
    """The FastAPI application for these settings; ``clock`` is the only clock its routes read, and
    ``certificates`` fetches SNS signing certificates (default: over HTTPS, cached; tests pass their own)."""
    rt = Runtime(settings)
    web = Web(settings, rt, rt.signups, Jinja2Templates(directory=templates_dir() / "web"), clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        rt.close()

    app = FastAPI(
        title="digest",
        description=docs.DESCRIPTION,
        openapi_tags=docs.TAGS,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(DigestError)
    async def refused(request: Request, exc: DigestError) -> Response:
        status = _status(exc)
        message = (
            "we could not send the email just now: please try again in a few minutes"
            if isinstance(exc, MailError)
            else str(exc)
        )
        headers = _headers(exc)
        if _platform(request):
            return api_v1.problem(status, message, headers=headers)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=status, headers=headers)
        response = web.page(request, "message.html", status, title="That did not work", message=message)
        response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own handler echoes the input, and cannot encode NaN or a lone surrogate: a 500.
        # Only where and what, as printable text (issue 14, finding 6).
        errors = [_error(error) for error in exc.errors()]
        if _platform(request):
            if any(error["type"] == "json_invalid" for error in errors):
                return api_v1.problem(400, "the request body is not valid JSON", errors=errors)
            return api_v1.problem(422, "the request has invalid fields: see errors", errors=errors)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": errors}, status_code=422)
        message = "; ".join(f"{' '.join(map(str, e['loc'][1:])) or 'request'}: {e['msg']}" for e in errors)
        return web.page(request, "message.html", 422, title="That did not work", message=message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # An unknown route or method under /api/v1 is a problem too (RFC 9457), with FastAPI's headers.
        if _platform(request):
            return api_v1.problem(exc.status_code, str(exc.detail), headers=exc.headers)
        if exc.status_code != 404 or request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        # Issue 17: a person who mistyped an address gets a page with the skill search, not JSON.
        return web.page(request, "not_found.html", 404)

    for module in (pages, subscribe, manage, rights, api, api_v1, stream, alerts, metrics, docs, view):
        app.include_router(module.router(web))
    app.include_router(webhooks.router(web, certificates))
    # Admin routes are in /openapi.json only when the admin web is on (issue 14, finding 8).
    app.include_router(admin.router(web), include_in_schema=bool(settings.admin_token))
    docs.tag_pages(app)
    app.mount("/static", StaticFiles(directory=templates_dir() / "web" / "static"), name="static")
    docs.mount_assets(app)
    # The last added is the outermost: the client address is settled first, and refusals carry headers.
    app.add_middleware(edge.InputGuard)
    app.add_middleware(edge.SecurityHeaders)
    app.add_middleware(edge.ClientAddress, proxies=proxy_networks(settings.trusted_proxies))
    return app


def _error(error: Any) -> dict[str, Any]:
    return {
        "loc": [part if isinstance(part, int) else _printable(str(part)) for part in error.get("loc", ())],
        "msg": _printable(str(error.get("msg", "invalid value"))),
        "type": _printable(str(error.get("type", "value_error"))),
    }


def _printable(text: str) -> str:
    # A lone surrogate cannot be written as UTF-8: it becomes "?" rather than a 500 while answering.
    return text.encode("utf-8", "replace").decode("utf-8")


def _platform(request: Request) -> bool:
    return request.url.path.startswith(api_v1.PREFIX + "/")


def _headers(exc: DigestError) -> dict[str, str]:
    if isinstance(exc, TooManyRequestsError | apikeys.RateLimitedError):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, apikeys.InvalidKeyError):
        # RFC 6750 §3: a refused bearer credential names the scheme to use.
        return {"WWW-Authenticate": "Bearer"}
    return {}


def _status(exc: DigestError) -> int:
    if isinstance(exc, apikeys.InvalidKeyError):
        return 401
    if isinstance(exc, apikeys.ScopeError):
        return 403
    if isinstance(exc, apikeys.RateLimitedError):
        return 429
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, LinkExpiredError | PrunedError):
        # Gone: a link past its deadline, or a delivery retention deleted ("pruned on DATE", issue 19).
        return 410
    if isinstance(exc, TooManyRequestsError):
        return 429
    if isinstance(exc, MailError):
        return 503
    return 400
