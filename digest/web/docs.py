"""``/docs``: Swagger UI for the JSON API, every file served from here (issue 14, finding 8).

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script; the first runs
another site's code with our origin, the second needs ``'unsafe-inline'`` in the CSP. Here the assets come
from the ``fastapi-offline`` package (Swagger UI 5, which reads the OpenAPI 3.1 FastAPI writes; the
``swagger-ui-bundle`` package ships 4.15, which cannot) and the start-up script is a static file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from digest.web.context import Web

ASSETS = "/docs/assets"

DESCRIPTION = """Skill digests: emails of the news, blog posts and papers that mention the skills one follows.

The **public API** is in the first four sections: the platform API under `/api/v1` (API keys with scopes,
errors as RFC 9457 problems), the signed-link API under `/api/` that the emails' manage links use, each
skill's items as JSON pages, Atom and JSON Feed, and the webhooks email providers post bounces and
complaints to. The **web pages** and the **admin** follow; they answer
HTML for people, are listed so every route is described, and are no API: their shape may change.
"""
# The sections of /docs, public API first (issue 17: the schema separates it from HTML routes and admin).
TAGS: list[dict[str, Any]] = [
    {"name": "platform API v1", "description": "The platform API: an API key with scopes, RFC 9457 errors."},
    {"name": "api", "description": "Public API behind the signed links of each email: subscribe, manage."},
    {"name": "stream", "description": "Public API: a skill's items as JSON pages, Atom and JSON Feed."},
    {"name": "webhooks", "description": "For email providers: bounces and complaints, signatures checked."},
    {"name": "pages", "description": "Web pages for people (HTML) and what their forms fetch: not an API."},
    {"name": "admin", "description": "The admin web (HTML) behind DIGEST_ADMIN_TOKEN: not an API."},
]


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()

    @routes.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        return web.templates.TemplateResponse(request, "docs.html", {"assets": ASSETS})

    return routes


def tag_pages(app: FastAPI) -> None:
    """File every operation the API modules did not tag under "admin" or "pages" in ``app``'s OpenAPI
    description, so /docs shows the public API apart from the HTML routes. (Done on the schema: routes of
    included routers are not in ``app.routes`` to tag one by one.)"""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                operation.setdefault("tags", ["admin" if path.startswith("/admin") else "pages"])
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def mount_assets(app: FastAPI) -> None:
    """Serve Swagger UI's JavaScript and CSS under ``/docs/assets``."""
    folder = Path(fastapi_offline.__file__).parent / "static"
    app.mount(ASSETS, StaticFiles(directory=folder), name="docs-assets")
