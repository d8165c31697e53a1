"""The web app served by uvicorn on loopback: health, pages, signed links, RFC 8058 one-click unsubscribe."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
import uvicorn

from digest.cadence import Schedule
from digest.db import transaction
from digest.models import Subscription
from digest.runtime import Runtime
from digest.subscribers import subscribe
from digest.tokens import MANAGE, UNSUBSCRIBE, make_token
from digest.web import create_app
from tests.support import free_port


@pytest.fixture
def client(rt: Runtime) -> Iterator[httpx.Client]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(rt.settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        yield http
    server.should_exit = True
    thread.join(timeout=10)


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
