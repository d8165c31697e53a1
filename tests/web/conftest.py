"""The admin's fixtures: settings with a token, a client of the app on loopback, and one logged in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from digest.config import Settings
from digest.runtime import Runtime
from digest.web import create_app
from tests.web_support import csrf, serve

TOKEN = "admin-token-for-tests-0123456789"
# The admin's pages are read at this pinned time.
CLOCK = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)


@pytest.fixture
def admin_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"admin_token": TOKEN})


@pytest.fixture
def app_client(admin_settings: Settings, rt: Runtime) -> Iterator[httpx.Client]:
    with serve(create_app(admin_settings, clock=lambda: CLOCK)) as http:
        yield http


def log_in(http: httpx.Client, token: str = TOKEN, next_page: str = "/admin") -> httpx.Response:
    form = http.get("/admin/login")
    return http.post("/admin/login", data={"csrf": csrf(form.text), "token": token, "next": next_page})


@pytest.fixture
def client(app_client: httpx.Client) -> httpx.Client:
    """Logged in through the form, holding the session cookie like a browser."""
    assert log_in(app_client).status_code == 303
    return app_client
