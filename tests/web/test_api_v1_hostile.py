"""No input answers 500 on /api/v1 (issue 14's rule, issue 19's routes): each path and query parameter, each
JSON body field, the whole body and the Idempotency-Key header get each hostile value of
``test_hostile_inputs`` in turn, with a valid admin key, on SQLite and PostgreSQL over real HTTP. Every
answer is below 500, and every refusal is an RFC 9457 problem with a detail a person can read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest

from digest.config import Settings
from digest.runtime import Runtime
from digest.web import create_app
from tests.web.api_v1_support import PROBLEM, bearer, new_key
from tests.web.test_hostile_inputs import BODIES, JSON_VALUES, RAW_URL, TEXT, query, url
from tests.web_support import serve

PERSON = "walker@example.com"
# Each route, a valid value of each path parameter, and a valid body; the deletes come last.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("post", "/api/v1/resolve", {"text": "Rust and Go on K8s", "names": ["k8s", "pythn"]}),
    ("get", "/api/v1/skills/{skill}", None),
    ("get", "/api/v1/trends", None),
    (
        "post",
        "/api/v1/subscriptions",
        {
            "email": PERSON,
            "skills": ["python"],
            "cadence": "daily",
            "hour": 8,
            "weekday": 0,
            "timezone": "UTC",
            "verified": True,
        },
    ),
    ("get", "/api/v1/subscriptions/{subscription_id}", None),
    (
        "patch",
        "/api/v1/subscriptions/{subscription_id}",
        {"hour": 9, "weekday": 1, "timezone": "UTC", "state": "active", "skills": ["python", "rust"]},
    ),
    ("post", "/api/v1/subscriptions/{subscription_id}/preview", None),
    ("post", "/api/v1/subscriptions/{subscription_id}/run", None),
    (
        "post",
        "/api/v1/alerts",
        {"email": PERSON, "skill": "rust", "period": "24h", "threshold": 50, "min_count": 5},
    ),
    ("get", "/api/v1/alerts/{alert_id}", None),
    ("patch", "/api/v1/alerts/{alert_id}", {"period": "24h", "threshold": 60, "min_count": 4}),
    ("post", "/api/v1/alerts/{alert_id}/preview", None),
    ("post", "/api/v1/alerts/{alert_id}/run", None),
    ("delete", "/api/v1/alerts/{alert_id}", None),
    ("delete", "/api/v1/subscriptions/{subscription_id}", None),
]
QUERIES = {"/api/v1/trends": {"period": "7d", "direction": "up", "limit": "5"}}


@dataclass
class Tally:
    tried: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, what: str, answer: httpx.Response) -> None:
        self.tried += 1
        if answer.status_code >= 500:
            self.failures.append(f"{what} -> {answer.status_code}")
        elif answer.status_code >= 400 and not problem(answer):
            self.failures.append(f"{what} -> {answer.status_code} is no problem+json: {answer.text[:80]}")


def problem(answer: httpx.Response) -> bool:
    if answer.headers.get("content-type") != PROBLEM:
        return False
    body = answer.json()
    return (
        body.get("status") == answer.status_code
        and isinstance(body.get("detail"), str)
        and bool(body["detail"])
    )


@pytest.fixture
def client(rt: Runtime, settings: Settings, now: datetime) -> Iterator[httpx.Client]:
    # A limit no walk reaches: every input must get to the code behind the key.
    walking = settings.model_copy(update={"api_rate_key": 1_000_000})
    with serve(create_app(walking, clock=lambda: now)) as http:
        yield http


def test_no_input_answers_500_on_any_v1_route(client: httpx.Client, rt: Runtime, now: datetime) -> None:
    key = bearer(new_key(rt, "walker", now, "admin"))
    subscription = client.post("/api/v1/subscriptions", json=ROUTES[3][2], headers=key).json()["id"]
    alert = client.post("/api/v1/alerts", json=ROUTES[8][2], headers=key).json()["id"]
    valid = {"skill": "python", "subscription_id": str(subscription), "alert_id": str(alert)}
    tally = Tally()

    def send(
        method: str,
        template: str,
        paths: dict[str, str],
        queries: dict[str, str],
        content: bytes | None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        extra = {
            **key,
            **(headers or {}),
            **({"content-type": "application/json"} if content is not None else {}),
        }
        try:
            return client.request(
                method.upper(), url(template, paths) + query(queries), headers=extra, content=content
            )
        except httpx.TransportError as exc:
            return httpx.Response(599, text=f"transport error: {exc}")

    def body_text(fields: dict[str, str]) -> bytes:
        return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}").encode()

    for method, template, body in ROUTES:
        names = [name for name in valid if "{" + name + "}" in template]
        queries = QUERIES.get(template, {})
        fields = {k: json.dumps(v) for k, v in (body or {}).items()}
        content = body_text(fields) if body is not None else None
        tally.check(f"{method} {template} valid", send(method, template, valid, queries, content))
        for name in names:
            for value in [v for v in TEXT + RAW_URL if v]:
                answer = send(method, template, {**valid, name: value}, queries, content)
                tally.check(f"{method} {template} path {name}={value[:20]!r}", answer)
        for name in queries:
            for value in TEXT + RAW_URL:
                answer = send(method, template, valid, {**queries, name: value}, content)
                tally.check(f"{method} {template} query {name}={value[:20]!r}", answer)
        for name in fields:
            for value in JSON_VALUES:
                answer = send(method, template, valid, queries, body_text({**fields, name: value}))
                tally.check(f"{method} {template} json {name}={value[:20]!r}", answer)
        if method in ("post", "patch"):
            for whole in BODIES:
                answer = send(method, template, valid, queries, whole.encode("utf-8", "surrogatepass"))
                tally.check(f"{method} {template} body {whole[:20]!r}", answer)
        if template.endswith("/run"):
            # Only values a client can send as a header (RFC 9110 §5.5: no CR, LF, NUL, nor edge spaces).
            sendable = [v for v in TEXT if v.isascii() and v == v.strip() and v.isprintable()]
            for value in sendable:
                answer = send(method, template, valid, queries, None, {"Idempotency-Key": value})
                tally.check(f"{method} {template} Idempotency-Key={value[:20]!r}", answer)

    print(
        f"\nhostile inputs tried on /api/v1: {tally.tried}, answers breaking the rule: {len(tally.failures)}"
    )
    assert tally.tried > 900
    assert not tally.failures, "\n".join(tally.failures[:60])
