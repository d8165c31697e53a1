"""Trend alerts: mail a subscriber when a skill's mentions rise or fall past a threshold.

A trend compares the mentions (tagged items, by ingest time) of the last ``period`` (24 hours or 7 days)
with the same-length baseline from the 4 weeks before it: the average count per period over those 4 weeks.
An alert fires when the change reaches its threshold (either way) and either count reaches its minimum, so
tiny numbers do not alert; a skill that had no mentions in the baseline and now has at least the minimum is
"new". At most one alert email per alert and UTC day: the ``alert_deliveries`` row is unique on (alert,
day), carries its manifest (the figures and item ids) and goes through the outbox like a digest, so alerts
have the digests' guarantees: exactly once, events, retries with the attempt cap, bounce counting,
replayable, one-click unsubscribe.

    check:  active alerts -> trend per (skill, period), computed once per check -> delivery row per
            alert that fires (unique per day) -> with those whose task may be lost, the ids to enqueue
    send:   outbox.claim (pending -> sending) -> render from the manifest -> store subject, hash,
            Message-ID -> outbox.transmit -> sent | failed | pending for a retry; or skipped (the alert
            was turned off, or its subscriber is no longer active)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.deliver import outbox, suppression
from digest.deliver.compose import Composer, archive_templates, archived_templates, build_message
from digest.deliver.mail import Mailer
from digest.deliver.outbox import ALERTS, Attempt, DeliveryConfig
from digest.errors import InvalidInputError, NotFoundError
from digest.models import Alert, AlertDelivery, Item, Skill, Source, Subscriber, Suppression, Tag
from digest.records import AlertContent, AlertFigures, AlertItem, AlertOutcome, ComposedEmail, DeliveryStatus
from digest.tokens import MANAGE, make_token

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
BASELINE = timedelta(weeks=4)
ALERT_OFF = "alert-off"
ITEMS_SHOWN = 10
# Bars in the email's chart: days for a 24-hour alert, weeks for a 7-day one (the baseline and now).
CHART_BARS = {"24h": 29, "7d": 5}


@dataclass(frozen=True, slots=True)
class Trend:
    """A skill's mentions in the recent period against its baseline."""

    skill_id: str
    skill_name: str
    skill_slug: str
    period: str
    recent: int
    # Average count per period over the 4 weeks before the recent period.
    baseline: float
    # Percent change, or None when the baseline is 0.
    change: float | None
    # Counts per bar, oldest first, the last bar being the recent period.
    bars: tuple[int, ...]
    start: datetime
    end: datetime

    @property
    def words(self) -> str:
        """The change in words: "up 120% vs the prior 4 weeks", "new", "flat"."""
        if self.change is None:
            return "new: no mentions in the prior 4 weeks" if self.recent else "no mentions"
        rounded = round(self.change)
        if rounded == 0:
            return "flat vs the prior 4 weeks"
        return f"{'up' if rounded > 0 else 'down'} {abs(rounded)}% vs the prior 4 weeks"

    def figures(self, threshold: int) -> AlertFigures:
        """What an alert's manifest keeps of this trend, with the alert's threshold."""
        return AlertFigures(**asdict(self), words=self.words, threshold=threshold)


def fires(trend: Trend, threshold: int, min_count: int) -> bool:
    """Whether a trend passes an alert's threshold (either way) with enough mentions to mean something."""
    if max(trend.recent, trend.baseline) < min_count:
        return False
    if trend.change is None:
        return trend.recent >= min_count
    return abs(trend.change) >= threshold


def measure(session: Session, skill: Skill, period: str, now: datetime) -> Trend:
    """The trend of ``skill`` over ``period`` ending at ``now``, by publication date (issue 16)."""
    span = PERIODS[period]
    end, start = now, now - span
    base_start = start - BASELINE
    bar = timedelta(days=1) if period == "24h" else timedelta(days=7)
    bars = CHART_BARS[period]
    first = end - bar * bars
    lower = min(first, base_start)
    # Nothing is published after it is first stored, so the storage time bounds the tag index's range.
    rows = session.scalars(
        select(Item.published_at)
        .join(Tag, Tag.item_id == Item.id)
        .where(Tag.skill_id == skill.id, Tag.ingested_at >= lower)
        .where(Item.published_at >= lower, Item.published_at < end)
    )
    recent = baseline_total = 0
    counts = [0] * bars
    for published in rows:
        if published >= start:
            recent += 1
        elif published >= base_start:
            baseline_total += 1
        if published >= first:
            counts[min(bars - 1, int((published - first) / bar))] += 1
    baseline = baseline_total * (span / BASELINE)
    change = (recent - baseline) / baseline * 100 if baseline else None
    return Trend(
        skill.id, skill.name, skill.slug, period, recent, baseline, change, tuple(counts), start, end
    )


