"""One alert now, for the platform API (issue 19): what it would send, and opening its email at once.

preview:  the trend now, the items behind it and the email rendered from them, with the reason a run
          now would send nothing (or None); nothing stored
open_now: today's delivery of the alert opened at once, the row ``check`` would open (unique per alert
          and UTC day, so a run and the beat never send two); ``send`` then sends it through the
          outbox. ``ConflictError`` with the reason when nothing may be sent: sending paused, the
          alert or its subscriber not active, the address suppressed, today's email opened already,
          or the trend short of the alert's threshold or minimum count
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.deliver import suppression
from digest.deliver.alerts.send import behind, content_of, open_delivery
from digest.deliver.alerts.trends import Trend, fires, measure
from digest.deliver.compose import Composer
from digest.deliver.outbox import DeliveryConfig
from digest.errors import ConflictError, NotFoundError
from digest.models import Alert, AlertDelivery, Skill, Subscriber
from digest.ops import sending
from digest.records import AlertContent, ComposedEmail

_SENT_TODAY = "it fired today already: one email per alert and UTC day"


@dataclass(frozen=True, slots=True)
class AlertPreview:
    """The alert email as a run now would send it, rendered from the trend now; not stored."""

    content: AlertContent
    email: ComposedEmail
    min_count: int
    # Why a run now would send nothing, or None when it would send this email.
    refusal: str | None


def preview(
    sessions: sessionmaker[Session],
    alert_id: int,
    now: datetime,
    composer: Composer,
    config: DeliveryConfig,
) -> AlertPreview:
    """Alert ``alert_id``'s email as of ``now``, rendered whether it fires or not; nothing is stored."""
    with transaction(sessions) as session:
        alert, skill, person = _load(session, alert_id, lock=False)
        trend = measure(session, skill, alert.period, now)
        content = content_of(
            session,
            config,
            # No delivery yet: 0, as a digest's preview (the id only names a sent message).
            delivery_id=0,
            figures=trend.figures(alert.threshold),
            item_ids=behind(session, skill.id, trend),
            alert_id=alert.id,
            subscriber=(person.id, person.email),
        )
        refusal = _refusal(session, alert, person, trend, now)
        min_count = alert.min_count
    return AlertPreview(content, composer.alert(content), min_count, refusal)


def open_now(session: Session, alert_id: int, now: datetime) -> int:
    """Open today's delivery of alert ``alert_id`` to be sent at once; its id. ``ConflictError`` with the
    reason when nothing may be sent now. The alert row is locked, so two runs at once open one delivery."""
    alert, skill, person = _load(session, alert_id, lock=True)
    trend = measure(session, skill, alert.period, now)
    refusal = _refusal(session, alert, person, trend, now)
    opened = open_delivery(session, alert, trend, now) if refusal is None else None
    if opened is None:
        # No refusal but no row: the beat's check opened today's between the two statements.
        raise ConflictError(f"alert {alert_id} sends nothing now: {refusal or _SENT_TODAY}")
    return opened


def _load(session: Session, alert_id: int, *, lock: bool) -> tuple[Alert, Skill, Subscriber]:
    query = select(Alert).where(Alert.id == alert_id)
    alert = session.scalars(query.with_for_update() if lock else query).first()
    if alert is None:
        raise NotFoundError(f"no alert with id {alert_id}")
    skill = session.get(Skill, alert.skill_id)
    person = session.get(Subscriber, alert.subscriber_id)
    # Foreign keys: an alert always has its skill and its subscriber.
    assert skill is not None
    assert person is not None
    return alert, skill, person


def _refusal(session: Session, alert: Alert, person: Subscriber, trend: Trend, now: datetime) -> str | None:
    """Why a run now sends nothing, or None: the outbox's refusals first, then ``check``'s."""
    if sending.paused(session):
        return "sending is paused (`digest sending resume`)"
    entry = suppression.of_emails(session, [person.email]).get(person.email)
    refused = suppression.refusal(
        entry.reason if entry else None,
        entry.since if entry else None,
        alert=alert.state,
        subscriber=person.state,
    )
    if refused is not None:
        return refused
    today = (AlertDelivery.alert_id == alert.id) & (AlertDelivery.day == now.date())
    if session.scalar(select(AlertDelivery.id).where(today)) is not None:
        return _SENT_TODAY
    if not fires(trend, alert.threshold, alert.min_count):
        return (
            f"{trend.skill_name} is {trend.words} ({trend.recent} mentions in the last {alert.period}): "
            f"the alert needs a change of {alert.threshold}% with at least {alert.min_count} mentions"
        )
    return None
