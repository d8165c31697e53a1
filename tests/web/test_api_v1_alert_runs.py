"""Preview and run of a platform's alert: the preview stores and sends nothing; a run sends today's alert
email once through the outbox (one per alert and UTC day), and an ``Idempotency-Key`` repeats the first
answer (one email); a trend short of the threshold is 409 with the reason, as an empty subscription run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from digest.db import transaction
from digest.deliver import alerts
from digest.ingest.skills import resolve_skill
from digest.models import AlertDelivery
from digest.runtime import Runtime
from digest.web import create_app
from tests.factories import NewItem, NewTag, add_items, add_source
from tests.web.api_v1_support import Clock, bearer, new_key, problem_of
from tests.web_support import outbox, serve

PERSON = {"email": "ada@example.com", "skills": ["python"], "cadence": "weekly", "verified": True}
ALERT = {"email": "ada@example.com", "skill": "python", "period": "24h", "threshold": 50, "min_count": 3}


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
def alert(client: httpx.Client, rt: Runtime, key: dict[str, str], now: datetime) -> int:
    """A 24-hour alert on Python for a verified subscriber, with 4 Python stories in the last hours and
    none in the 4 weeks before: a "new" trend past the minimum of 3, so it fires."""
    made = client.post("/api/v1/subscriptions", json=PERSON, headers=key)
    assert made.status_code == 201, made.text
    stories(rt, now, 4)
    answer = client.post("/api/v1/alerts", json=ALERT, headers=key)
    assert answer.status_code == 201, answer.text
    alert_id: int = answer.json()["id"]
    return alert_id


def stories(rt: Runtime, now: datetime, count: int, source_name: str = "Wire") -> None:
    with transaction(rt.sessions) as session:
        source = add_source(session, source_name, now - timedelta(days=60))
        python = resolve_skill(session, "python").id
        add_items(
            session,
            [
                NewItem(
                    source,
                    f"Python story {n}",
                    now - timedelta(hours=1 + n),
                    [NewTag(python, ["Python"], True)],
                )
                for n in range(count)
            ],
        )


def sent_rows(rt: Runtime) -> list[AlertDelivery]:
    with transaction(rt.sessions) as session:
        return list(session.scalars(select(AlertDelivery)))


def test_the_preview_shows_the_trend_items_and_html_and_stores_nothing(
    client: httpx.Client, rt: Runtime, key: dict[str, str], alert: int
) -> None:
    answer = client.post(f"/api/v1/alerts/{alert}/preview", headers=key)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["would_send"] is True and body["reason"] is None
    assert body["trend"]["recent"] == 4 and body["trend"]["change"] is None
    assert body["trend"]["words"].startswith("new") and body["trend"]["skill_name"] == "Python"
    assert sorted(item["title"] for item in body["items"]) == [f"Python story {n}" for n in range(4)]
    assert "Python story 0" in body["html"] and "Python story 0" in body["text"] and body["subject"]
    assert sent_rows(rt) == [] and outbox(rt.settings) == []


def test_a_run_sends_one_email_and_a_second_run_that_day_is_409(
    client: httpx.Client, rt: Runtime, key: dict[str, str], alert: int, clock: Clock, now: datetime
) -> None:
    first = client.post(f"/api/v1/alerts/{alert}/run", headers=key)
    clock.now += timedelta(hours=1)
    again = client.post(f"/api/v1/alerts/{alert}/run", headers=key)
    # The beat's check the same day opens nothing more either.
    checked = alerts.check(rt.sessions, clock.now)

    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "sent" and body["message_id"] and body["day"] == now.date().isoformat()
    [message] = outbox(rt.settings)
    assert message["Message-ID"] == body["message_id"] and message["To"] == "ada@example.com"
    assert "fired today already" in problem_of(again, 409)["detail"]
    assert checked == []
    [row] = sent_rows(rt)
    assert row.status == "sent" and row.id == body["delivery_id"]
    preview = client.post(f"/api/v1/alerts/{alert}/preview", headers=key).json()
    assert preview["would_send"] is False and "fired today already" in preview["reason"]


def test_a_trend_short_of_the_threshold_is_409_with_the_reason_and_sends_nothing(
    client: httpx.Client, rt: Runtime, key: dict[str, str], alert: int
) -> None:
    client.patch(f"/api/v1/alerts/{alert}", json={"min_count": 10}, headers=key)

    preview = client.post(f"/api/v1/alerts/{alert}/preview", headers=key).json()
    run = client.post(f"/api/v1/alerts/{alert}/run", headers=key)

    assert preview["would_send"] is False and "at least 10 mentions" in preview["reason"]
    assert "at least 10 mentions" in problem_of(run, 409)["detail"]
    assert sent_rows(rt) == [] and outbox(rt.settings) == []


def test_one_idempotency_key_answers_the_first_result_and_sends_one_email(
    client: httpx.Client, rt: Runtime, key: dict[str, str], alert: int, clock: Clock
) -> None:
    url = f"/api/v1/alerts/{alert}/run"
    once = {**key, "Idempotency-Key": "alert-2026-11-16"}

    first = client.post(url, headers=once)
    clock.now += timedelta(minutes=5)
    repeat = client.post(url, headers=once)
    other_body = client.post(url, headers=once, content=b'{"force": true}')

    assert first.status_code == repeat.status_code == 200, first.text
    assert repeat.json() == first.json() and first.json()["status"] == "sent"
    assert len(outbox(rt.settings)) == 1 and len(sent_rows(rt)) == 1
    assert "another request" in problem_of(other_body, 422)["detail"]


def test_a_refused_run_under_a_key_can_be_retried_once_it_fires(
    client: httpx.Client, rt: Runtime, key: dict[str, str], alert: int, now: datetime
) -> None:
    url = f"/api/v1/alerts/{alert}/run"
    client.patch(f"/api/v1/alerts/{alert}", json={"min_count": 6}, headers=key)
    retry = {**key, "Idempotency-Key": "retry-me"}

    short = client.post(url, headers=retry)
    stories(rt, now - timedelta(minutes=30), 2, "Another wire")
    fired = client.post(url, headers=retry)

    problem_of(short, 409)
    assert fired.status_code == 200 and fired.json()["status"] == "sent"
    assert len(outbox(rt.settings)) == 1


def test_another_keys_alert_is_404_and_a_read_key_is_403(
    client: httpx.Client, rt: Runtime, alert: int, now: datetime
) -> None:
    other = bearer(new_key(rt, "other-site", now, "subscribe"))
    reader = bearer(new_key(rt, "reader", now, "read"))

    for action in ("preview", "run"):
        problem_of(client.post(f"/api/v1/alerts/{alert}/{action}", headers=other), 404)
        problem_of(client.post(f"/api/v1/alerts/{alert}/{action}", headers=reader), 403)
        problem_of(client.post(f"/api/v1/alerts/999999/{action}", headers=other), 404)
    problem_of(client.post(f"/api/v1/alerts/{alert}/run", headers={**other, "Idempotency-Key": "k"}), 404)
    assert sent_rows(rt) == [] and outbox(rt.settings) == []


def test_an_alert_turned_off_is_not_run(
    client: httpx.Client, rt: Runtime, key: dict[str, str], alert: int
) -> None:
    client.delete(f"/api/v1/alerts/{alert}", headers=key)

    assert (
        "alert is off" in problem_of(client.post(f"/api/v1/alerts/{alert}/run", headers=key), 409)["detail"]
    )
    assert outbox(rt.settings) == []