# --- subscriptions to alerts -------------------------------------------------------------------------


def add(
    session: Session,
    subscriber_id: int,
    skill: Skill,
    period: str,
    threshold: int,
    min_count: int,
    now: datetime,
) -> Alert:
    """Create (or update) a subscriber's alert on a skill for a period."""
    if period not in PERIODS:
        raise InvalidInputError(f"period {period!r}: use {' or '.join(PERIODS)}")
    if not 1 <= threshold <= 1000:
        raise InvalidInputError("threshold is a percent change from 1 to 1000")
    if not 1 <= min_count <= 100_000:
        raise InvalidInputError("min count is from 1 to 100000")
    alert = session.scalars(
        select(Alert).where(
            Alert.subscriber_id == subscriber_id, Alert.skill_id == skill.id, Alert.period == period
        )
    ).first()
    if alert is None:
        alert = Alert(subscriber_id=subscriber_id, skill_id=skill.id, period=period, created_at=now)
        session.add(alert)
    alert.threshold, alert.min_count, alert.state = threshold, min_count, "active"
    session.flush()
    return alert


def remove(session: Session, alert_id: int, subscriber_id: int | None = None) -> Alert:
    """Turn an alert off (kept, with its deliveries, for replays); only the subscriber's own, if named."""
    alert = session.get(Alert, alert_id)
    if alert is None or (subscriber_id is not None and alert.subscriber_id != subscriber_id):
        raise NotFoundError(f"no alert with id {alert_id}")
    alert.state = "off"
    return alert


@dataclass(frozen=True, slots=True)
class AlertInfo:
    """An alert as its subscriber sees it."""

    id: int
    skill: str
    skill_slug: str
    period: str
    threshold: int
    min_count: int
    state: str


def of_subscriber(session: Session, subscriber_id: int) -> list[AlertInfo]:
    """A subscriber's alerts that are on."""
    rows = session.execute(
        select(Alert, Skill.name, Skill.slug)
        .join(Skill, Skill.id == Alert.skill_id)
        .where(Alert.subscriber_id == subscriber_id, Alert.state == "active")
        .order_by(Alert.id)
    ).all()
    return [
        AlertInfo(alert.id, name, slug, alert.period, alert.threshold, alert.min_count, alert.state)
        for alert, name, slug in rows
    ]


# --- check and send ----------------------------------------------------------------------------------


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
        postgres = session.get_bind().dialect.name == "postgresql"
        dialect_insert = postgresql.insert if postgres else sqlite.insert
        for alert, skill in alerts:
            if alert.id in already:
                continue
            key = (skill.id, alert.period)
            if key not in trends:
                trends[key] = measure(session, skill, alert.period, now)
            trend = trends[key]
            if not fires(trend, alert.threshold, alert.min_count):
                continue
            created = session.scalar(
                dialect_insert(AlertDelivery)
                .values(
                    alert_id=alert.id,
                    day=day,
                    status=DeliveryStatus.PENDING,
                    figures=trend.figures(alert.threshold).to_json(),
                    item_ids=_behind(session, skill.id, trend),
                    attempts=0,
                    created_at=now,
                    requeue_at=now + outbox.REQUEUE_AFTER,
                )
                .on_conflict_do_nothing(index_elements=["alert_id", "day"])
                .returning(AlertDelivery.id)
            )
            if created is not None:
                opened.append(created)
        stale = outbox.requeue(session, ALERTS, now, exclude=opened)
    return opened + stale


def _behind(session: Session, skill_id: str, trend: Trend) -> list[int]:
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
    found = {
        item.id: AlertItem(item.title, item.url, item.source)
        for item in session.execute(
            select(Item.id, Item.title, Item.url, Source.name.label("source"))
            .join(Source, Source.id == Item.source_id)
            .where(Item.id.in_(list(row.item_ids)))
        ).all()
    }
    trend = AlertFigures.from_json(row.figures)
    off = make_token(config.secret, ALERT_OFF, {"a": row.alert_id})
    manage = make_token(config.secret, MANAGE, {"u": row.subscriber_id})
    content = AlertContent(
        delivery_id=delivery_id,
        email=row.email,
        trend=trend,
        items=tuple(found[item_id] for item_id in row.item_ids if item_id in found),
        skill_url=f"{config.base_url}/skills/{trend.skill_slug}",
        off_url=f"{config.base_url}/alerts/off/{off}",
        manage_url=f"{config.base_url}/manage/{manage}",
        base_url=config.base_url,
    )
    refusal = suppression.refusal(
        row.suppressed, row.suppressed_at, alert=row.alert_state, subscriber=row.subscriber_state
    )
    return _Reader(content, row.subscriber_id, row.bounces, refusal)


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
