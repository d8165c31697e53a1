"""Issue 14, the people's rights: export everything stored about an address, erase it (GDPR art. 15, 17).

A digest is really sent first (dispatch, manifest, events), so the export and the erasure meet every table
that holds something about the person.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from digest.db import transaction
from digest.deliver import alerts, digests, rights, suppression
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.ingest.skills import resolve_skill
from digest.models import Alert, Delivery, DeliveryEvent, DeliveryItem, Subscriber, Subscription
from digest.runtime import Runtime
from digest.tokens import MANAGE, make_token
from digest.web import create_app
from tests.factories import NewItem, NewTag, add_items, add_source
from tests.support import digest_in as digest
from tests.web_support import csrf, link, outbox, serve

ADDRESS = "v@example.com"
HOURLY = Schedule("hourly", 8, 0, "UTC")


@pytest.fixture
def sent(rt: Runtime, now: datetime) -> int:
    """A reader of Python with a trend alert, sent one hourly digest of one item; the delivery id."""
    start = now - timedelta(hours=2)
    with transaction(rt.sessions) as session:
        info = subscribe(session, ADDRESS, ["Python"], HOURLY, start, confirmed=True)
        python = resolve_skill(session, "python")
        alerts.add(session, info.subscriber_id, python, "24h", 50, 10, start)
        source = add_source(session, "Wire", start)
        tag = NewTag(python.id, ["Python"], in_title=True)
        add_items(session, [NewItem(source, "Python 4 is out", start + timedelta(minutes=10), [tag])])
    send_at = start.replace(minute=0) + timedelta(hours=1, seconds=30)
    [delivery_id] = [d for batch in digests.dispatch_due(rt.sessions, send_at) for d in batch]
    outcome = digests.send_delivery(
        rt.sessions, delivery_id, mailer=rt.mailer, composer=rt.composer, config=rt.delivery, now=send_at
    )
    assert (outcome.status, outcome.items) == ("sent", 1)
    return delivery_id


def test_the_export_holds_subscriptions_alerts_deliveries_with_items_and_events(
    rt: Runtime, sent: int
) -> None:
    with transaction(rt.sessions) as session:
        data = json.loads(rights.as_json(rights.export(session, rt.settings.secret_key, ADDRESS)))

    assert data["subscriber"]["state"] == "active"
    assert [(s["cadence"], s["skills"]) for s in data["subscriptions"]] == [("hourly", ["Python"])]
    assert [(a["skill"], a["period"]) for a in data["alerts"]] == [("Python", "24h")]
    [delivery] = data["deliveries"]
    assert (delivery["id"], delivery["status"]) == (sent, "sent")
    assert [item["title"] for item in delivery["items"]] == ["Python 4 is out"]
    assert [event["event"] for event in delivery["events"]] == ["claimed", "sent"]
    assert data["suppression"] is None and "signup IP" in data["not_stored"]


def test_erasing_keeps_only_the_keyed_hash_and_anonymous_delivery_rows(rt: Runtime, sent: int) -> None:
    done = digest(rt, "subscribers", "erase", ADDRESS, "--json")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) | {"address_hash": ""} == {
        "erased": True,
        "address_hash": "",
        "subscriptions": 1,
        "alerts": 1,
        "deliveries": 1,
    }
    with transaction(rt.sessions) as session:
        assert session.scalar(select(func.count()).where(Subscriber.email == ADDRESS)) == 0
        person = session.scalars(select(Subscriber)).one()
        assert (person.email, person.state) == (rights.placeholder(person.id), "erased")
        assert session.scalars(select(Subscription.state)).all() == ["erased"]
        assert session.scalars(select(Alert)).all() == []
        delivery = session.get(Delivery, sent)
        assert delivery is not None and (delivery.status, delivery.subject, delivery.message_id) == (
            "sent",
            None,
            None,
        )
        assert session.scalars(select(DeliveryItem)).all() == []
        assert session.scalars(select(DeliveryEvent.detail)).all() == [None, None]
        [entry] = suppression.entries(session)
    assert (entry.email, entry.reason) == (None, "erased")
    assert entry.address_hash == suppression.address_hash(rt.settings.secret_key, ADDRESS)


def test_an_erased_address_is_not_re_imported_and_its_export_is_the_suppression_alone(
    rt: Runtime, sent: int
) -> None:
    assert digest(rt, "subscribers", "erase", ADDRESS).returncode == 0

    again = digest(rt, "subscribe", ADDRESS, "--skill", "python", "--confirmed")
    export = digest(rt, "subscribers", "export", ADDRESS, "--json")

    assert again.returncode == 1 and "v@example.com had its data erased on" in again.stderr
    assert export.returncode == 0, export.stderr
    data = json.loads(export.stdout)
    assert (data["subscriber"], data["deliveries"], data["suppression"]["reason"]) == (None, [], "erased")


def test_replays_of_an_erased_delivery_answer_erased(rt: Runtime, sent: int, tmp_path: Path) -> None:
    assert digest(rt, "subscribers", "erase", ADDRESS).returncode == 0

    preview = digest(rt, "replay", str(sent), "--preview", str(tmp_path / "d.html"))
    resend = digest(rt, "replay", str(sent), "--resend", "--json")

    assert preview.returncode == 0 and preview.stdout.strip().startswith(f"delivery {sent}: erased")
    assert preview.stdout.count("\n") == 1
    assert resend.returncode == 0
    assert json.loads(resend.stdout) == {
        "delivery": sent,
        "status": "erased",
        "detail": f"delivery {sent}: erased (its subscriber's data was erased; nothing to replay)",
    }


def test_export_and_erase_of_an_unknown_address_say_so_in_one_line(rt: Runtime) -> None:
    for command in ("export", "erase"):
        done = digest(rt, "subscribers", command, "nobody@example.com")

        assert done.returncode == 1
        assert done.stderr.count("\n") == 1 and "nothing is stored about nobody@example.com" in done.stderr


@pytest.fixture
def client(rt: Runtime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings)) as http:
        yield http


def test_the_manage_page_downloads_the_data_and_erases_after_a_second_confirmation(
    rt: Runtime, sent: int, client: httpx.Client
) -> None:
    with transaction(rt.sessions) as session:
        subscriber_id = session.scalars(select(Subscriber.id)).one()
    token = make_token(rt.settings.secret_key, MANAGE, {"u": subscriber_id})
    page = client.get(f"/manage/{token}")

    download = client.post(f"/manage/{token}/export", data={"csrf": csrf(page.text)})
    confirm = client.get(f"/manage/{token}/erase")
    forged = client.post(f"/manage/{token}/erase", data={"csrf": csrf(page.text)})
    assert forged.status_code == 400
    erased = client.post(f"/manage/{token}/erase", data={"csrf": csrf(confirm.text)})

    assert download.status_code == 200 and download.headers["cache-control"] == "no-store"
    assert "attachment" in download.headers["content-disposition"]
    assert download.json()["deliveries"][0]["items"][0]["title"] == "Python 4 is out"
    assert confirm.status_code == 200 and "Yes, erase everything" in confirm.text
    assert confirm.headers["cache-control"] == "no-store"
    assert erased.status_code == 200 and "erased" in erased.text
    assert client.get(f"/manage/{token}").status_code == 404
    assert client.get(f"/api/manage/{token}").status_code == 400
    with transaction(rt.sessions) as session:
        assert session.scalars(select(Subscriber.state)).one() == "erased"
    # Only the digest went out: erasing sends nothing.
    assert len(outbox(rt.settings)) == 1


def test_an_erased_person_may_sign_up_again_and_the_confirmation_lifts_the_hash(
    rt: Runtime, sent: int, client: httpx.Client
) -> None:
    assert digest(rt, "subscribers", "erase", ADDRESS).returncode == 0
    body = {"email": ADDRESS, "skills": ["python"], "cadence": "daily"}

    assert client.post("/api/subscriptions", json=body).status_code == 202
    confirmation = outbox(rt.settings)[-1]
    assert str(confirmation["To"]) == ADDRESS
    assert client.post(link(confirmation, "confirm")).status_code == 200

    with transaction(rt.sessions) as session:
        assert suppression.entries(session) == []
        state = session.scalar(select(Subscriber.state).where(Subscriber.email == ADDRESS))
    assert state == "active"
