"""Issue 17: every digest carries a signed "view in browser" link to the delivery's HTML as it was sent;
a forged, foreign, malformed or expired link answers a clear 4xx page, never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest

from digest.db import transaction
from digest.deliver.digests import preview
from digest.deliver.digests.render import VIEW_PERIOD
from digest.deliver.subscribers import subscribe
from digest.models import Delivery
from digest.runtime import Runtime
from digest.tokens import UNSUBSCRIBE, VIEW, make_token, make_until
from digest.web import create_app
from tests.deliver.test_replay import HOURLY, at, outbox, publish, send_due
from tests.support import FeedServer, feed_server
from tests.web_support import serve

SENT_AT = at("2026-11-16T06:00:30")
OTHER_SECRET = "another-secret-entirely-0123456789"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


@pytest.fixture
def sent(rt: Runtime, server: FeedServer) -> tuple[int, EmailMessage]:
    """One hourly digest sent to reader@example.com: its delivery id and the message as it left."""
    with transaction(rt.sessions) as session:
        subscribe(session, "reader@example.com", ["Python"], HOURLY, at("2026-11-16T05:10"), confirmed=True)
    publish(rt, server, at("2026-11-16T05:30"), "Python 3.14 released", "Profiling Python services")
    [outcome] = send_due(rt, SENT_AT)
    assert outcome.status == "sent"
    [message] = outbox(rt)
    return outcome.delivery_id, message


@pytest.fixture
def clock() -> list[datetime]:
    """The app's clock, moved by the test."""
    return [SENT_AT + timedelta(minutes=5)]


@pytest.fixture
def client(rt: Runtime, clock: list[datetime]) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: clock[0])) as http:
        yield http


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def view_path(message: EmailMessage) -> str:
    found = re.search(r'href="https?://[^/"]+(/view/[\w.\-]+)"[^>]*>View in browser</a>', html_of(message))
    assert found, "no view-in-browser link in the HTML part"
    return found.group(1)


def test_the_view_link_shows_the_html_that_was_sent_byte_for_byte(
    client: httpx.Client, sent: tuple[int, EmailMessage]
) -> None:
    _, message = sent

    page = client.get(view_path(message))

    assert page.status_code == 200
    assert page.content == html_of(message).encode()
    assert "'unsafe-inline'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"


def test_the_text_part_has_the_same_link_and_the_html_a_header_with_the_service_name(
    sent: tuple[int, EmailMessage], rt: Runtime
) -> None:
    _, message = sent
    text = message.get_body(("plain",))
    assert text is not None

    assert f"View in your browser:\n{rt.settings.base_url}{view_path(message)}\n" in str(text.get_content())
    assert 'class="masthead"' in html_of(message) and "Skill digests" in html_of(message)


def test_the_view_link_works_until_thirty_days_after_the_window_then_says_it_expired(
    client: httpx.Client, sent: tuple[int, EmailMessage], clock: list[datetime], rt: Runtime
) -> None:
    delivery_id, message = sent
    with transaction(rt.sessions) as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        end = delivery.window_end.replace(tzinfo=SENT_AT.tzinfo)

    clock[0] = end + VIEW_PERIOD
    last_second = client.get(view_path(message))
    clock[0] = end + VIEW_PERIOD + timedelta(seconds=1)
    late = client.get(view_path(message))

    assert last_second.status_code == 200
    assert late.status_code == 410
    assert "expired on 16 December 2026" in late.text and "Traceback" not in late.text


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [
        (lambda secret, _: "not-a-token", 400, "this link is not valid"),
        (lambda secret, d: make_until(OTHER_SECRET, VIEW, {"d": d}, SENT_AT + VIEW_PERIOD), 400, "not valid"),
        (lambda secret, d: make_token(secret, UNSUBSCRIBE, {"s": 1}), 400, "not valid"),
        (lambda secret, d: make_token(secret, VIEW, {"d": d}), 400, "not valid"),
        (lambda secret, d: make_until(secret, VIEW, {"d": str(d)}, SENT_AT + VIEW_PERIOD), 400, "not valid"),
        (lambda secret, d: make_until(secret, VIEW, {"d": True}, SENT_AT + VIEW_PERIOD), 400, "not valid"),
        (
            lambda secret, d: make_until(secret, VIEW, {"d": d + 1000}, SENT_AT + VIEW_PERIOD),
            404,
            "no delivery",
        ),
    ],
    ids=[
        "garbage",
        "forged",
        "another-purpose",
        "no-deadline",
        "id-as-text",
        "id-as-bool",
        "no-such-delivery",
    ],
)
def test_a_bad_view_link_answers_a_clear_4xx_page(
    client: httpx.Client,
    sent: tuple[int, EmailMessage],
    rt: Runtime,
    make: object,
    status: int,
    words: str,
) -> None:
    assert callable(make)
    page = client.get(f"/view/{make(rt.settings.secret_key, sent[0])}")

    assert page.status_code == status
    assert words in page.text and "<h2>" in page.text
    # The error pages of a token URL keep the token out of Referer headers and caches too (edge.TOKEN_PAGES).
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"


def test_a_preview_has_no_view_link_since_nothing_was_sent(
    rt: Runtime, sent: tuple[int, EmailMessage]
) -> None:
    rendered = preview(rt.sessions, "reader@example.com", None, SENT_AT, rt.composer, rt.delivery)

    assert "/view/" not in rendered.email.html and "View in browser" not in rendered.email.html
