"""Check every alert and send the ones that fire, once each per day, through the outbox; render one again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.deliver import outbox, suppression
from digest.deliver.alerts.trends import Trend, fires, measure
from digest.deliver.compose import Composer, archive_templates, archived_templates, build_message
from digest.deliver.mail import Mailer
from digest.deliver.outbox import ALERTS, Attempt, DeliveryConfig
from digest.errors import NotFoundError
from digest.models import Alert, AlertDelivery, Item, Skill, Source, Subscriber, Suppression, Tag
from digest.records import AlertContent, AlertFigures, AlertItem, AlertOutcome, ComposedEmail, DeliveryStatus
from digest.tokens import MANAGE, make_token

ALERT_OFF = "alert-off"
ITEMS_SHOWN = 10


def check(sessions: sessionmaker[Session], now: datetime) -> list[int]:
    """Open today's delivery of every alert that fires at ``now``; return those to send, with those whose
    task may be lost (pending past their re-enqueue time, or abandoned mid-send): an alert waiting out a
    retry's back-off is not enqueued again."""
    day = now.date()
    opened: list[int] = []
    trends: dict[tuple[str, str], Trend] = {}
    with transaction(sessions) as session:
        alerts = session.execute(
            select(Alert, Skill)
            .join(Skill, Skill.id == Alert.skill_id)
            .join(Subscriber, Subscriber.id == Alert.subscriber_id)
            .where(Alert.state == "active", Subscriber.state == "active")
            .order_by(Alert.id)
        ).all()
        already = set(
            session.scalars(
                select(AlertDelivery.alert_id).where(
                    AlertDelivery.day == day, AlertDelivery.alert_id.in_([alert.id for alert, _ in alerts])
                )
            )
        )
        for alert, skill in alerts:
            if alert.id in already:
                continue
            key = (skill.id, alert.period)
            if key not in trends:
                trends[key] = measure(session, skill, alert.period, now)
            trend = trends[key]
            if not fires(trend, alert.threshold, alert.min_count):
                continue
            created = open_delivery(session, alert, trend, now)
            if created is not None:
                opened.append(created)
        stale = outbox.requeue(session, ALERTS, now, exclude=opened)
    return opened + stale


def open_delivery(session: Session, alert: Alert, trend: Trend, now: datetime) -> int | None:
    """Open the delivery of ``alert`` for ``now``'s UTC day with ``trend`` as its manifest; its id, or None
    when that day has one already (the row is unique on (alert, day): one email per alert and day)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    dialect_insert = postgresql.insert if postgres else sqlite.insert
    return session.scalar(
        dialect_insert(AlertDelivery)
        .values(
            alert_id=alert.id,
            day=now.date(),
            status=DeliveryStatus.PENDING,
            figures=trend.figures(alert.threshold).to_json(),
            item_ids=behind(session, alert.skill_id, trend),
            attempts=0,
            created_at=now,
            requeue_at=now + outbox.REQUEUE_AFTER,
        )
        .on_conflict_do_nothing(index_elements=["alert_id", "day"])
        .returning(AlertDelivery.id)
    )


def behind(session: Session, skill_id: str, trend: Trend) -> list[int]:
    """The items behind the change: the recent period's strongest mentions, newest first among equals."""
    return list(
        session.scalars(
            select(Tag.item_id)
            .join(Item, Item.id == Tag.item_id)
            .where(Tag.skill_id == skill_id, Tag.ingested_at >= trend.start)
            .where(Item.published_at >= trend.start, Item.published_at < trend.end)
            .order_by(Tag.score.desc(), Item.published_at.desc())
            .limit(ITEMS_SHOWN)
        )
    )


def send(
    sessions: sessionmaker[Session],
    delivery_id: int,
    *,
    mailer: Mailer,
    composer: Composer,
    config: DeliveryConfig,
    now: datetime,
) -> AlertOutcome:
    """Send one alert delivery at most once. Raises ``MailError`` (not permanent) when a retry may help."""
    with transaction(sessions) as session:
        claimed = outbox.claim(session, ALERTS, delivery_id, now, AlertDelivery.template_version)
        if claimed is None:
            row = session.get(AlertDelivery, delivery_id)
            if row is None:
                raise NotFoundError(f"no alert delivery with id {delivery_id}")
            return AlertOutcome(delivery_id, DeliveryStatus(row.status), row.message_id, row.error)
        reader = _reader(session, delivery_id, config)
        if reader.refusal is not None:
            outbox.finish(session, ALERTS, delivery_id, DeliveryStatus.SKIPPED, now, reader.refusal)
            return AlertOutcome(delivery_id, DeliveryStatus.SKIPPED, None, reader.refusal)
        # A retry renders with the templates of its first attempt, so every attempt is the same message.
        files = archived_templates(session, "alert", claimed.template_version)
        email = composer.alert(reader.content, archived=files)
        message = _message(reader.content, email, config, now)
        session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.id == delivery_id)
            .values(
                subject=email.subject,
                body_hash=email.body_hash,
                template_version=email.template_version,
                message_id=message["Message-ID"],
            )
            .execution_options(synchronize_session=False)
        )
        archive_templates(session, composer, "alert", email.template_version, now)
    attempt = Attempt(delivery_id, claimed.attempts, claimed.created_at, reader.subscriber_id, reader.bounces)
    result = outbox.transmit(sessions, ALERTS, attempt, message, mailer=mailer, config=config, now=now)
    sent = result.status == DeliveryStatus.SENT
    return AlertOutcome(delivery_id, result.status, message["Message-ID"] if sent else None, result.error)


