"""What every route of the web app shares: settings, runtime, signups, templates and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from digest.config import Settings
from digest.deliver.signup import Signups
from digest.runtime import Runtime
from digest.web import security


@dataclass(frozen=True)
class Web:
    """The app's dependencies, built once by ``create_app`` and closed over by the routers."""

    settings: Settings
    rt: Runtime
    signups: Signups
    templates: Jinja2Templates
    clock: Callable[[], datetime]

    def page(self, request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
        """Render a page. Every page can embed CSRF tokens bound to this browser's cookie (double submit)."""
        nonce, fresh = security.browser_nonce(request)

        def csrf(form: str, bind: str = "") -> str:
            return security.csrf_token(self.settings.secret_key, form, bind, nonce)

        response = self.templates.TemplateResponse(
            request,
            name,
            {"base_url": self.settings.base_url, "csrf": csrf, **context},
            status_code=status,
        )
        if fresh:
            security.set_nonce(response, nonce, secure=self.settings.base_url.startswith("https:"))
        return response
