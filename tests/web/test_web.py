"""The web app on loopback: health, pages, signed links, RFC 8058 unsubscribe, the manage page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from digest.db import transaction
from digest.deliver.cadence import Schedule, next_slot
from digest.deliver.subscribers import describe, subscribe
from digest.models import Subscription
from digest.runtime import Runtime
from digest.tokens import MANAGE, UNSUBSCRIBE, make_token
from digest.web import create_app
from tests.web_support import csrf, serve


@pytest.fixture
def client(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        yield http


@pytest.fixture
def subscription(rt: Runtime, now: datetime) -> int:
    with transaction(rt.sessions) as session:
        info = subscribe(
            session, "reader@example.com", ["Python"], Schedule("daily", 8, 0, "UTC"), now, confirmed=True
        )
    return info.id


def state_of(rt: Runtime, subscription_id: int) -> str:
    with transaction(rt.sessions) as session:
        row = session.get(Subscription, subscription_id)
        assert row is not None
        return row.state


def test_it_reports_health(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"ok": True}


def test_the_unsubscribe_link_shows_a_button_and_does_nothing_on_get(
    client: httpx.Client, rt: Runtime, subscription: int
) -> None:
    token = make_token(rt.settings.secret_key, UNSUBSCRIBE, {"s": subscription})

    page = client.get(f"/u/{token}")

    assert page.status_code == 200
    assert '<form method="post"' in page.text and "reader@example.com" in page.text
    assert state_of(rt, subscription) == "active"


def test_a_one_click_post_unsubscribes_at_once_and_twice_is_fine(
    client: httpx.Client, rt: Runtime, subscription: int
) -> None:
    token = make_token(rt.settings.secret_key, UNSUBSCRIBE, {"s": subscription})

    first = client.post(
        f"/u/{token}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    second = client.post(f"/u/{token}")

    assert first.status_code == 200 and "unsubscribed" in first.text
    assert second.status_code == 200
    assert state_of(rt, subscription) == "unsubscribed"


def test_a_tampered_or_foreign_token_is_refused(client: httpx.Client, rt: Runtime, subscription: int) -> None:
    good = make_token(rt.settings.secret_key, UNSUBSCRIBE, {"s": subscription})
    manage = make_token(rt.settings.secret_key, MANAGE, {"u": 1})

    assert client.post(f"/u/{good[:-2]}xx").status_code == 400
    assert client.post(f"/u/{manage}").status_code == 400
    assert state_of(rt, subscription) == "active"


def test_the_manage_page_lists_the_subscriptions(
    client: httpx.Client, rt: Runtime, subscription: int
) -> None:
    token = make_token(rt.settings.secret_key, MANAGE, {"u": 1})

    page = client.get(f"/manage/{token}")

    assert page.status_code == 200
    assert "daily" in page.text and "Python" in page.text


def test_pages_render(client: httpx.Client) -> None:
    assert client.get("/").status_code == 200
    assert "Python" in client.get("/skills/python").text
    assert client.get("/skills/no-such-skill").status_code == 404


def manage(
    client: httpx.Client, rt: Runtime, subscription: int, action: str, **fields: str
) -> httpx.Response:
    token = make_token(rt.settings.secret_key, MANAGE, {"u": 1})
    page = client.get(f"/manage/{token}")
    data = {"csrf": csrf(page.text), "action": action, "subscription": str(subscription), **fields}
    return client.post(f"/manage/{token}", data=data, follow_redirects=True)


def row(rt: Runtime, subscription_id: int) -> Subscription:
    with transaction(rt.sessions) as session:
        found = session.get(Subscription, subscription_id)
        assert found is not None
        return found


def test_a_cadence_change_starts_where_the_last_window_ended(
    client: httpx.Client, rt: Runtime, subscription: int, now: datetime
) -> None:
    ended = datetime(2026, 11, 16, 8, tzinfo=UTC)
    with transaction(rt.sessions) as session:
        found = session.get(Subscription, subscription)
        assert found is not None
        found.last_window_end = ended

    answer = manage(
        client, rt, subscription, "schedule", cadence="weekly", hour="7", weekday="2", timezone="UTC"
    )

    assert answer.status_code == 200 and "Saved" in answer.text
    changed = row(rt, subscription)
    assert (changed.cadence, changed.hour, changed.weekday) == ("weekly", 7, 2)
    assert changed.last_window_end == ended
    assert changed.next_due_at == next_slot(Schedule("weekly", 7, 2, "UTC"), now)


def test_a_cadence_the_subscriber_already_has_merges_the_skills(
    client: httpx.Client, rt: Runtime, subscription: int, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        weekly = subscribe(
            session, "reader@example.com", ["Rust"], Schedule("weekly", 8, 0, "UTC"), now, confirmed=True
        ).id

    manage(client, rt, subscription, "schedule", cadence="weekly", hour="8", weekday="0", timezone="UTC")

    with transaction(rt.sessions) as session:
        assert describe(session, weekly).skills == ("Python", "Rust")
    assert state_of(rt, subscription) == "unsubscribed" and state_of(rt, weekly) == "active"


def test_the_manage_page_pauses_resumes_and_adds_and_removes_skills(
    client: httpx.Client, rt: Runtime, subscription: int
) -> None:
    assert "Paused" in manage(client, rt, subscription, "pause").text
    assert state_of(rt, subscription) == "paused"
    manage(client, rt, subscription, "resume")
    assert state_of(rt, subscription) == "active"
    manage(client, rt, subscription, "add", skills="rust, kubernetes")
    manage(client, rt, subscription, "remove", skill="Python")
    unknown = manage(client, rt, subscription, "add", skills="pythn")

    assert unknown.status_code == 400 and "Did you mean Python" in unknown.text
    with transaction(rt.sessions) as session:
        assert describe(session, subscription).skills == ("Kubernetes", "Rust")


def test_the_manage_page_unsubscribes_one_or_all(
    client: httpx.Client, rt: Runtime, subscription: int
) -> None:
    manage(client, rt, subscription, "unsubscribe")
    assert state_of(rt, subscription) == "unsubscribed"
    manage(client, rt, subscription, "resume")
    assert state_of(rt, subscription) == "active"

    manage(client, rt, subscription, "unsubscribe_all")

    assert state_of(rt, subscription) == "unsubscribed"


def test_a_manage_link_never_reaches_another_persons_subscription(
    client: httpx.Client, rt: Runtime, subscription: int, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        theirs = subscribe(
            session, "them@example.com", ["Rust"], Schedule("daily", 8, 0, "UTC"), now, confirmed=True
        ).id

    answer = manage(client, rt, theirs, "pause")

    assert answer.status_code == 400 and "them@example.com" not in answer.text
    assert state_of(rt, theirs) == "active"


def test_a_manage_form_without_its_csrf_token_is_refused(
    client: httpx.Client, rt: Runtime, subscription: int, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        subscribe(session, "them@example.com", ["Rust"], Schedule("daily", 8, 0, "UTC"), now, confirmed=True)
    token = make_token(rt.settings.secret_key, MANAGE, {"u": 1})
    # A token issued for another person's manage page does not work on this one.
    other = make_token(rt.settings.secret_key, MANAGE, {"u": 2})
    foreign = csrf(client.get(f"/manage/{other}").text)
    fields = {"action": "pause", "subscription": str(subscription)}

    missing = client.post(f"/manage/{token}", data=fields)
    misbound = client.post(f"/manage/{token}", data={**fields, "csrf": foreign})

    assert missing.status_code == misbound.status_code == 400
    assert state_of(rt, subscription) == "active"


@pytest.mark.parametrize("path", ["/u/", "/manage/", "/confirm/"])
def test_garbage_truncated_or_odd_tokens_get_a_friendly_400(
    client: httpx.Client, rt: Runtime, subscription: int, path: str
) -> None:
    odd = make_token(rt.settings.secret_key, UNSUBSCRIBE, {"s": "1; DROP"})
    odd_manage = make_token(rt.settings.secret_key, MANAGE, {"x": 1})
    for token in ("garbage", odd[:-5], odd, odd_manage):
        for method in ("GET", "POST"):
            answer = client.request(method, path + token)
            assert answer.status_code == 400, (method, path, token)
            assert "That did not work" in answer.text and "reader@example.com" not in answer.text
