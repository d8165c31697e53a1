"""The OpenAPI document lists every /api/v1 route with its error answers, each an RFC 9457 problem."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from digest.runtime import Runtime
from digest.web import create_app
from tests.web_support import serve

# Each route and the error answers it declares beyond those of every route (400, 401, 403, 422, 429).
ROUTES = {
    ("post", "/api/v1/resolve"): set(),
    ("get", "/api/v1/skills/{skill}"): {404},
    ("get", "/api/v1/trends"): set(),
    ("post", "/api/v1/subscriptions"): {409},
    ("get", "/api/v1/subscriptions/{subscription_id}"): {404},
    ("patch", "/api/v1/subscriptions/{subscription_id}"): {404, 409},
    ("delete", "/api/v1/subscriptions/{subscription_id}"): {404},
    ("post", "/api/v1/subscriptions/{subscription_id}/preview"): {404},
    ("post", "/api/v1/subscriptions/{subscription_id}/run"): {404, 409},
    ("post", "/api/v1/alerts"): {409},
    ("get", "/api/v1/alerts/{alert_id}"): {404},
    ("patch", "/api/v1/alerts/{alert_id}"): {404, 409},
    ("delete", "/api/v1/alerts/{alert_id}"): {404},
    ("post", "/api/v1/alerts/{alert_id}/preview"): {404},
    ("post", "/api/v1/alerts/{alert_id}/run"): {404, 409},
}
EVERY_ROUTE = {400, 401, 403, 422, 429}


@pytest.fixture
def document(rt: Runtime, now: datetime) -> Iterator[dict[str, Any]]:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        answer = http.get("/openapi.json")
        assert answer.status_code == 200
        yield answer.json()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_v1_route_is_listed_with_its_problem_answers(document: dict[str, Any]) -> None:
    listed = {
        (method, path)
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
    }

    assert listed == set(ROUTES)
    for (method, path), extra in ROUTES.items():
        answers = document["paths"][path][method]["responses"]
        errors = {int(code) for code in answers if int(code) >= 400}
        assert errors == EVERY_ROUTE | extra, (method, path)
        for code in errors:
            content = answers[str(code)]["content"]
            assert list(content) == ["application/problem+json"], (method, path, code)
            schema = content["application/problem+json"]["schema"]
            assert {"type", "title", "status", "detail"} <= set(schema["properties"])
        assert "Retry-After" in answers["429"]["headers"]
        assert document["paths"][path][method]["security"] == [{"ApiKey": []}]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_both_runs_take_an_idempotency_key_header(document: dict[str, Any]) -> None:
    for path in ("/api/v1/subscriptions/{subscription_id}/run", "/api/v1/alerts/{alert_id}/run"):
        parameters = document["paths"][path]["post"]["parameters"]
        headers = [p for p in parameters if p["in"] == "header"]
        assert [(p["name"], p["required"]) for p in headers] == [("Idempotency-Key", False)], path
