"""Security headers on every page, /docs without a CDN, /metrics and /openapi.json (issue 14, finding 8)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from digest.config import Settings
from digest.db import transaction
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.runtime import Runtime
from digest.tokens import MANAGE, UNSUBSCRIBE, make_token
from digest.web import create_app
from tests.web_support import serve

TEMPLATES = Path(__file__).parents[2] / "templates" / "web"
ADMIN = "admin-token-for-tests-0123456789"


@pytest.fixture
def admin_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"admin_token": ADMIN})


@pytest.fixture
def client(rt: Runtime, admin_settings: Settings, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(admin_settings, clock=lambda: now)) as http:
        yield http


@pytest.fixture
def tokens(rt: Runtime, now: datetime) -> dict[str, str]:
    with transaction(rt.sessions) as session:
        info = subscribe(
            session, "h@example.com", ["Python"], Schedule("daily", 8, 0, "UTC"), now, confirmed=True
        )
    secret = rt.settings.secret_key
    return {
        "manage": make_token(secret, MANAGE, {"u": info.subscriber_id}),
        "unsubscribe": make_token(secret, UNSUBSCRIBE, {"s": info.id}),
    }


def test_every_page_has_a_csp_without_inline_script_and_cannot_be_framed(
    client: httpx.Client, tokens: dict[str, str]
) -> None:
    pages = ["/", "/skills", "/skills/python", "/subscribe?skill=python", "/docs", "/healthz", "/nowhere"]
    pages += [f"/manage/{tokens['manage']}", f"/u/{tokens['unsubscribe']}", "/admin/login", "/openapi.json"]
    for path in pages:
        answer = client.get(path)
        csp = answer.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0], path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        if answer.headers.get("content-type", "").startswith("text/html"):
            # Nothing inline for the CSP to refuse: no <script> body, no style= or on*= attribute.
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=", answer.text), (
                path
            )


def test_token_pages_are_not_cached_and_send_no_referrer(
    client: httpx.Client, tokens: dict[str, str]
) -> None:
    for path in (f"/manage/{tokens['manage']}", f"/u/{tokens['unsubscribe']}", "/confirm/not-a-token"):
        answer = client.get(path)
        assert answer.headers["cache-control"] == "no-store", path
        assert answer.headers["referrer-policy"] == "no-referrer", path


def test_templates_hold_no_inline_script_or_style() -> None:
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=", text), template


def test_docs_load_swagger_ui_from_this_app_only(client: httpx.Client) -> None:
    page = client.get("/docs")

    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert page.status_code == 200 and sources
    assert all(source.startswith("/") and not source.startswith("//") for source in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source


def test_metrics_need_the_admin_token(client: httpx.Client) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
    assert scraped.status_code == 200 and "digest_" in scraped.text


def test_without_an_admin_token_metrics_and_admin_routes_are_not_there(rt: Runtime, now: datetime) -> None:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        assert http.get("/metrics").status_code == 404
        paths = http.get("/openapi.json").json()["paths"]
    assert paths and not [path for path in paths if path.startswith("/admin")]


def test_with_an_admin_token_openapi_lists_the_admin_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert "/admin/deliveries/{delivery_id}" in paths
