"""Issue 14: an unsubscribe link never leads to the manage link, and "unsubscribe from everything" on the
manage page and the API stops trend alerts too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from sqlalchemy import select

from digest.db import transaction
from digest.deliver import alerts
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.ingest.skills import resolve_skill
from digest.models import Alert, Subscriber
from digest.records import SubscriptionInfo
from digest.runtime import Runtime
from digest.tokens import MANAGE, UNSUBSCRIBE, make_token
from digest.web import create_app
from tests.web_support import csrf, link, outbox, serve


@pytest.fixture
def client(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        yield http


@pytest.fixture
def reader(rt: Runtime, now: datetime) -> SubscriptionInfo:
    with transaction(rt.sessions) as session:
        info = subscribe(
            session, "reader@example.com", ["Python"], Schedule("daily", 8, 0, "UTC"), now, confirmed=True
        )
        alerts.add(session, info.subscriber_id, resolve_skill(session, "rust"), "7d", 25, 5, now)
    return info


def test_no_unsubscribe_page_shows_a_manage_link_or_token(
    client: httpx.Client, rt: Runtime, reader: SubscriptionInfo
) -> None:
    token = make_token(rt.settings.secret_key, UNSUBSCRIBE, {"s": reader.id})
    manage_token = make_token(rt.settings.secret_key, MANAGE, {"u": reader.subscriber_id})

    shown = client.get(f"/u/{token}")
    one_click = client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click")
    again = client.get(f"/u/{token}")

    for page in (shown, one_click, again):
        assert page.status_code == 200
        assert "/manage/" not in page.text and manage_token not in page.text
        assert "Email me a link to manage my digests" in page.text


def test_the_manage_link_goes_only_to_the_address_on_file_with_the_same_answer_each_time(
    client: httpx.Client, rt: Runtime, reader: SubscriptionInfo
) -> None:
    token = make_token(rt.settings.secret_key, UNSUBSCRIBE, {"s": reader.id})
    client.post(f"/u/{token}")

    answers = [client.post(f"/u/{token}/manage-link") for _ in range(5)]

    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.text for answer in answers}) == 1 and "/manage/" not in answers[0].text
    # Rate-limited like signups: three emails to one address a day.
    messages = outbox(rt.settings)
    assert [message["To"] for message in messages] == ["reader@example.com"] * 3
    page = client.get(link(messages[0], "manage"))
    assert page.status_code == 200 and "reader@example.com" in page.text


def subscriber_state(rt: Runtime, subscriber_id: int) -> tuple[str, list[str]]:
    with transaction(rt.sessions) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert subscriber is not None
        states = list(session.scalars(select(Alert.state).where(Alert.subscriber_id == subscriber_id)))
        return subscriber.state, states


def test_unsubscribing_from_everything_on_the_manage_page_turns_the_alerts_off(
    client: httpx.Client, rt: Runtime, reader: SubscriptionInfo
) -> None:
    token = make_token(rt.settings.secret_key, MANAGE, {"u": reader.subscriber_id})
    before = client.get(f"/manage/{token}")
    assert "Turn off" in before.text

    after = client.post(
        f"/manage/{token}",
        data={"csrf": csrf(before.text), "action": "unsubscribe_all"},
        follow_redirects=True,
    )

    assert after.status_code == 200 and "Turn off" not in after.text
    assert subscriber_state(rt, reader.subscriber_id) == ("unsubscribed", ["off"])


def test_unsubscribing_from_everything_through_the_api_turns_the_alerts_off(
    client: httpx.Client, rt: Runtime, reader: SubscriptionInfo
) -> None:
    token = make_token(rt.settings.secret_key, MANAGE, {"u": reader.subscriber_id})

    answer = client.delete(f"/api/manage/{token}")

    assert answer.status_code == 200
    assert [row["state"] for row in answer.json()["subscriptions"]] == ["unsubscribed"]
    assert subscriber_state(rt, reader.subscriber_id) == ("unsubscribed", ["off"])
