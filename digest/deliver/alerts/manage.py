"""A subscriber's alerts: create (or update), turn off, list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.deliver.alerts.trends import PERIODS
from digest.errors import InvalidInputError, NotFoundError
from digest.models import Alert, Skill


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