@dataclass(frozen=True, slots=True)
class RenderedAlert:
    """An alert delivery rendered again from its manifest, beside the hash stored when it was sent."""

    content: AlertContent
    email: ComposedEmail
    message: EmailMessage
    hash_stored: str | None


def render(
    sessions: sessionmaker[Session], delivery_id: int, composer: Composer, config: DeliveryConfig
) -> RenderedAlert:
    """Re-render an alert delivery from its manifest, with the template version it was sent with."""
    with transaction(sessions) as session:
        stored = session.get(AlertDelivery, delivery_id)
        if stored is None:
            raise NotFoundError(f"no alert delivery with id {delivery_id}")
        content = _reader(session, delivery_id, config).content
        files = archived_templates(session, "alert", stored.template_version)
        sent_at, hash_stored = stored.finished_at or stored.created_at, stored.body_hash
    email = composer.alert(content, archived=files)
    return RenderedAlert(content, email, _message(content, email, config, sent_at), hash_stored)


def alert_message_id(delivery_id: int, sender: str) -> str:
    """A stable Message-ID per alert delivery, so a resend after a crash is recognisably the same mail."""
    return f"<alert.{delivery_id}@{sender.rpartition('@')[2] or 'localhost'}>"


@dataclass(frozen=True, slots=True)
class _Reader:
    """An alert delivery's content and who it goes to."""

    content: AlertContent
    subscriber_id: int
    bounces: int
    # Why it must not be mailed (suppressed, the alert turned off, the subscriber bounced), or None.
    refusal: str | None


def _reader(session: Session, delivery_id: int, config: DeliveryConfig) -> _Reader:
    row = session.execute(
        select(
            AlertDelivery.figures,
            AlertDelivery.item_ids,
            Alert.id.label("alert_id"),
            Alert.state.label("alert_state"),
            Subscriber.id.label("subscriber_id"),
            Subscriber.email,
            Subscriber.state.label("subscriber_state"),
            Subscriber.bounces,
            Suppression.reason.label("suppressed"),
            Suppression.created_at.label("suppressed_at"),
        )
        .join(Alert, Alert.id == AlertDelivery.alert_id)
        .join(Subscriber, Subscriber.id == Alert.subscriber_id)
        .outerjoin(Suppression, Suppression.email == Subscriber.email)  # suppression wins (issue 14)
        .where(AlertDelivery.id == delivery_id)
    ).one()
    content = content_of(
        session,
        config,
        delivery_id=delivery_id,
        figures=AlertFigures.from_json(row.figures),
        item_ids=row.item_ids,
        alert_id=row.alert_id,
        subscriber=(row.subscriber_id, row.email),
    )
    refusal = suppression.refusal(
        row.suppressed, row.suppressed_at, alert=row.alert_state, subscriber=row.subscriber_state
    )
    return _Reader(content, row.subscriber_id, row.bounces, refusal)


def content_of(
    session: Session,
    config: DeliveryConfig,
    *,
    delivery_id: int,
    figures: AlertFigures,
    item_ids: Sequence[int],
    alert_id: int,
    subscriber: tuple[int, str],
) -> AlertContent:
    """What an alert email says: the figures, the items behind them still stored, and its links."""
    found = {
        item.id: AlertItem(item.title, item.url, item.source)
        for item in session.execute(
            select(Item.id, Item.title, Item.url, Source.name.label("source"))
            .join(Source, Source.id == Item.source_id)
            .where(Item.id.in_(list(item_ids)))
        ).all()
    }
    subscriber_id, email = subscriber
    off = make_token(config.secret, ALERT_OFF, {"a": alert_id})
    manage = make_token(config.secret, MANAGE, {"u": subscriber_id})
    return AlertContent(
        delivery_id=delivery_id,
        email=email,
        trend=figures,
        items=tuple(found[item_id] for item_id in item_ids if item_id in found),
        skill_url=f"{config.base_url}/skills/{figures.skill_slug}",
        off_url=f"{config.base_url}/alerts/off/{off}",
        manage_url=f"{config.base_url}/manage/{manage}",
        base_url=config.base_url,
    )


def _message(
    content: AlertContent, email: ComposedEmail, config: DeliveryConfig, date_: datetime
) -> EmailMessage:
    return build_message(
        email,
        sender=config.sender,
        recipient=content.email,
        message_id_value=alert_message_id(content.delivery_id, config.sender),
        date=date_,
        unsubscribe_url=content.off_url,
    )
