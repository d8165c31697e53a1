"""Issue 14: double opt-in holds for skills, and "unsubscribe from everything" stops every email kind.

The small test taxonomy has Java and Go, not the issue's COBOL and PHP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from digest.cli import app
from digest.config import settings_env
from digest.db import transaction
from digest.deliver import alerts
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import pending_for, subscribe
from digest.deliver.unsubscribe import unsubscribe_all
from digest.ingest.skills import resolve_skill
from digest.models import AlertDelivery, AlertDeliveryEvent, Delivery, DeliveryEvent, Subscriber
from digest.runtime import Runtime
from digest.web import create_app
from tests.web_support import link, outbox, serve


@pytest.fixture
def client(rt: Runtime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings)) as http:
        yield http


def request_digest(client: httpx.Client, *skills: str) -> None:
    body = {"email": "v@example.com", "skills": list(skills), "cadence": "daily"}
    assert client.post("/api/subscriptions", json=body).status_code == 202


def skills_and_state(rt: Runtime) -> tuple[tuple[str, ...], str]:
    with transaction(rt.sessions) as session:
        info = pending_for(session, "v@example.com", "daily")
    return info.skills, info.state


def test_a_second_unconfirmed_request_replaces_the_pending_one_and_adds_nothing(
    client: httpx.Client, rt: Runtime
) -> None:
    request_digest(client, "java", "go")
    request_digest(client, "python")

    assert skills_and_state(rt) == (("Python",), "pending")
    first, second = outbox(rt.settings)
    assert "Python" not in first["Subject"] and "Python" in second["Subject"]

    assert client.post(link(first, "confirm")).status_code == 200
    assert skills_and_state(rt) == (("Go", "Java"), "active")


def test_the_second_link_activates_exactly_what_it_carries(client: httpx.Client, rt: Runtime) -> None:
    request_digest(client, "java", "go")
    request_digest(client, "python")

    assert client.post(link(outbox(rt.settings)[1], "confirm")).status_code == 200

    assert skills_and_state(rt) == (("Python",), "active")


def test_unsubscribing_from_everything_stops_digests_alerts_and_unclaimed_emails(
    rt: Runtime, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        info = subscribe(
            session, "v@example.com", ["Python"], Schedule("daily", 8, 0, "UTC"), now, confirmed=True
        )
        alert = alerts.add(session, info.subscriber_id, resolve_skill(session, "python"), "7d", 25, 5, now)
        window = {"window_start": now - timedelta(days=1), "created_at": now}
        waiting = Delivery(subscription_id=info.id, window_end=now, **window)
        claimed = Delivery(
            subscription_id=info.id, window_end=now - timedelta(hours=1), status="sending", **window
        )
        alert_mail = AlertDelivery(alert_id=alert.id, day=now.date(), created_at=now)
        session.add_all([waiting, claimed, alert_mail])
        session.flush()
        ids = waiting.id, claimed.id, alert_mail.id
    later = now + timedelta(minutes=5)

    with transaction(rt.sessions) as session:
        stopped = unsubscribe_all(
            session, info.subscriber_id, later, secret=rt.settings.secret_key, source="test"
        )

    assert [s.state for s in stopped] == ["unsubscribed"]
    with transaction(rt.sessions) as session:
        assert session.get(Subscriber, info.subscriber_id).state == "unsubscribed"  # type: ignore[union-attr]
        assert alerts.of_subscriber(session, info.subscriber_id) == []
        assert session.get(Delivery, ids[0]).status == "skipped"  # type: ignore[union-attr]
        assert session.get(Delivery, ids[1]).status == "sending"  # type: ignore[union-attr]
        assert session.get(AlertDelivery, ids[2]).status == "skipped"  # type: ignore[union-attr]
        events = session.scalars(select(DeliveryEvent.event).where(DeliveryEvent.delivery_id == ids[0])).all()
        alert_events = session.scalars(
            select(AlertDeliveryEvent.event).where(AlertDeliveryEvent.delivery_id == ids[2])
        ).all()
    assert events == ["skipped"] and alert_events == ["skipped"]
    assert alerts.check(rt.sessions, later + timedelta(days=1)) == []

    env = settings_env(rt.settings)
    people = CliRunner().invoke(app, ["subscribers", "list", "--json"], env=env)
    listed = CliRunner().invoke(app, ["alerts", "list", "--json"], env=env)
    assert people.exit_code == 0, people.output
    assert [(row["email"], row["subscriber_state"]) for row in json.loads(people.output)] == [
        ("v@example.com", "suppressed")
    ]
    assert [row["state"] for row in json.loads(listed.output)] == ["off"]
