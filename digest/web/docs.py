"""``/docs``: Swagger UI for the JSON API, every file served from here (issue 14, finding 8).

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script; the first runs
another site's code with our origin, the second needs ``'unsafe-inline'`` in the CSP. Here the assets come
from the ``fastapi-offline`` package (Swagger UI 5, which reads the OpenAPI 3.1 FastAPI writes; the
``swagger-ui-bundle`` package ships 4.15, which cannot) and the start-up script is a static file.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from digest.web.context import Web

ASSETS = "/docs/assets"


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()

    @routes.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        return web.templates.TemplateResponse(request, "docs.html", {"assets": ASSETS})

    return routes


def mount_assets(app: FastAPI) -> None:
    """Serve Swagger UI's JavaScript and CSS under ``/docs/assets``."""
    folder = Path(fastapi_offline.__file__).parent / "static"
    app.mount(ASSETS, StaticFiles(directory=folder), name="docs-assets")
