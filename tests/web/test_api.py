"""The JSON API over real HTTP: 202 signups with the confirmation mailed, 422 per field, manage tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from digest.db import transaction
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import describe, subscribe
from digest.runtime import Runtime
from digest.tokens import MANAGE, make_token
from digest.web import create_app
from tests.web_support import outbox, serve

SIGNUP = {"email": "api@example.com", "skills": ["python", "Rust"], "cadence": "weekly", "weekday": 4}


@pytest.fixture
def client(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        yield http


def follow(rt: Runtime, email: str, cadence: str, now: datetime, *skills: str) -> tuple[int, str]:
    with transaction(rt.sessions) as session:
        info = subscribe(session, email, skills, Schedule(cadence, 8, 0, "UTC"), now, confirmed=True)
    return info.id, make_token(rt.settings.secret_key, MANAGE, {"u": info.subscriber_id})


def test_a_signup_answers_202_and_mails_the_confirmation_link(client: httpx.Client, rt: Runtime) -> None:
    answer = client.post("/api/subscriptions", json=SIGNUP)

    assert answer.status_code == 202 and answer.json()["status"] == "pending"
    [message] = outbox(rt.settings)
    assert message["Subject"] == "Confirm your weekly digest about Python, Rust"
    assert "every Friday at 08:00 (UTC)" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_bad_input_answers_422_with_a_message_per_field(client: httpx.Client, rt: Runtime) -> None:
    bad = {
        "email": "nope",
        "skills": ["python", "pythn"],
        "cadence": "yearly",
        "hour": 25,
        "timezone": "Mars/Base",
    }

    answer = client.post("/api/subscriptions", json=bad)

    assert answer.status_code == 422
    fields = {tuple(error["loc"][1:]) for error in answer.json()["detail"]}
    assert fields == {("email",), ("cadence",), ("hour",), ("timezone",)}
    unknown = client.post("/api/subscriptions", json={**SIGNUP, "skills": ["python", "pythn"]})
    [error] = unknown.json()["detail"]
    assert unknown.status_code == 422 and error["loc"] == ["body", "skills", 1] and "Python" in error["msg"]
    assert outbox(rt.settings) == []


def test_line_breaks_anywhere_are_refused(client: httpx.Client, rt: Runtime) -> None:
    for field, value in (("email", "a@example.com\r\nBcc: b@example.com"), ("skills", ["python\n"])):
        answer = client.post("/api/subscriptions", json={**SIGNUP, field: value})
        assert answer.status_code == 422
    assert outbox(rt.settings) == []


def test_the_manage_token_reads_changes_and_deletes_its_own_subscriptions(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    daily, token = follow(rt, "me@example.com", "daily", now, "Python")

    read = client.get(f"/api/manage/{token}").json()
    changed = client.patch(
        f"/api/manage/{token}/subscriptions/{daily}",
        json={"hour": 6, "timezone": "Europe/Berlin", "add_skills": ["rust"], "state": "paused"},
    ).json()
    deleted = client.delete(f"/api/manage/{token}/subscriptions/{daily}").json()

    assert read["email"] == "me@example.com" and read["subscriptions"][0]["skills"] == ["Python"]
    assert (changed["hour"], changed["timezone"], changed["state"]) == (6, "Europe/Berlin", "paused")
    assert changed["skills"] == ["Python", "Rust"]
    assert deleted["state"] == "unsubscribed"


def test_a_manage_token_never_reaches_another_persons_subscription(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    _, mine = follow(rt, "me@example.com", "daily", now, "Python")
    theirs, _ = follow(rt, "them@example.com", "daily", now, "Python")

    patch = client.patch(f"/api/manage/{mine}/subscriptions/{theirs}", json={"state": "paused"})
    delete = client.delete(f"/api/manage/{mine}/subscriptions/{theirs}")
    forged = client.get(f"/api/manage/{mine[:-3]}xyz")

    assert [r.status_code for r in (patch, delete, forged)] == [400, 400, 400]
    assert "them@example.com" not in patch.text + delete.text + forged.text
    with transaction(rt.sessions) as session:
        assert describe(session, theirs).state == "active"


def test_deleting_with_the_token_unsubscribes_everything(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    follow(rt, "me@example.com", "daily", now, "Python")
    _, token = follow(rt, "me@example.com", "weekly", now, "Rust")

    answer = client.delete(f"/api/manage/{token}")

    assert [s["state"] for s in answer.json()["subscriptions"]] == ["unsubscribed", "unsubscribed"]


def test_the_openapi_description_is_at_docs(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/subscriptions", "/api/manage/{token}"} <= set(paths)
