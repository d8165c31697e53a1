"""A platform's whole flow on /api/v1 (issue 19, "Done when"): resolve a text, create a verified
subscription with a key, preview, run twice with one idempotency key (one email), patch the cadence,
delete."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from digest.db import transaction
from digest.ingest.skills import resolve_skill
from digest.runtime import Runtime
from digest.web import create_app
from tests.factories import NewItem, NewTag, add_items, add_source
from tests.web.api_v1_support import Clock, bearer, new_key
from tests.web_support import outbox, serve

PROFILE = "Senior engineer: Kubernetes operators in Go, some PyTorch on the side."


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def client(rt: Runtime, clock: Clock) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=clock)) as http:
        yield http


def test_a_platform_resolves_subscribes_previews_runs_once_changes_and_deletes(
    client: httpx.Client, rt: Runtime, clock: Clock
) -> None:
    key = bearer(new_key(rt, "skill-site", clock.now, "read", "subscribe"))
    with transaction(rt.sessions) as session:
        source = add_source(session, "Wire", clock.now)
        k8s = resolve_skill(session, "kubernetes").id
        item = NewItem(
            source,
            "Kubernetes 1.32 released",
            clock.now - timedelta(minutes=30),
            [NewTag(k8s, ["Kubernetes"], True)],
        )
        add_items(session, [item])

    resolved = client.post("/api/v1/resolve", json={"text": PROFILE}, headers=key).json()
    skills = [entity["skill"]["id"] for entity in resolved["entities"]]
    made = client.post(
        "/api/v1/subscriptions",
        json={"email": "grace@example.com", "skills": skills, "cadence": "daily", "verified": True},
        headers=key,
    )
    subscription = made.json()["id"]
    preview = client.post(f"/api/v1/subscriptions/{subscription}/preview", headers=key).json()
    once = {**key, "Idempotency-Key": "welcome-digest"}
    runs = [client.post(f"/api/v1/subscriptions/{subscription}/run", headers=once) for _ in range(2)]
    changed = client.patch(f"/api/v1/subscriptions/{subscription}", json={"cadence": "weekly"}, headers=key)
    deleted = client.delete(f"/api/v1/subscriptions/{subscription}", headers=key)

    assert sorted(entity["skill"]["name"] for entity in resolved["entities"]) == [
        "Go",
        "Kubernetes",
        "PyTorch",
    ]
    assert made.status_code == 201 and made.json()["state"] == "active"
    assert [item["title"] for section in preview["sections"] for item in section["items"]] == [
        "Kubernetes 1.32 released"
    ]
    assert [run.status_code for run in runs] == [200, 200] and runs[0].json() == runs[1].json()
    assert runs[0].json()["status"] == "sent" and runs[0].json()["items"] == 1
    [message] = outbox(rt.settings)
    assert message["To"] == "grace@example.com" and message["Message-ID"] == runs[0].json()["message_id"]
    assert changed.json()["cadence"] == "weekly" and changed.json()["state"] == "active"
    assert deleted.json()["state"] == "unsubscribed"
    assert client.get(f"/api/v1/subscriptions/{subscription}", headers=key).json()["state"] == "unsubscribed"
