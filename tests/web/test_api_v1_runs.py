"""Preview and run of a platform's subscription: the preview stores and sends nothing; a run sends the open
window once through the outbox, and an ``Idempotency-Key`` repeats the first answer (one email)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from digest.db import transaction
from digest.ingest.skills import resolve_skill
from digest.models import Delivery, IdempotentRequest
from digest.ops import apikeys
from digest.runtime import Runtime
from digest.web import create_app
from digest.web.api_v1 import idempotency
from tests.factories import NewItem, NewTag, add_items, add_source
from tests.web.api_v1_support import Clock, bearer, new_key, problem_of
from tests.web_support import outbox, serve

NEW = {"email": "ada@example.com", "skills": ["python"], "cadence": "daily", "hour": 8, "verified": True}


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def client(rt: Runtime, clock: Clock) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=clock)) as http:
        yield http


@pytest.fixture
def key(rt: Runtime, now: datetime) -> dict[str, str]:
    return bearer(new_key(rt, "skill-site", now, "subscribe"))


@pytest.fixture
def subscription(client: httpx.Client, rt: Runtime, key: dict[str, str], now: datetime) -> int:
    """A verified daily subscription to Python, with two Python items stored in its open window."""
    with transaction(rt.sessions) as session:
        source = add_source(session, "Wire", now)
        python = resolve_skill(session, "python").id
        add_items(
            session,
            [
                NewItem(
                    source,
                    f"Python story {n}",
                    now - timedelta(minutes=20 + n),
                    [NewTag(python, ["Python"], True)],
                )
                for n in range(2)
            ],
        )
    answer = client.post("/api/v1/subscriptions", json=NEW, headers=key)
    assert answer.status_code == 201, answer.text
    made: int = answer.json()["id"]
    return made


def deliveries(rt: Runtime) -> list[Delivery]:
    with transaction(rt.sessions) as session:
        return list(session.scalars(select(Delivery)))


def test_the_preview_shows_sections_and_html_and_stores_nothing(
    client: httpx.Client, rt: Runtime, key: dict[str, str], subscription: int
) -> None:
    answer = client.post(f"/api/v1/subscriptions/{subscription}/preview", headers=key)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    [section] = body["sections"]
    assert section["skill_name"] == "Python"
    assert sorted(item["title"] for item in section["items"]) == ["Python story 0", "Python story 1"]
    assert "Python story 0" in body["html"] and "Python story 0" in body["text"]
    assert body["window_end"] > body["window_start"] and body["subject"]
    assert deliveries(rt) == [] and outbox(rt.settings) == []


def test_a_run_sends_the_open_window_once(
    client: httpx.Client, rt: Runtime, key: dict[str, str], subscription: int, now: datetime
) -> None:
    first = client.post(f"/api/v1/subscriptions/{subscription}/run", headers=key)
    again = client.post(f"/api/v1/subscriptions/{subscription}/run", headers=key)

    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "sent" and body["items"] == 2 and body["message_id"]
    assert body["window_end"] == now.isoformat().replace("+00:00", "Z")
    [message] = outbox(rt.settings)
    assert message["Message-ID"] == body["message_id"]
    # Nothing new since: the window closed now, and the next dispatch starts there.
    assert "nothing new" in problem_of(again, 409)["detail"]
    [delivery] = deliveries(rt)
    assert delivery.status == "sent" and delivery.window_end == now


def test_one_idempotency_key_answers_the_first_result_and_sends_one_email(
    client: httpx.Client, rt: Runtime, key: dict[str, str], subscription: int, clock: Clock
) -> None:
    url = f"/api/v1/subscriptions/{subscription}/run"
    once = {**key, "Idempotency-Key": "run-2026-11-16"}

    first = client.post(url, headers=once)
    clock.now += timedelta(minutes=5)
    repeat = client.post(url, headers=once)
    other_body = client.post(url, headers=once, content=b'{"force": true}')

    assert first.status_code == repeat.status_code == 200
    assert repeat.json() == first.json() and first.json()["status"] == "sent"
    assert len(outbox(rt.settings)) == 1 and len(deliveries(rt)) == 1
    assert "another request" in problem_of(other_body, 422)["detail"]


def test_a_run_still_going_under_the_same_key_is_409_and_a_failed_one_can_be_retried(
    client: httpx.Client, rt: Runtime, key: dict[str, str], subscription: int, now: datetime
) -> None:
    url = f"/api/v1/subscriptions/{subscription}/run"
    with transaction(rt.sessions) as session:
        [caller] = apikeys.list_keys(session)
        # As the first request leaves it while it runs: reserved, no answer yet.
        running = IdempotentRequest(
            api_key_id=caller.id,
            key="busy",
            fingerprint=idempotency.fingerprint("POST", url, b""),
            created_at=now,
        )
        session.add(running)
    client.patch(f"/api/v1/subscriptions/{subscription}", json={"state": "paused"}, headers=key)

    paused = client.post(url, headers={**key, "Idempotency-Key": "retry-me"})
    client.patch(f"/api/v1/subscriptions/{subscription}", json={"state": "active"}, headers=key)
    resumed = client.post(url, headers={**key, "Idempotency-Key": "retry-me"})
    busy = client.post(url, headers={**key, "Idempotency-Key": "busy"})

    assert "paused" in problem_of(paused, 409)["detail"]
    assert resumed.status_code == 200 and resumed.json()["status"] == "sent"
    assert "still running" in problem_of(busy, 409)["detail"]


@pytest.mark.parametrize("value", ["", "x" * 256, "caf\u00e9"])
def test_a_malformed_idempotency_key_is_400(
    client: httpx.Client, key: dict[str, str], subscription: int, value: str
) -> None:
    headers: dict[str, Any] = {**key, "Idempotency-Key": value.encode()}

    problem_of(client.post(f"/api/v1/subscriptions/{subscription}/run", headers=headers), 400)


def test_a_subscription_awaiting_confirmation_is_not_run(client: httpx.Client, key: dict[str, str]) -> None:
    pending = client.post("/api/v1/subscriptions", json={**NEW, "verified": False}, headers=key).json()

    assert (
        "pending"
        in problem_of(client.post(f"/api/v1/subscriptions/{pending['id']}/run", headers=key), 409)["detail"]
    )
