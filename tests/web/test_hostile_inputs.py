"""No input answers 500 (issue 14, finding 6): every route of the OpenAPI schema and every HTML form,
walked with a table of hostile values on SQLite and PostgreSQL over real HTTP.

Each parameter of each route (path, query, form field, JSON body field, and the whole JSON body) gets each
hostile value in turn while the others keep a valid value, so a value reaches the deepest code it can.
Every answer must be below 500, and a refusal must carry a message a person can read (JSON ``detail`` or
an HTML page with text). The number of inputs tried is printed (``-s``) and checked against a floor.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from digest.config import Settings
from digest.db import transaction
from digest.deliver import alerts
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.ingest.skills import resolve_skill
from digest.runtime import Runtime
from digest.tokens import MANAGE, UNSUBSCRIBE, make_token
from digest.web import create_app
from digest.web import security as web_security
from tests.web_support import link, outbox, serve

ADMIN = "admin-token-for-tests-0123456789"
NONCE = "hostile-walk-nonce-0123"

# Text sent where a string goes (path, query, form); percent-encoded when it travels in a URL.
TEXT = [
    "",
    " ",
    "0",
    "-5",
    "abc",
    "²",
    "١٢",
    "9" * 5000,
    "2147483648",
    "9223372036854775808",
    "-9223372036854775809",
    "1e309",
    "NaN",
    "Infinity",
    "\x00",
    "a\x00b",
    "\r\nBcc: x@example.com",
    "\u202egnp.exe",
    "\u200b\u200d",
    "\x1b[31m",
    "\x7f",
    "x" * 201,
    "x" * 5000,
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%",
    "%00",
    "a,b," * 30,
    "python," * 60,
    "😀",
    "\ufffd",
]
# Bytes that are not UTF-8 at all, for URLs (a lone surrogate encoded, a stray continuation byte).
RAW_URL = ["%ED%A0%80", "%C0%AF", "%FF", "%"]
# JSON texts for a body field: wrong types, out-of-range numbers, NaN, a lone surrogate.
JSON_VALUES = [
    "null",
    "true",
    "0",
    "-1",
    "2147483648",
    "9223372036854775808",
    "9" * 5000,
    "1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    '"\\ud800"',
    '"\\u0000"',
    '""',
    '"' + "x" * 5000 + '"',
    "[]",
    "{}",
    '["\\ud800"]',
    json.dumps(["python"] * 500),
    json.dumps([["python"]]),
    "[" * 200 + "]" * 200,
]
# Whole JSON bodies.
BODIES = ["", "null", "[]", "{", "NaN", '"\\ud800"', '{"\\ud800": 1}', "[" * 5000, "\xff\xfe"]


@dataclass
class Tally:
    """Inputs tried and the answers that broke the rule."""

    tried: int = 0
    sent: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, what: str, answer: httpx.Response) -> None:
        self.tried += 1
        if answer.status_code >= 500:
            self.failures.append(f"{what} -> {answer.status_code}")
        elif answer.status_code >= 400 and not readable(answer):
            self.failures.append(f"{what} -> {answer.status_code} without a readable message")


def readable(answer: httpx.Response) -> bool:
    """A refusal a person can read: JSON with a detail, or a page with words in it."""
    if answer.status_code in (404, 405) and not answer.content:
        return False
    if answer.headers.get("content-type", "").startswith("application/json"):
        detail = answer.json().get("detail")
        if isinstance(detail, list):
            return all(isinstance(error.get("msg"), str) and error["msg"] for error in detail)
        return isinstance(detail, str) and bool(detail)
    return bool(re.search(r"[A-Za-z]{3}", answer.text))


@dataclass(frozen=True)
class Fixture:
    """Valid values for the walk's routes."""

    manage: str
    unsubscribe: str
    confirm: str
    alert_off: str
    subscription: int
    alert: int
    delivery: int
    subscriber: int


@pytest.fixture
def walk_settings(settings: Settings) -> Settings:
    # Each request comes "from" its own address through a trusted proxy on loopback, so the signup and
    # admin rate limits let every input reach the code behind them.
    return settings.model_copy(update={"admin_token": ADMIN, "trusted_proxies": "127.0.0.1"})


