"""The outbox (digest/deliver/outbox.py): one claim, status, event history, back-off and attempt cap for
digests and alerts alike. Real SMTP on loopback (aiosmtpd); the clock is pinned and moved by hand."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from digest.cli import app
from digest.config import load_settings, settings_env
from digest.db import transaction
from digest.deliver import alerts, digests, outbox, replay
from digest.deliver.compose import Composer
from digest.deliver.mail import Mailer, mailer_for
from digest.deliver.outbox import DeliveryConfig
from digest.errors import ConfigError, MailError
from digest.models import AlertDelivery, AlertDeliveryEvent, Delivery, DeliveryEvent, Subscriber
from digest.records import DeliveryStatus
from digest.runtime import Runtime
from tests.deliver.test_alerts import NOW, reader, surge
from tests.deliver.test_digests import BERLIN_DAILY, Ingest, at, dispatch, follow
from tests.support import SmtpSink, feed_server, smtp_sink

FULL = "452 4.2.2 mailbox full"
# How the mailer reports that reply.
REPLY = "SMTP 452: 4.2.2 mailbox full"
SLOT = at("2026-11-16T07:00:30")


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as running:
        yield running


@pytest.fixture
def ingest(rt: Runtime) -> Iterator[Ingest]:
    with feed_server() as server:
        yield Ingest(rt, server)


@pytest.fixture
def mailer(sink: SmtpSink) -> Iterator[Mailer]:
    sending = mailer_for(sink.url)
    yield sending
    sending.close()


def until_final(
    send: Callable[[datetime], DeliveryStatus], start: datetime, step: timedelta
) -> tuple[int, DeliveryStatus]:
    """Send again and again, ``step`` apart, as the task's retries and the re-enqueues would, until the
    delivery is final; how many sends that took and the status it ended with."""
    now = start
    for tries in range(1, 100):
        try:
            return tries, send(now)
        except MailError as exc:
            refused = exc
        assert not refused.permanent
        now += step
    raise AssertionError("the delivery never became final")


def a_digest(rt: Runtime, ingest: Ingest) -> int:
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"))
    ingest(at("2026-11-15T12:00"), ("Python tips", ""))
    [delivery_id] = dispatch(rt, SLOT)
    return delivery_id


def digest_events(rt: Runtime, delivery_id: int) -> list[tuple[str, str | None]]:
    with transaction(rt.sessions) as session:
        rows = session.execute(
            select(DeliveryEvent.event, DeliveryEvent.detail)
            .where(DeliveryEvent.delivery_id == delivery_id)
            .order_by(DeliveryEvent.id)
        ).all()
    return [(row.event, row.detail) for row in rows]


def alert_events(rt: Runtime, delivery_id: int) -> list[tuple[str, str | None]]:
    with transaction(rt.sessions) as session:
        rows = session.execute(
            select(AlertDeliveryEvent.event, AlertDeliveryEvent.detail)
            .where(AlertDeliveryEvent.delivery_id == delivery_id)
            .order_by(AlertDeliveryEvent.id)
        ).all()
    return [(row.event, row.detail) for row in rows]


@dataclass(frozen=True)
class Means:
    """What a replay needs (``replay.Means``), with the sink's mailer in place of the runtime's."""

    sessions: sessionmaker[Session]
    mailer: Mailer
    composer: Composer
    delivery: DeliveryConfig


def cli(rt: Runtime, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=settings_env(rt.settings))
    return result.exit_code, result.output


def test_a_digest_refused_452_forever_fails_after_the_attempt_cap_with_its_events(
    rt: Runtime, ingest: Ingest, sink: SmtpSink, mailer: Mailer
) -> None:
    delivery_id = a_digest(rt, ingest)
    sink.refuse = lambda _rcpt: FULL

    def send(now: datetime) -> DeliveryStatus:
        return digests.send_delivery(
            rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=now
        ).status

    tries, status = until_final(send, SLOT, timedelta(minutes=5))

    assert (tries, status) == (rt.delivery.max_attempts, DeliveryStatus.FAILED) == (10, "failed")
    events = digest_events(rt, delivery_id)
    assert [event for event, _ in events] == ["claimed", "released"] * 9 + ["claimed", "failed"]
    assert all(REPLY in (detail or "") for event, detail in events if event == "released")
    assert events[-1][1] and events[-1][1].startswith("gave up after 10 attempts") and REPLY in events[-1][1]
    assert sink.messages == []
    # Listed among the failed, with its history, and replayable once the mailbox has room again.
    code, output = cli(rt, "deliveries", "list", "--status", "failed", "--json")
    assert code == 0, output
    assert [(row["id"], row["status"]) for row in json.loads(output)] == [(delivery_id, "failed")]
    sink.refuse = lambda _rcpt: None
    over_smtp = Means(rt.sessions, mailer, rt.composer, rt.delivery)
    resent = replay.resend(over_smtp, delivery_id, "test", SLOT + timedelta(hours=1))
    assert resent.status == "sent" and len(sink.messages) == 1


def test_a_digest_still_refused_past_its_lifetime_fails_on_that_attempt(
    rt: Runtime, ingest: Ingest, sink: SmtpSink, mailer: Mailer
) -> None:
    delivery_id = a_digest(rt, ingest)
    sink.refuse = lambda _rcpt: FULL

    config = replace(rt.delivery, give_up_after=timedelta(hours=72))

    def send(now: datetime) -> DeliveryStatus:
        return digests.send_delivery(
            rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=config, now=now
        ).status

    tries, status = until_final(send, SLOT, timedelta(hours=40))

    assert (tries, status) == (3, DeliveryStatus.FAILED)
    with transaction(rt.sessions) as session:
        stored = session.get(Delivery, delivery_id)
        assert stored is not None
        assert (stored.status, stored.attempts) == ("failed", 3)
        assert (
            stored.error
            and stored.error.startswith("gave up after 80 h (3 attempts)")
            and REPLY in stored.error
        )


def test_an_alert_refused_452_forever_fails_after_the_attempt_cap_with_its_events(
    rt: Runtime, sink: SmtpSink, mailer: Mailer
) -> None:
    surge(rt)
    reader(rt)
    [delivery_id] = alerts.check(rt.sessions, NOW)
    sink.refuse = lambda _rcpt: FULL

    config = replace(rt.delivery, max_attempts=4)

    def send(now: datetime) -> DeliveryStatus:
        return alerts.send(
            rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=config, now=now
        ).status

    tries, status = until_final(send, NOW, timedelta(minutes=5))

    assert (tries, status) == (4, DeliveryStatus.FAILED)
    events = alert_events(rt, delivery_id)
    assert [event for event, _ in events] == ["claimed", "released"] * 3 + ["claimed", "failed"]
    assert events[-1][1] and events[-1][1].startswith("gave up after 4 attempts") and REPLY in events[-1][1]
    with transaction(rt.sessions) as session:
        stored = session.get(AlertDelivery, delivery_id)
        assert stored is not None and stored.status == "failed" and REPLY in (stored.error or "")
    # Failed for good: no check enqueues it again.
    assert alerts.check(rt.sessions, NOW + timedelta(hours=11)) == []
    assert sink.messages == []


def test_an_alert_waiting_out_its_back_off_is_not_enqueued_again_until_its_requeue_time(
    rt: Runtime, sink: SmtpSink, mailer: Mailer
) -> None:
    surge(rt)
    reader(rt)
    [delivery_id] = alerts.check(rt.sessions, NOW)
    sink.refuse = lambda _rcpt: "451 4.3.0 try again later"
    with pytest.raises(MailError):
        alerts.send(
            rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=NOW
        )
    with transaction(rt.sessions) as session:
        requeue_at = session.scalar(select(AlertDelivery.requeue_at).where(AlertDelivery.id == delivery_id))
    assert requeue_at == NOW + outbox.retry_delay(1) + outbox.REQUEUE_AFTER

    assert alerts.check(rt.sessions, NOW + timedelta(minutes=5)) == []
    assert alerts.check(rt.sessions, requeue_at - timedelta(seconds=1)) == []
    assert alerts.check(rt.sessions, requeue_at) == [delivery_id]
    # Enqueued again, it waits another REQUEUE_AFTER before the next check hands it out once more.
    assert alerts.check(rt.sessions, requeue_at + timedelta(minutes=1)) == []


def test_a_permanent_refusal_of_an_alert_counts_as_a_bounce(
    rt: Runtime, sink: SmtpSink, mailer: Mailer
) -> None:
    surge(rt)
    reader(rt)
    with transaction(rt.sessions) as session:
        session.execute(update(Subscriber).values(bounces=outbox.BOUNCE_LIMIT - 1))
    [delivery_id] = alerts.check(rt.sessions, NOW)
    sink.refuse = lambda _rcpt: "550 5.1.1 no such user"

    outcome = alerts.send(
        rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=NOW
    )

    assert outcome.status == "failed" and "550" in (outcome.error or "")
    assert [event for event, _ in alert_events(rt, delivery_id)] == ["claimed", "failed"]
    with transaction(rt.sessions) as session:
        subscriber = session.scalars(select(Subscriber)).one()
        assert (subscriber.bounces, subscriber.state) == (outbox.BOUNCE_LIMIT, "bouncing")


def test_an_alert_turned_off_after_it_fired_is_skipped_with_an_event(rt: Runtime, mailer: Mailer) -> None:
    surge(rt)
    alert_id = reader(rt)
    [delivery_id] = alerts.check(rt.sessions, NOW)
    with transaction(rt.sessions) as session:
        alerts.remove(session, alert_id)

    outcome = alerts.send(
        rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=NOW
    )

    assert (outcome.status, outcome.error) == ("skipped", "alert is off")
    assert [event for event, _ in alert_events(rt, delivery_id)] == ["claimed", "skipped"]


def test_the_database_refuses_a_status_the_outbox_does_not_know(rt: Runtime, ingest: Ingest) -> None:
    digest_id = a_digest(rt, ingest)
    surge(rt)
    reader(rt)
    [alert_id] = alerts.check(rt.sessions, NOW)

    for table, row_id in ((Delivery, digest_id), (AlertDelivery, alert_id)):
        with pytest.raises(IntegrityError), transaction(rt.sessions) as session:
            session.execute(update(table).where(table.id == row_id).values(status="released"))
        with transaction(rt.sessions) as session:
            session.execute(update(table).where(table.id == row_id).values(status=DeliveryStatus.SKIPPED))


@pytest.mark.parametrize(
    ("variable", "value"),
    [("max_attempts", 0), ("max_attempts", 101), ("give_up_after", "3 days"), ("give_up_after", "0h")],
)
def test_a_bad_attempt_cap_is_one_readable_line(variable: str, value: object) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(**{variable: value})

    assert str(refused.value).startswith(f"DIGEST_{variable.upper()}: ") and "\n" not in str(refused.value)


def test_the_attempt_cap_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("DIGEST_GIVE_UP_AFTER", "3D")

    settings = load_settings()

    assert (settings.max_attempts, settings.give_up_after, settings.give_up_span) == (
        4,
        "3d",
        timedelta(days=3),
    )
