"""Issue 14, the people's rights: a suppressed address gets no email of any kind, whatever the shortcut.

Unsubscribing from everything, a hard bounce (see test_digests) or a complaint suppress an address; the
send refuses it at claim time, ops cannot re-import it, the manage page and the API cannot resume it, and
only the person's own new confirmation or an audited `digest suppression remove` lifts it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from digest.cli import app
from digest.config import settings_env
from digest.db import transaction
from digest.deliver import digests, suppression
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.models import AuditEntry, Delivery, Subscription
from digest.runtime import Runtime
from digest.tokens import MANAGE, make_token
from digest.web import create_app
from tests.support import digest_in as digest
from tests.web_support import csrf, link, outbox, serve

ADDRESS = "v@example.com"
HOURLY = Schedule("hourly", 8, 0, "UTC")


@pytest.fixture
def client(rt: Runtime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings)) as http:
        yield http


def cli_json(rt: Runtime, *args: str) -> object:
    done = CliRunner().invoke(app, [*args, "--json"], env=settings_env(rt.settings))
    assert done.exit_code == 0, done.output
    return json.loads(done.output)


def follow(rt: Runtime, when: datetime, email: str = ADDRESS) -> int:
    with transaction(rt.sessions) as session:
        return subscribe(session, email, ["Python"], HOURLY, when, confirmed=True).id


def suppress(rt: Runtime, when: datetime, reason: str = suppression.COMPLAINT, email: str = ADDRESS) -> None:
    with transaction(rt.sessions) as session:
        suppression.suppress(session, rt.settings.secret_key, email, reason, "test", when)


def test_the_key_is_a_keyed_hash_of_the_lower_cased_address() -> None:
    key = suppression.address_hash("k" * 32, "V@Example.com")

    assert key == suppression.address_hash("k" * 32, "v@example.com")
    assert key != suppression.address_hash("j" * 32, "v@example.com")
    assert len(key) == 64 and "example" not in key


def test_a_suppressed_address_gets_no_digest_and_the_skip_says_why(rt: Runtime, now: datetime) -> None:
    subscription_id = follow(rt, now - timedelta(hours=3))
    suppress(rt, now)
    with transaction(rt.sessions) as session:
        delivery = Delivery(
            subscription_id=subscription_id,
            window_start=now - timedelta(hours=1),
            window_end=now,
            created_at=now,
        )
        session.add(delivery)
        session.flush()
        delivery_id = delivery.id

    outcome = digests.send_delivery(
        rt.sessions, delivery_id, mailer=rt.mailer, composer=rt.composer, config=rt.delivery, now=now
    )

    assert outcome.status == "skipped"
    assert outcome.error == "address suppressed (complained on 2026-11-16)"
    assert outbox(rt.settings) == []


def test_ops_cannot_re_import_a_suppressed_address_and_are_told_why_and_since_when(rt: Runtime) -> None:
    suppress(rt, datetime(2026, 11, 2, tzinfo=UTC), suppression.UNSUBSCRIBED)

    for extra in (["--confirmed"], []):
        done = digest(rt, "subscribe", "V@example.com", "--skill", "python", *extra)

        assert done.returncode == 1
        assert done.stderr.count("\n") == 1, done.stderr
        assert "v@example.com unsubscribed from everything on 2026-11-02" in done.stderr
    with transaction(rt.sessions) as session:
        assert session.scalars(select(Subscription)).all() == []
    assert outbox(rt.settings) == []


def test_suppression_add_list_and_remove_and_the_removal_is_audited(rt: Runtime) -> None:
    added = cli_json(rt, "suppression", "add", "V@Example.com", "--reason", "complaint")
    listed = cli_json(rt, "suppression", "list")
    removed = cli_json(rt, "suppression", "remove", ADDRESS)

    assert isinstance(added, dict) and (added["email"], added["reason"]) == (ADDRESS, "complaint")
    assert isinstance(listed, list) and [row["email"] for row in listed] == [ADDRESS]
    assert isinstance(removed, dict) and removed["removed"] is True
    assert cli_json(rt, "suppression", "list") == []
    with transaction(rt.sessions) as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert suppression.find(session, rt.settings.secret_key, ADDRESS) is None
    assert actions == ["suppression.add", "suppression.remove"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["suppression", "remove", ADDRESS], "v@example.com is not suppressed"),
        (["suppression", "add", ADDRESS, "--reason", "erased"], "unknown reason 'erased'"),
        (["suppression", "add", "not an address"], "not a valid email address"),
    ],
)
def test_suppression_commands_refuse_bad_input_in_one_line(
    rt: Runtime, args: list[str], message: str
) -> None:
    done = digest(rt, *args)

    assert done.returncode == 1
    assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_the_person_is_listed_as_suppressed_after_unsubscribing_from_everything(
    rt: Runtime, client: httpx.Client, now: datetime
) -> None:
    follow(rt, now)
    with transaction(rt.sessions) as session:
        subscriber_id = session.scalars(select(Subscription.subscriber_id)).one()
    token = make_token(rt.settings.secret_key, MANAGE, {"u": subscriber_id})

    assert client.delete(f"/api/manage/{token}").status_code == 200

    people = cli_json(rt, "subscribers", "list")
    listed = cli_json(rt, "suppression", "list")
    assert isinstance(people, list) and [row["subscriber_state"] for row in people] == ["suppressed"]
    assert isinstance(listed, list) and [(row["email"], row["reason"], row["source"]) for row in listed] == [
        (ADDRESS, "unsubscribed", "api")
    ]


def test_resuming_a_suppressed_person_answers_409_on_the_api_and_the_manage_page(
    rt: Runtime, client: httpx.Client, now: datetime
) -> None:
    subscription_id = follow(rt, now)
    with transaction(rt.sessions) as session:
        subscriber_id = session.scalars(select(Subscription.subscriber_id)).one()
    token = make_token(rt.settings.secret_key, MANAGE, {"u": subscriber_id})
    assert client.delete(f"/api/manage/{token}").status_code == 200

    api = client.patch(f"/api/manage/{token}/subscriptions/{subscription_id}", json={"state": "active"})
    alert = client.post(f"/api/manage/{token}/alerts", json={"skill": "python"})
    page = client.get(f"/manage/{token}")
    form = client.post(
        f"/manage/{token}",
        data={"csrf": csrf(page.text), "action": "resume", "subscription": str(subscription_id)},
    )

    assert api.status_code == 409
    assert "unsubscribed from everything on" in api.json()["detail"]
    assert alert.status_code == 409
    assert form.status_code == 409 and "sign up again" in form.text
    with transaction(rt.sessions) as session:
        assert session.get(Subscription, subscription_id).state == "unsubscribed"  # type: ignore[union-attr]


def test_a_signup_still_mails_its_confirmation_and_the_new_confirmation_lifts_the_suppression(
    rt: Runtime, client: httpx.Client
) -> None:
    follow(rt, datetime.now(UTC) - timedelta(days=1))
    suppress(rt, datetime.now(UTC) - timedelta(minutes=1), suppression.UNSUBSCRIBED)
    body = {"email": ADDRESS, "skills": ["python"], "cadence": "daily"}

    assert client.post("/api/subscriptions", json=body).status_code == 202
    [confirmation] = outbox(rt.settings)
    assert str(confirmation["To"]) == ADDRESS
    assert client.post(link(confirmation, "confirm")).status_code == 200

    with transaction(rt.sessions) as session:
        assert suppression.find(session, rt.settings.secret_key, ADDRESS) is None
        states = session.scalars(select(Subscription.state).order_by(Subscription.cadence)).all()
        lifted = session.scalars(select(AuditEntry).where(AuditEntry.action == "suppression.lift")).one()
    assert states == ["active", "active"]
    assert lifted.actor == "subscriber" and lifted.arguments["reason"] == "unsubscribed"


def test_a_confirmation_link_sent_before_the_suppression_does_not_lift_it(
    rt: Runtime, client: httpx.Client
) -> None:
    body = {"email": ADDRESS, "skills": ["python"], "cadence": "daily"}
    assert client.post("/api/subscriptions", json=body).status_code == 202
    suppress(rt, datetime.now(UTC) + timedelta(seconds=2), suppression.COMPLAINT)

    answer = client.post(link(outbox(rt.settings)[0], "confirm"))

    assert answer.status_code == 409 and "sign up again" in answer.text
    with transaction(rt.sessions) as session:
        assert suppression.find(session, rt.settings.secret_key, ADDRESS) is not None


def test_a_suppressed_address_is_not_mailed_its_manage_link(rt: Runtime, now: datetime) -> None:
    follow(rt, now)
    suppress(rt, now)
    with transaction(rt.sessions) as session:
        subscriber_id = session.scalars(select(Subscription.subscriber_id)).one()

    assert rt.signups.mail_manage_link(subscriber_id, now) is False
    assert outbox(rt.settings) == []