@pytest.fixture
def client(rt: Runtime, walk_settings: Settings, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(walk_settings, clock=lambda: now)) as http:
        http.cookies.set(web_security.COOKIE, NONCE)
        yield http


@pytest.fixture
def valid(rt: Runtime, walk_settings: Settings, client: httpx.Client, now: datetime) -> Fixture:
    secret = walk_settings.secret_key
    with transaction(rt.sessions) as session:
        info = subscribe(
            session, "walk@example.com", ["Python"], Schedule("daily", 8, 0, "UTC"), now, confirmed=True
        )
        alert = alerts.add(session, info.subscriber_id, resolve_skill(session, "python"), "24h", 50, 10, now)
        alert_id = alert.id
    signup = {"email": "new@example.com", "skills": ["python"], "cadence": "daily"}
    assert client.post("/api/subscriptions", json=signup).status_code == 202
    confirm = link(outbox(walk_settings)[-1], "confirm").removeprefix("/confirm/")
    return Fixture(
        manage=make_token(secret, MANAGE, {"u": info.subscriber_id}),
        unsubscribe=make_token(secret, UNSUBSCRIBE, {"s": info.id}),
        confirm=confirm,
        alert_off=make_token(secret, alerts.ALERT_OFF, {"a": alert_id}),
        subscription=info.id,
        alert=alert_id,
        delivery=1,
        subscriber=info.subscriber_id,
    )


def path_values(valid: Fixture) -> dict[str, str]:
    return {
        "slug": "python",
        "skill": "python",
        "subscription_id": str(valid.subscription),
        "alert_id": str(valid.alert),
        "delivery_id": str(valid.delivery),
        "name": "crawl",
        "source_id": "1",
        "action": "pause",
    }


def token_for(path: str, valid: Fixture) -> str:
    for prefix, token in (
        ("/confirm/", valid.confirm),
        ("/u/", valid.unsubscribe),
        ("/alerts/off/", valid.alert_off),
    ):
        if path.startswith(prefix):
            return token
    return valid.manage


# Query parameters read from request.query_params (not declared, so not in the schema).
EXTRA_QUERY = {
    "/subscribe": ["email", "skill", "cadence", "hour", "weekday", "timezone"],
    "/admin/deliveries": ["status", "email", "skill", "from", "to", "page"],
    "/manage/{token}": ["note"],
    "/admin/deliveries/{delivery_id}": ["replayed"],
    "/admin/audit": ["actor", "action", "from", "to", "before"],
}
# Form fields of the HTML forms, with a valid value each; a route may be walked from several bases.
FORMS: dict[str, list[dict[str, str]]] = {
    "/subscribe": [
        {
            "email": "form@example.com",
            "skill": "python",
            "more": "rust",
            "cadence": "weekly",
            "hour": "8",
            "weekday": "2",
            "timezone": "UTC",
            "website": "",
        }
    ],
    "/manage/{token}": [
        {"action": "add", "subscription": "{subscription}", "skills": "rust"},
        {"action": "remove", "subscription": "{subscription}", "skill": "python"},
        {"action": "pause", "subscription": "{subscription}"},
        {"action": "unsubscribe", "subscription": "{subscription}"},
        {
            "action": "schedule",
            "subscription": "{subscription}",
            "cadence": "daily",
            "hour": "7",
            "weekday": "1",
            "timezone": "Europe/Berlin",
        },
    ],
    "/manage/{token}/alerts": [
        {"action": "add", "skill": "python", "period": "7d", "threshold": "40", "min_count": "5"},
        {"action": "alert_off", "alert": "{alert}"},
    ],
    "/admin/login": [{"token": "wrong-guess", "next": "/admin"}],
    "/admin/deliveries/{delivery_id}/copy": [{"address": "copy@example.com"}],
    "/admin/deliveries/{delivery_id}/resend": [{"confirmed": "yes"}],
    "/admin/sending": [{"to": "pause", "confirmed": "yes"}],
    "/admin/feeds/{source_id}/interval": [{"value": "30m"}],
    "/admin/feeds/{source_id}/{action}": [{}],
    "/admin/schedules/{name}": [{"value": "15m"}],
}
CSRF_FORMS = {"/subscribe": "subscribe", "/manage/{token}": "manage", "/manage/{token}/alerts": "manage"}
# Valid JSON bodies, by route.
JSON_BODIES: dict[str, dict[str, Any]] = {
    "/api/subscriptions": {"email": "api@example.com", "skills": ["python"], "cadence": "daily", "hour": 7},
    "/api/manage/{token}/subscriptions/{subscription_id}": {
        "hour": 6,
        "timezone": "UTC",
        "add_skills": ["rust"],
        "remove_skills": ["python"],
        "state": "paused",
        "cadence": "weekly",
        "weekday": 3,
    },
    "/api/manage/{token}/alerts": {"skill": "python", "period": "24h", "threshold": 30, "min_count": 3},
}


