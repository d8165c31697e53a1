"""Subscriptions and alerts a platform makes under /api/v1: verified ones start at once (the key named and
audited), others by double opt-in; a suppressed address is 409; each key reaches only what it made."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from digest.db import transaction
from digest.deliver import suppression
from digest.models import AuditEntry, Subscription
from digest.runtime import Runtime
from digest.web import create_app
from tests.web.api_v1_support import bearer, new_key, problem_of
from tests.web_support import outbox, serve

NEW = {
    "email": "Ada@Example.com",
    "skills": ["python", "k8s"],
    "cadence": "daily",
    "hour": 7,
    "verified": True,
}


@pytest.fixture
def client(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        yield http


@pytest.fixture
def key(rt: Runtime, now: datetime) -> dict[str, str]:
    return bearer(new_key(rt, "skill-site", now, "subscribe"))


def created(client: httpx.Client, key: dict[str, str], **changes: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/subscriptions", json={**NEW, **changes}, headers=key)
    assert answer.status_code in (201, 202), answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_verified_subscription_starts_at_once_with_the_key_named_and_audited(
    client: httpx.Client, rt: Runtime, key: dict[str, str]
) -> None:
    answer = client.post("/api/v1/subscriptions", json=NEW, headers=key)

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["email"] == "ada@example.com" and body["state"] == "active"
    assert body["skills"] == ["Kubernetes", "Python"] and body["hour"] == 7
    assert body["vouched_by"] == "skill-site"
    assert outbox(rt.settings) == []
    with transaction(rt.sessions) as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "subscription.vouch")).all()
        assert entry.actor == "api:skill-site" and entry.arguments["subscription"] == body["id"]


def test_without_verified_it_is_double_opt_in(client: httpx.Client, rt: Runtime, key: dict[str, str]) -> None:
    answer = client.post("/api/v1/subscriptions", json={**NEW, "verified": False}, headers=key)

    assert answer.status_code == 202, answer.text
    assert answer.json()["state"] == "pending" and answer.json()["vouched_by"] is None
    [message] = outbox(rt.settings)
    assert message["To"] == "ada@example.com" and "Confirm" in str(message["Subject"])
    assert client.get(f"/api/v1/subscriptions/{answer.json()['id']}", headers=key).status_code == 200


def test_a_suppressed_address_is_409_even_verified(
    client: httpx.Client, rt: Runtime, key: dict[str, str], now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        suppression.suppress(session, rt.settings.secret_key, "ada@example.com", "complaint", "test", now)

    refused = client.post("/api/v1/subscriptions", json=NEW, headers=key)

    assert "complained" in problem_of(refused, 409)["detail"]
    with transaction(rt.sessions) as session:
        assert session.scalars(select(Subscription)).all() == []


@pytest.mark.parametrize(
    "changes",
    [
        {"email": "not an address"},
        {"email": "a@example.com\r\nBcc: b@example.com"},
        {"skills": []},
        {"skills": ["pythn"]},
        {"skills": "python"},
        {"cadence": "yearly"},
        {"hour": 24},
        {"hour": "seven"},
        {"weekday": -1},
        {"timezone": "Mars/Base"},
        {"verified": "maybe"},
    ],
)
def test_bad_fields_are_422_and_nothing_is_made(
    client: httpx.Client, rt: Runtime, key: dict[str, str], changes: dict[str, Any]
) -> None:
    problem = problem_of(client.post("/api/v1/subscriptions", json={**NEW, **changes}, headers=key), 422)

    [field] = changes
    assert [error["loc"][:2] for error in problem["errors"]] == [["body", field]]
    with transaction(rt.sessions) as session:
        assert session.scalars(select(Subscription)).all() == []


def test_an_unknown_skill_names_the_closest(client: httpx.Client, key: dict[str, str]) -> None:
    problem = problem_of(
        client.post("/api/v1/subscriptions", json={**NEW, "skills": ["pythn"]}, headers=key), 422
    )

    assert "did you mean Python" in problem["errors"][0]["msg"]


def test_each_key_reaches_only_what_it_made_and_admin_reaches_all(
    client: httpx.Client, rt: Runtime, key: dict[str, str], now: datetime
) -> None:
    mine = created(client, key)["id"]
    other = bearer(new_key(rt, "other", now, "subscribe"))
    admin = bearer(new_key(rt, "ops", now, "admin"))

    for answer in (
        client.get(f"/api/v1/subscriptions/{mine}", headers=other),
        client.patch(f"/api/v1/subscriptions/{mine}", json={"hour": 9}, headers=other),
        client.delete(f"/api/v1/subscriptions/{mine}", headers=other),
        client.post(f"/api/v1/subscriptions/{mine}/preview", headers=other),
        client.post(f"/api/v1/subscriptions/{mine}/run", headers=other),
        client.get("/api/v1/subscriptions/999999", headers=key),
    ):
        problem_of(answer, 404)
    problem_of(client.post("/api/v1/subscriptions", json=NEW, headers=other), 409)
    assert client.get(f"/api/v1/subscriptions/{mine}", headers=admin).json()["state"] == "active"
    problem_of(client.get("/api/v1/subscriptions/abc", headers=key), 422)


def test_patch_changes_the_schedule_and_replaces_the_skills(
    client: httpx.Client, key: dict[str, str]
) -> None:
    made = created(client, key)["id"]

    changed = client.patch(
        f"/api/v1/subscriptions/{made}",
        json={"cadence": "weekly", "hour": 18, "weekday": 4, "timezone": "Europe/Berlin", "skills": ["rust"]},
        headers=key,
    )
    paused = client.patch(f"/api/v1/subscriptions/{made}", json={"state": "paused"}, headers=key)

    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["cadence"], body["hour"], body["weekday"], body["timezone"]) == (
        "weekly",
        18,
        4,
        "Europe/Berlin",
    )
    assert body["skills"] == ["Rust"]
    assert paused.json()["state"] == "paused" and paused.json()["skills"] == ["Rust"]


@pytest.mark.parametrize(
    "patch",
    [
        {"hour": -1},
        {"skills": []},
        {"skills": ["qqqqqq"]},
        {"state": "gone"},
        {"cadence": 3},
        {"timezone": "X/Y"},
    ],
)
def test_a_bad_patch_is_422(client: httpx.Client, key: dict[str, str], patch: dict[str, Any]) -> None:
    made = created(client, key)["id"]

    problem_of(client.patch(f"/api/v1/subscriptions/{made}", json=patch, headers=key), 422)


def test_resuming_a_suppressed_address_is_409(
    client: httpx.Client, rt: Runtime, key: dict[str, str], now: datetime
) -> None:
    made = created(client, key)["id"]
    client.patch(f"/api/v1/subscriptions/{made}", json={"state": "paused"}, headers=key)
    with transaction(rt.sessions) as session:
        suppression.suppress(session, rt.settings.secret_key, "ada@example.com", "bounce", "test", now)

    problem_of(client.patch(f"/api/v1/subscriptions/{made}", json={"state": "active"}, headers=key), 409)


def test_delete_unsubscribes_and_saying_it_twice_is_not_an_error(
    client: httpx.Client, key: dict[str, str]
) -> None:
    made = created(client, key)["id"]

    first = client.delete(f"/api/v1/subscriptions/{made}", headers=key)
    second = client.delete(f"/api/v1/subscriptions/{made}", headers=key)

    assert first.json()["state"] == second.json()["state"] == "unsubscribed"


def test_alerts_are_made_read_changed_and_turned_off_for_an_address_we_mail(
    client: httpx.Client, rt: Runtime, key: dict[str, str], now: datetime
) -> None:
    refused = client.post("/api/v1/alerts", json={"email": "ada@example.com", "skill": "rust"}, headers=key)
    created(client, key)

    made = client.post(
        "/api/v1/alerts", json={"email": "ada@example.com", "skill": "rust", "threshold": 80}, headers=key
    )
    alert = made.json()
    changed = client.patch(
        f"/api/v1/alerts/{alert['id']}", json={"period": "7d", "min_count": 3}, headers=key
    )
    read = client.get(f"/api/v1/alerts/{alert['id']}", headers=key)
    off = client.delete(f"/api/v1/alerts/{alert['id']}", headers=key)

    assert "create a verified subscription first" in problem_of(refused, 409)["detail"]
    assert made.status_code == 201, made.text
    assert (alert["skill"], alert["period"], alert["threshold"], alert["min_count"]) == (
        "Rust",
        "24h",
        80,
        10,
    )
    assert (changed.json()["period"], changed.json()["min_count"], changed.json()["threshold"]) == (
        "7d",
        3,
        80,
    )
    assert read.json() == changed.json()
    assert off.json()["state"] == "off"
    other = bearer(new_key(rt, "other", now, "subscribe"))
    problem_of(client.get(f"/api/v1/alerts/{alert['id']}", headers=other), 404)


def test_bad_alerts_are_422_and_a_clashing_period_is_409(client: httpx.Client, key: dict[str, str]) -> None:
    created(client, key)
    base = {"email": "ada@example.com", "skill": "rust"}
    day = client.post("/api/v1/alerts", json=base, headers=key).json()
    client.post("/api/v1/alerts", json={**base, "period": "7d"}, headers=key)

    for body in (
        {**base, "skill": "rustt"},
        {**base, "period": "1y"},
        {**base, "threshold": 0},
        {"skill": "rust"},
    ):
        problem_of(client.post("/api/v1/alerts", json=body, headers=key), 422)
    problem_of(client.patch(f"/api/v1/alerts/{day['id']}", json={"threshold": "high"}, headers=key), 422)
    problem_of(client.patch(f"/api/v1/alerts/{day['id']}", json={"period": "7d"}, headers=key), 409)
    problem_of(client.get("/api/v1/alerts/999999", headers=key), 404)
