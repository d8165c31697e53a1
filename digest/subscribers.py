"""People: subscribers and their subscriptions (one per cadence, carrying skills)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.cadence import Schedule, next_slot
from digest.errors import InvalidInputError, NotFoundError
from digest.models import Skill, Subscriber, Subscription, SubscriptionSkill
from digest.skills import resolve_skill


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """A subscription as the CLI and web show it."""

    id: int
    email: str
    cadence: str
    hour: int
    weekday: int
    timezone: str
    state: str
    skills: tuple[str, ...]
    next_due_at: datetime


def normalise_email(address: str) -> str:
    """A deliverable-looking address in canonical form, or ``InvalidInputError``. No DNS lookups."""
    if any(char in address for char in "\r\n\x00"):
        raise InvalidInputError("an email address cannot contain line breaks")
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInputError(f"not a valid email address: {exc}") from None
    return result.normalized.lower()


def subscribe(
    session: Session,
    email: str,
    skill_queries: Sequence[str],
    schedule: Schedule,
    now: datetime,
    *,
    confirmed: bool,
) -> SubscriptionInfo:
    """Create or extend the subscriber's subscription for this cadence with these skills. Idempotent."""
    address = normalise_email(email)
    skills = [resolve_skill(session, query) for query in skill_queries]
    if not skills:
        raise InvalidInputError("name at least one skill")
    subscriber = session.scalars(select(Subscriber).where(Subscriber.email == address)).first()
    if subscriber is None:
        subscriber = Subscriber(email=address, timezone=schedule.timezone, state="pending", created_at=now)
        session.add(subscriber)
        session.flush()
    if confirmed and subscriber.state != "active":
        subscriber.state, subscriber.confirmed_at = "active", now
    subscription = session.scalars(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber.id, Subscription.cadence == schedule.cadence
        )
    ).first()
    if subscription is None:
        subscription = Subscription(
            subscriber_id=subscriber.id,
            cadence=schedule.cadence,
            hour=schedule.hour,
            weekday=schedule.weekday,
            timezone=schedule.timezone,
            state="active" if subscriber.state == "active" else "pending",
            next_due_at=next_slot(schedule, now),
            created_at=now,
        )
        session.add(subscription)
        session.flush()
    elif subscription.state in ("unsubscribed", "pending") and subscriber.state == "active":
        subscription.state = "active"
    have = set(
        session.scalars(
            select(SubscriptionSkill.skill_id).where(SubscriptionSkill.subscription_id == subscription.id)
        )
    )
    for skill in skills:
        if skill.id not in have:
            session.add(SubscriptionSkill(subscription_id=subscription.id, skill_id=skill.id))
            have.add(skill.id)
    session.flush()
    return describe(session, subscription.id)


def unsubscribe(session: Session, subscription_id: int) -> SubscriptionInfo:
    """Stop a subscription at once. Saying it twice is not an error."""
    subscription = session.get(Subscription, subscription_id)
    if subscription is None:
        raise NotFoundError(f"no subscription with id {subscription_id}")
    subscription.state = "unsubscribed"
    session.flush()
    return describe(session, subscription_id)


def describe(session: Session, subscription_id: int) -> SubscriptionInfo:
    """The subscription with its subscriber's address and skill names."""
    row = session.execute(
        select(Subscription, Subscriber.email)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(Subscription.id == subscription_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no subscription with id {subscription_id}")
    subscription, email = row
    names = session.scalars(
        select(Skill.name)
        .join(SubscriptionSkill, SubscriptionSkill.skill_id == Skill.id)
        .where(SubscriptionSkill.subscription_id == subscription_id)
        .order_by(Skill.name)
    ).all()
    return SubscriptionInfo(
        id=subscription.id,
        email=email,
        cadence=subscription.cadence,
        hour=subscription.hour,
        weekday=subscription.weekday,
        timezone=subscription.timezone,
        state=subscription.state,
        skills=tuple(names),
        next_due_at=subscription.next_due_at,
    )