def url(template: str, values: dict[str, str]) -> str:
    """The path with each ``{name}`` replaced by its value, percent-encoded unless it already is."""

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return value if value in RAW_URL else quote(value, safe="")

    return re.sub(r"\{(\w+)\}", fill, template)


def query(values: dict[str, str]) -> str:
    parts = [f"{quote(k)}={v if v in RAW_URL else quote(v, safe='')}" for k, v in values.items()]
    return "?" + "&".join(parts) if parts else ""


def walk(client: httpx.Client, settings: Settings, valid: Fixture) -> Tally:
    tally = Tally()
    schema = client.get("/openapi.json").json()
    bearer = {"Authorization": f"Bearer {ADMIN}"}
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            base_path = {**path_values(valid), "token": token_for(template, valid)}
            declared = {p["name"]: p["in"] for p in operation.get("parameters", [])}
            path_names = [name for name, where in declared.items() if where == "path"]
            query_names = [name for name, where in declared.items() if where == "query"]
            query_names += EXTRA_QUERY.get(template, []) if method == "get" else []
            headers = bearer if template.startswith("/admin") and template != "/admin/login" else {}
            body = JSON_BODIES.get(template) if method in ("post", "patch") else None
            forms = FORMS.get(template, [{}]) if method == "post" and body is None else [{}]

            def send(
                paths: dict[str, str],
                queries: dict[str, str],
                form: dict[str, str] | None = None,
                content: str | bytes | None = None,
                *,
                template: str = template,
                method: str = method,
                headers: dict[str, str] = headers,
            ) -> httpx.Response:
                target = url(template, paths) + query(queries)
                tally.sent += 1
                extra = {**headers, "X-Forwarded-For": str(ipaddress.ip_address(0x0A000000 + tally.sent))}
                data: Any = None
                if form is not None:
                    data = {
                        k: v.format(subscription=valid.subscription, alert=valid.alert)
                        for k, v in form.items()
                    }
                    if template in CSRF_FORMS:
                        bind = paths["token"] if "{token}" in template else ""
                        data["csrf"] = web_security.csrf_token(
                            settings.secret_key, CSRF_FORMS[template], bind, NONCE
                        )
                if content is not None:
                    extra["content-type"] = "application/json"
                try:
                    return client.request(method.upper(), target, headers=extra, data=data, content=content)
                except httpx.TransportError as exc:
                    # What a crash looks like from outside: the server drops the connection.
                    return httpx.Response(599, text=f"transport error: {exc}")

            def body_text(fields: dict[str, str]) -> str:
                return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"

            valid_body = {k: json.dumps(v) for k, v in (body or {}).items()}
            for form in forms:
                valid_form = form if method == "post" and template in FORMS else None
                content = body_text(valid_body) if body is not None else None
                tally.check(f"{method} {template} valid", send(base_path, {}, valid_form, content))
                for name in path_names + ["token"] * ("{token}" in template):
                    for value in TEXT + RAW_URL:
                        if value == "" and name in path_names:
                            continue  # an empty path segment is another route
                        answer = send({**base_path, name: value}, {}, valid_form, content)
                        tally.check(f"{method} {template} path {name}={value[:20]!r}", answer)
                for name in query_names:
                    for value in TEXT + RAW_URL:
                        answer = send(base_path, {name: value}, valid_form, content)
                        tally.check(f"{method} {template} query {name}={value[:20]!r}", answer)
                for name in form:
                    for value in TEXT:
                        answer = send(base_path, {}, {**form, name: value}, content)
                        tally.check(f"{method} {template} form {name}={value[:20]!r} ({form})", answer)
                if body is not None:
                    for name in body:
                        for value in JSON_VALUES:
                            answer = send(base_path, {}, None, body_text({**valid_body, name: value}))
                            tally.check(f"{method} {template} json {name}={value[:20]!r}", answer)
                    for whole in BODIES:
                        answer = send(base_path, {}, None, whole.encode("utf-8", "surrogatepass"))
                        tally.check(f"{method} {template} body {whole[:20]!r}", answer)
    # Routes outside the schema: static files, the docs and the metrics behind their bearer token.
    for template in ("/static/{file}", "/docs/assets/{file}"):
        for value in [*TEXT[1:], *RAW_URL, "..%2F..%2Fpyproject.toml", "%2e%2e/%2e%2e/pyproject.toml"]:
            target = template.replace("{file}", value if "%" in value else quote(value, safe=""))
            tally.check(f"get {template} {value[:20]!r}", client.get(target))
    for path in ("/docs", "/openapi.json", "/metrics"):
        for value in [value for value in TEXT if value.strip() and value.isascii() and value.isprintable()]:
            answer = client.get(path, headers={"Authorization": f"Bearer {value}"})
            tally.check(f"get {path} bearer {value[:20]!r}", answer)
    return tally


