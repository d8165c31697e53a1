"""Before any route: the body limit, the client address behind a proxy, admin sessions and guesses
(issue 14, findings 7, 10 and 11)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.db import transaction
from digest.models import AuditEntry, Subscriber
from digest.runtime import Runtime
from digest.web import create_app
from digest.web.admin import BEARER_LIMIT, LOGIN_LIMIT
from tests.web_support import csrf, outbox, serve

ADMIN = "admin-token-for-tests-0123456789"
SIGNUP = {"email": "edge@example.com", "skills": ["python"], "cadence": "daily"}


def app_with(settings: Settings, now: datetime, **changes: Any) -> Iterator[httpx.Client]:
    with serve(create_app(settings.model_copy(update=changes), clock=lambda: now)) as http:
        yield http


@pytest.fixture
def client(rt: Runtime, settings: Settings, now: datetime) -> Iterator[httpx.Client]:
    yield from app_with(settings, now, admin_token=ADMIN)


def subscribers(rt: Runtime) -> list[str]:
    with transaction(rt.sessions) as session:
        return list(session.scalars(select(Subscriber.email)))


# --- finding 7: the body limit ----------------------------------------------------------------------------


def test_a_json_body_over_64_kib_is_413_and_nothing_is_stored(client: httpx.Client, rt: Runtime) -> None:
    padded = {**SIGNUP, "timezone": "UTC", "padding": "x" * 70_000}

    answer = client.post("/api/subscriptions", json=padded)

    assert answer.status_code == 413 and "64 KiB" in answer.json()["detail"]
    assert subscribers(rt) == [] and outbox(rt.settings) == []
    assert client.post("/api/subscriptions", json=SIGNUP).status_code == 202


def test_a_streamed_body_without_a_length_is_cut_off_at_64_kib(client: httpx.Client, rt: Runtime) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        # 100 MB announced by nothing: the server must stop reading long before the end.
        nonlocal sent
        yield b'{"email": "big@example.com", "skills": ["python"], "x": "'
        for _ in range(100_000):
            sent += 1
            yield b"x" * 1000
        yield b'"}'

    try:
        answer = client.post(
            "/api/subscriptions", content=chunks(), headers={"content-type": "application/json"}
        )
    except httpx.TransportError:
        answer = None  # the server answered and closed while the client was still sending: also a refusal
    if answer is not None:
        assert answer.status_code == 413
    assert sent < 100_000 and subscribers(rt) == []


def test_a_body_announced_over_the_limit_is_refused_before_it_is_sent(client: httpx.Client) -> None:
    port = int(str(client.base_url).rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(
            b"POST /api/subscriptions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n"
        )
        head = raw.recv(4096)

    assert head.startswith(b"HTTP/1.1 413")


# --- finding 11: the client address -----------------------------------------------------------------------


def test_by_default_x_forwarded_for_from_loopback_is_ignored(
    rt: Runtime, settings: Settings, now: datetime
) -> None:
    for http in app_with(settings, now, admin_token=ADMIN):
        answers = [
            log_in(http, "wrong-guess", {"X-Forwarded-For": f"203.0.113.{n}"}).status_code
            for n in range(LOGIN_LIMIT + 1)
        ]
    # Every guess counted against 127.0.0.1 whatever the header said.
    assert answers[-1] == 429
    assert {entry["ip"] for entry in audited(rt, "admin.login")} == {"127.0.0.1"}


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(
    rt: Runtime, settings: Settings, now: datetime
) -> None:
    for http in app_with(settings, now, admin_token=ADMIN, trusted_proxies="127.0.0.0/8"):
        first = [
            log_in(http, "wrong-guess", {"X-Forwarded-For": "198.51.100.7, 203.0.113.1"}).status_code
            for _ in range(LOGIN_LIMIT + 1)
        ]
        other = log_in(http, "wrong-guess", {"X-Forwarded-For": "203.0.113.2"}).status_code
    # The right-most address our proxy saw is the client; what the client wrote before it is not believed.
    assert first[-1] == 429 and other == 401
    assert {entry["ip"] for entry in audited(rt, "admin.login")} == {"203.0.113.1", "203.0.113.2"}


# --- finding 10: admin sessions and guesses ---------------------------------------------------------------


def log_in(http: httpx.Client, token: str = ADMIN, headers: dict[str, str] | None = None) -> httpx.Response:
    form = http.get("/admin/login")
    return http.post("/admin/login", data={"csrf": csrf(form.text), "token": token}, headers=headers or {})


def audited(rt: Runtime, action: str) -> list[dict[str, Any]]:
    with transaction(rt.sessions) as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
        return [dict(row.arguments, result=row.result) for row in rows]


def test_a_session_cookie_copied_before_logout_no_longer_opens_admin(client: httpx.Client) -> None:
    assert log_in(client).status_code == 303
    page = client.get("/admin")
    copied = dict(client.cookies)

    assert client.post("/admin/logout", data={"csrf": csrf(page.text)}).status_code == 303

    client.cookies.clear()
    for name, value in copied.items():
        client.cookies.set(name, value, domain="127.0.0.1", path="/admin" if name == "digest_admin" else "/")
    assert client.get("/admin").status_code == 303
    assert log_in(client).status_code == 303 and client.get("/admin").status_code == 200


def test_bearer_guesses_are_audited_and_limited_with_retry_after(client: httpx.Client, rt: Runtime) -> None:
    answers = [
        client.get("/admin", headers={"Authorization": f"Bearer guess-{n}"}) for n in range(BEARER_LIMIT + 1)
    ]

    assert {answer.status_code for answer in answers[:BEARER_LIMIT]} == {401}
    assert answers[-1].status_code == 429 and 0 < int(answers[-1].headers["retry-after"]) <= 900
    # Over the limit even the right token waits: counting comes before comparing.
    assert client.get("/admin", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 429
    assert len(audited(rt, "admin.bearer")) == BEARER_LIMIT


def test_every_429_carries_retry_after(client: httpx.Client) -> None:
    answers = [log_in(client, "wrong-guess") for _ in range(LOGIN_LIMIT + 1)]
    signups = [
        client.post("/api/subscriptions", json={**SIGNUP, "email": f"s{n}@example.com"}) for n in range(31)
    ]

    assert answers[-1].status_code == 429 and int(answers[-1].headers["retry-after"]) > 0
    assert signups[-1].status_code == 429 and int(signups[-1].headers["retry-after"]) > 0
