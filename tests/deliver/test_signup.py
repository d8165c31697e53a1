"""Signup through real HTTP and the real Maildir outbox: pre-filled form, double opt-in, abuse limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from digest.config import load_settings
from digest.db import transaction
from digest.deliver import digests, signup
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import describe, subscribe
from digest.models import RateCount, Subscriber, Subscription
from digest.ops.ratelimit import DatabaseLimiter, RedisLimiter, limiter_for
from digest.runtime import Runtime
from digest.web import create_app
from tests.web_support import csrf, link, outbox, serve, text_of


@pytest.fixture
def client(rt: Runtime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings)) as http:
        yield http


def sign_up(client: httpx.Client, email: str = "new@example.com", **extra: str) -> httpx.Response:
    token = csrf(client.get("/subscribe?skill=python").text)
    fields = {"csrf": token, "email": email, "skill": "python", "cadence": "daily", "hour": "8"}
    fields |= {"weekday": "0", "timezone": "Europe/Berlin", "website": "", **extra}
    return client.post("/subscribe", data=fields)


def states(rt: Runtime, email: str) -> tuple[str, list[str]]:
    with transaction(rt.sessions) as session:
        subscriber = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        rows = session.scalars(select(Subscription).where(Subscription.subscriber_id == subscriber.id))
        return subscriber.state, [row.state for row in rows]


def test_a_skill_link_opens_a_form_filled_with_the_skill_and_cadence(client: httpx.Client) -> None:
    page = client.get("/subscribe", params={"skill": "python", "cadence": "weekly"})

    assert page.status_code == 200
    assert 'name="skill" value="' in page.text and "checked> Python" in page.text
    assert 'value="weekly" checked' in page.text
    assert '<label for="email">' in page.text and 'name="website"' in page.text
    assert "digest_csrf" in page.cookies


def test_an_unknown_skill_shows_suggestions_not_an_error(client: httpx.Client) -> None:
    page = client.get("/subscribe", params={"skill": "pythn"})

    assert page.status_code == 200
    assert "We do not know “pythn”" in page.text and "Did you mean" in page.text and "Python" in page.text


def test_saving_mails_one_confirmation_and_nothing_is_delivered_before_it(
    client: httpx.Client, rt: Runtime
) -> None:
    answer = sign_up(client)

    assert answer.status_code == 200 and "Check your email" in answer.text
    [message] = outbox(rt.settings)
    assert message["To"] == "new@example.com"
    assert message["Subject"] == "Confirm your daily digest about Python"
    assert message["List-Unsubscribe"] is None and message["Precedence"] is None
    assert message.get_body(("html",)) is not None and "/confirm/" in text_of(message)
    assert states(rt, "new@example.com") == ("pending", ["pending"])
    assert list(digests.dispatch_due(rt.sessions, datetime.now(UTC) + timedelta(days=3))) == []


def test_the_confirmation_link_shows_a_button_and_only_a_post_confirms_once(
    client: httpx.Client, rt: Runtime
) -> None:
    sign_up(client)
    path = link(outbox(rt.settings)[0], "confirm")

    shown = client.get(path)
    assert shown.status_code == 200 and f'<form method="post" action="{path}">' in shown.text
    assert states(rt, "new@example.com") == ("pending", ["pending"])

    first = client.post(path)
    second = client.post(path)

    assert first.status_code == 200 and "You are subscribed" in first.text and "/manage/" in first.text
    assert second.status_code == 200 and "Already confirmed" in second.text
    assert states(rt, "new@example.com") == ("active", ["active"])


def test_the_answer_is_the_same_for_a_new_and_a_known_address(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        subscribe(
            session, "known@example.com", ["Python"], Schedule("daily", 8, 0, "UTC"), now, confirmed=True
        )

    new = sign_up(client, "new@example.com")
    known = sign_up(client, "known@example.com")

    assert new.status_code == known.status_code == 200
    assert new.text.replace("new@", "X@") == known.text.replace("known@", "X@")


def test_a_live_subscription_changes_only_when_the_new_request_is_confirmed(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        subscribe(session, "known@example.com", ["Rust"], Schedule("daily", 8, 0, "UTC"), now, confirmed=True)

    sign_up(client, "known@example.com")
    with transaction(rt.sessions) as session:
        before = session.scalars(select(Subscription)).one()
    client.post(link(outbox(rt.settings)[0], "confirm"))

    page = client.get(link(outbox(rt.settings)[0], "confirm"))
    assert before.state == "active" and "Python" in page.text
    with transaction(rt.sessions) as session:
        assert describe(session, before.id).skills == ("Python", "Rust")


def test_at_most_three_confirmation_emails_go_to_one_address_a_day(client: httpx.Client, rt: Runtime) -> None:
    answers = [sign_up(client).text for _ in range(4)]

    assert len(outbox(rt.settings)) == 3
    assert len(set(answers)) == 1


def test_too_many_signups_from_one_network_get_429(
    client: httpx.Client, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signup, "IP_LIMIT", 2)

    codes = [sign_up(client, f"n{number}@example.com").status_code for number in range(3)]

    assert codes == [200, 200, 429]
    assert len(outbox(rt.settings)) == 2


def test_a_form_without_this_browsers_csrf_token_is_refused(client: httpx.Client, rt: Runtime) -> None:
    fields = {"email": "new@example.com", "skill": "python", "cadence": "daily", "hour": "8"}
    fields |= {"weekday": "0", "timezone": "UTC"}
    token = csrf(client.get("/subscribe").text)

    missing = client.post("/subscribe", data=fields)
    tampered = client.post("/subscribe", data={**fields, "csrf": token[:-3] + "abc"})
    with httpx.Client(base_url=str(client.base_url)) as other_browser:
        foreign = other_browser.post("/subscribe", data={**fields, "csrf": token})

    assert [r.status_code for r in (missing, tampered, foreign)] == [400, 400, 400]
    assert "reload the page" in missing.text
    assert outbox(rt.settings) == []


def test_the_honeypot_gets_the_usual_answer_and_no_email(client: httpx.Client, rt: Runtime) -> None:
    answer = sign_up(client, website="http://spam.example")

    assert answer.status_code == 200 and "Check your email" in answer.text
    assert outbox(rt.settings) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("email", "a@example.com\r\nBcc: victim@example.com"), ("timezone", "UTC\nX: y"), ("more", "Go\r")],
)
def test_line_breaks_in_any_field_are_refused(
    client: httpx.Client, rt: Runtime, field: str, value: str
) -> None:
    answer = sign_up(client, **{field: value})

    assert answer.status_code == 400 and "line breaks" in answer.text
    assert outbox(rt.settings) == []


def test_an_invalid_address_is_shown_beside_the_field(client: httpx.Client, rt: Runtime) -> None:
    answer = sign_up(client, "not-an-address")

    assert answer.status_code == 400 and 'aria-invalid="true"' in answer.text
    # Issue 17: one sentence in our words, once (forms.email_problem), not the validator's.
    assert answer.text.count("That does not look like an email address") == 1
    assert outbox(rt.settings) == []


def test_an_expired_or_tampered_confirmation_link_gets_a_friendly_400(
    client: httpx.Client, rt: Runtime
) -> None:
    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 8 * 86400

    payload = {"e": "new@example.com", "k": ["python"], "c": "daily", "h": 8, "w": 0, "z": "UTC"}
    expired = URLSafeTimedSerializer(
        rt.settings.secret_key, salt="digest.confirm", signer=EightDaysAgo
    ).dumps(payload)

    for path in (f"/confirm/{expired}", "/confirm/garbage", f"/confirm/{expired[:-4]}"):
        assert client.get(path).status_code == 400
        answer = client.post(path)
        assert answer.status_code == 400 and "That did not work" in answer.text
    assert "expired" in client.post(f"/confirm/{expired}").text


def test_the_database_counter_counts_per_key_and_window(rt: Runtime, now: datetime) -> None:
    limiter = DatabaseLimiter(rt.sessions)
    hour = timedelta(hours=1)

    counts = [limiter.hit("ip:1", hour, now) for _ in range(3)]
    other = limiter.hit("ip:2", hour, now)
    later = limiter.hit("ip:1", hour, now + hour)

    assert (counts, other, later) == ([1, 2, 3], 1, 1)
    with transaction(rt.sessions) as session:
        assert len(session.scalars(select(RateCount).where(RateCount.key == "ip:1")).all()) == 1


def test_the_counter_lives_in_redis_when_the_broker_is_redis(
    redis_url: str, rt: Runtime, now: datetime
) -> None:
    import redis

    settings = load_settings(
        home=rt.settings.home, secret_key="test-secret-key-0123456789abcdefghijkl", broker_url=redis_url
    )
    limiter = limiter_for(settings.broker_url, rt.sessions)
    assert isinstance(limiter, RedisLimiter)

    counts = [limiter.hit("ip:1", timedelta(hours=1), now) for _ in range(2)]
    limiter.close()

    assert counts == [1, 2]
    client = redis.Redis.from_url(redis_url)
    assert [key.decode() for key in client.keys("digest:limit:ip:1:*")]
    client.close()