def test_no_input_answers_500_on_any_route_or_form(
    client: httpx.Client, walk_settings: Settings, valid: Fixture, database_url: str
) -> None:
    tally = walk(client, walk_settings, valid)

    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    print(
        f"\nhostile inputs tried on {kind}: {tally.tried}, answers breaking the rule: {len(tally.failures)}"
    )
    assert tally.tried > 3000
    assert not tally.failures, "\n".join(tally.failures[:60])


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("threshold", "5000", "Enter a whole number of percent from 1 to 1000."),
        ("threshold", "-5", "Enter a whole number of percent from 1 to 1000."),
        ("threshold", "abc", "Enter a whole number of percent from 1 to 1000."),
        ("min_count", "0", "Enter a whole number of mentions from 1 to 100000."),
        ("skill", "x" * 201, "Name a skill, such as Python or Kubernetes."),
        ("skill", "", "Name a skill, such as Python or Kubernetes."),
        ("period", "1y", "Choose “last 24 hours” or “last 7 days”."),
    ],
)
def test_the_alert_form_refuses_a_bad_value_in_words_instead_of_a_default(
    client: httpx.Client,
    walk_settings: Settings,
    valid: Fixture,
    rt: Runtime,
    field: str,
    value: str,
    words: str,
) -> None:
    form = {
        "action": "add",
        "skill": "rust",
        "period": "7d",
        "threshold": "40",
        "min_count": "5",
        field: value,
    }
    form["csrf"] = web_security.csrf_token(walk_settings.secret_key, "manage", valid.manage, NONCE)

    answer = client.post(f"/manage/{valid.manage}/alerts", data=form)

    # Issue 17: on the manage page, beside the field, once, with what was typed kept.
    assert answer.status_code == 400 and answer.text.count(words) == 1
    assert f'id="alert-{field}-error"' in answer.text and "Trend alerts" in answer.text
    with transaction(rt.sessions) as session:
        assert [alert.skill for alert in alerts.of_subscriber(session, valid.subscriber)] == ["Python"]


@pytest.mark.parametrize(
    "body",
    [
        '{"email": "a@example.com", "skills": ["python"], "hour": NaN}',
        '{"email": "a@example.com", "skills": ["python"], "hour": Infinity}',
        '{"email": "\\ud800", "skills": ["python"]}',
        '{"email": "a@example.com", "skills": ["\\ud800\\u0000"]}',
    ],
)
def test_a_refused_json_body_is_described_without_echoing_it(
    client: httpx.Client, valid: Fixture, body: str
) -> None:
    answer = client.post("/api/subscriptions", content=body, headers={"content-type": "application/json"})

    assert answer.status_code == 422
    errors = answer.json()["detail"]
    assert errors and all(set(error) == {"loc", "msg", "type"} and error["msg"] for error in errors)
    assert "\\ud800" not in answer.text and "NaN" not in answer.text
