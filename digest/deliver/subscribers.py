"""People: subscribers and their subscriptions (one per cadence, carrying skills).

Subscription states: ``pending`` (waiting for the address to be confirmed), ``active``, ``paused`` and
``unsubscribed``. Only ``active`` ones are dispatched, and ``digests.send_delivery`` checks again at send
time, so an unsubscribe wins even over a digest already queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from digest.deliver import suppression
from digest.deliver.cadence import Schedule, check_cadence, next_slot, previous_slot, window
from digest.errors import InvalidInputError, NotFoundError
from digest.ingest.skills import resolve_skill
from digest.models import Skill, Subscriber, Subscription, SubscriptionSkill
from digest.records import SubscriptionInfo
from digest.vocabulary import MAX_SKILLS_PER_SUBSCRIPTION


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
    """Create or extend the subscriber's subscription for this cadence with these skills. Idempotent.

    ``confirmed`` says the address owner asked for it (a confirmation link, a signed manage link, or ops):
    the subscriber and the subscription become active and the skills are added. An unconfirmed request
    (the public form) only creates what is missing, as pending, and never changes a subscription that is
    already live: the confirmation link carries the request and applies it (``digest.signup``).
    """
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
        # Confirming again is also how a bouncing address is fixed: the person proved it takes mail.
        subscriber.state, subscriber.confirmed_at, subscriber.bounces = "active", now, 0
    subscription = find(session, subscriber.id, schedule.cadence)
    if subscription is None:
        subscription = Subscription(
            subscriber_id=subscriber.id,
            cadence=schedule.cadence,
            hour=schedule.hour,
            weekday=schedule.weekday,
            timezone=schedule.timezone,
            state="pending",
            next_due_at=next_slot(schedule, now),
            created_at=now,
        )
        session.add(subscription)
        session.flush()
    elif not confirmed and subscription.state != "pending":
        return describe(session, subscription.id)
    # Issue 14: a pending (or given up) subscription takes exactly what this request carries, so a
    # second, unconfirmed request replaces the first instead of adding to it, and a confirmation link
    # activates only the skills it names. A live subscription only gains the confirmed skills.
    fresh = subscription.state in ("pending", "unsubscribed")
    if fresh:
        session.execute(delete(SubscriptionSkill).where(SubscriptionSkill.subscription_id == subscription.id))
    if subscription.state == "pending":
        _set_schedule(subscription, schedule)
    if confirmed and fresh:
        _activate(subscription, now)
    _add_skills(session, subscription.id, [skill.id for skill in skills])
    return describe(session, subscription.id)


def next_window(info: SubscriptionInfo, now: datetime) -> tuple[datetime, datetime]:
    """The window the subscription's next dispatch opens, as of ``now`` (``cadence.window``): what the
    manage page and the admin show as its next digest."""
    schedule = Schedule(info.cadence, info.hour, info.weekday, info.timezone)
    return window(schedule, info.last_window_end, info.next_due_at, now)


def subscriber_id(session: Session, email: str) -> int | None:
    """The id of the subscriber with this (normalised) address, if any."""
    return session.scalar(select(Subscriber.id).where(Subscriber.email == email))


def find(session: Session, subscriber_id: int, cadence: str) -> Subscription | None:
    """The subscriber's subscription at ``cadence``, if any."""
    mine = (Subscription.subscriber_id == subscriber_id) & (Subscription.cadence == cadence)
    return session.scalars(select(Subscription).where(mine)).first()


def subscriptions_of(session: Session, subscriber_id: int) -> list[SubscriptionInfo]:
    """Every subscription of a subscriber, oldest first."""
    ids = session.scalars(
        select(Subscription.id).where(Subscription.subscriber_id == subscriber_id).order_by(Subscription.id)
    ).all()
    return [describe(session, sid) for sid in ids]


def owned(session: Session, subscriber_id: int, subscription_id: int) -> Subscription:
    """The subscription, if it belongs to this subscriber; a signed link never reaches another person's."""
    subscription = session.get(Subscription, subscription_id)
    if subscription is None or subscription.subscriber_id != subscriber_id:
        raise InvalidInputError("this link does not cover that subscription")
    return subscription


def change_schedule(
    session: Session, subscriber_id: int, subscription_id: int, schedule: Schedule, now: datetime
) -> SubscriptionInfo:
    """Change cadence, hour, weekday or timezone from the next window on, losing and repeating nothing.

    The next window still starts at ``last_window_end`` (the end of the last one sent) and ends at the
    new schedule's next slot. Moving to a cadence the subscriber already has merges the skills into it.
    """
    subscription = owned(session, subscriber_id, subscription_id)
    if subscription.state == "active" and subscription.last_window_end is None:
        # Never sent: pin where its first window would have started, so the change loses nothing.
        subscription.last_window_end = previous_slot(_schedule(subscription), subscription.next_due_at)
    if schedule.cadence != subscription.cadence:
        other = find(session, subscriber_id, schedule.cadence)
        if other is not None:
            return _merge(session, subscription, other, schedule, now)
    _set_schedule(subscription, schedule)
    subscription.next_due_at = next_slot(schedule, now)
    session.flush()
    return describe(session, subscription.id)


@dataclass(frozen=True, slots=True)
class CadenceChange:
    """What ``set_cadence`` found and changed (or, in a dry run, would change)."""

    matched: int
    changed: int
    dry_run: bool


def set_cadence(
    session: Session, skill_query: str, from_cadence: str, to_cadence: str, now: datetime, *, dry_run: bool
) -> CadenceChange:
    """Move every subscription at ``from_cadence`` that follows the skill to ``to_cadence`` (ops, in bulk).

    Each move is ``change_schedule``: the whole subscription moves, keeping its hour, weekday and timezone,
    its next window starts where its last one ended, and it merges into the subscriber's subscription at
    ``to_cadence`` if there is one. Only active and paused subscriptions move: a pending or unsubscribed
    one matches but is left alone, because merging it would carry skills its owner has not confirmed (or
    has given up) into a live subscription.
    """
    check_cadence(from_cadence)
    check_cadence(to_cadence)
    if from_cadence == to_cadence:
        raise InvalidInputError(f"--from and --to are both {from_cadence}: nothing would change")
    skill = resolve_skill(session, skill_query)
    rows = session.scalars(
        select(Subscription)
        .join(SubscriptionSkill, SubscriptionSkill.subscription_id == Subscription.id)
        .where(SubscriptionSkill.skill_id == skill.id, Subscription.cadence == from_cadence)
        .order_by(Subscription.id)
    ).all()
    movable = [row for row in rows if row.state in ("active", "paused")]
    if not dry_run:
        for row in movable:
            schedule = Schedule(to_cadence, row.hour, row.weekday, row.timezone)
            change_schedule(session, row.subscriber_id, row.id, schedule, now)
    return CadenceChange(matched=len(rows), changed=len(movable), dry_run=dry_run)


def _merge(
    session: Session, source: Subscription, target: Subscription, schedule: Schedule, now: datetime
) -> SubscriptionInfo:
    skill_ids = session.scalars(
        select(SubscriptionSkill.skill_id).where(SubscriptionSkill.subscription_id == source.id)
    ).all()
    _add_skills(session, target.id, list(skill_ids))
    _set_schedule(target, schedule)
    if source.state == "active" and target.state != "active":
        target.state = "active"
        # The moved subscription's next window carries on in the target.
        target.last_window_end = source.last_window_end
    target.next_due_at = next_slot(schedule, now)
    source.state = "unsubscribed"
    session.flush()
    return describe(session, target.id)


def pause(session: Session, subscriber_id: int, subscription_id: int) -> SubscriptionInfo:
    """Stop sending until resumed."""
    subscription = owned(session, subscriber_id, subscription_id)
    if subscription.state == "active":
        subscription.state = "paused"
        session.flush()
    return describe(session, subscription_id)


def resume(session: Session, subscriber_id: int, subscription_id: int, now: datetime) -> SubscriptionInfo:
    """Send again from the next slot on (what was published meanwhile is not sent); also re-subscribes.
    A suppressed address is refused (issue 14): only its own new confirmation lifts that."""
    subscription = owned(session, subscriber_id, subscription_id)
    if subscription.state in ("paused", "unsubscribed"):
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is not None:
            suppression.refuse_subscriber(session, subscriber.email)
        _activate(subscription, now)
        if subscriber is not None and subscriber.state == "unsubscribed":
            # The signed link is the owner's consent to mail again after "unsubscribe from everything".
            subscriber.state = "active"
        session.flush()
    return describe(session, subscription_id)


def add_skills(
    session: Session, subscriber_id: int, subscription_id: int, queries: Sequence[str]
) -> SubscriptionInfo:
    """Follow more skills in this subscription (the signed link is the owner's consent)."""
    owned(session, subscriber_id, subscription_id)
    _add_skills(session, subscription_id, [resolve_skill(session, query).id for query in queries])
    return describe(session, subscription_id)


def remove_skill(
    session: Session, subscriber_id: int, subscription_id: int, skill_id: str
) -> SubscriptionInfo:
    """Stop following one skill; the last one cannot go (unsubscribe instead)."""
    owned(session, subscriber_id, subscription_id)
    have = session.scalars(
        select(SubscriptionSkill).where(SubscriptionSkill.subscription_id == subscription_id)
    ).all()
    if skill_id in {row.skill_id for row in have}:
        if len(have) == 1:
            raise InvalidInputError("a digest needs at least one skill: unsubscribe instead")
        session.execute(
            delete(SubscriptionSkill).where(
                SubscriptionSkill.subscription_id == subscription_id, SubscriptionSkill.skill_id == skill_id
            )
        )
    return describe(session, subscription_id)


@dataclass(frozen=True, slots=True)
class Changes:
    """What a manage page or API call asks to change in one subscription; None leaves a field alone."""

    cadence: str | None = None
    hour: int | None = None
    weekday: int | None = None
    timezone: str | None = None
    state: str | None = None
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


def update(
    session: Session, subscriber_id: int, subscription_id: int, changes: Changes, now: datetime
) -> SubscriptionInfo:
    """Apply ``changes``: skills first, so a cadence change that merges carries them along."""
    subscription = owned(session, subscriber_id, subscription_id)
    if changes.add:
        add_skills(session, subscriber_id, subscription_id, changes.add)
    for query in changes.remove:
        remove_skill(session, subscriber_id, subscription_id, resolve_skill(session, query).id)
    current = _schedule(subscription)
    wanted = Schedule(
        changes.cadence or current.cadence,
        current.hour if changes.hour is None else changes.hour,
        current.weekday if changes.weekday is None else changes.weekday,
        changes.timezone or current.timezone,
    )
    if wanted != current:
        subscription_id = change_schedule(session, subscriber_id, subscription_id, wanted, now).id
    if changes.state == "paused":
        return pause(session, subscriber_id, subscription_id)
    if changes.state == "active":
        return resume(session, subscriber_id, subscription_id, now)
    if changes.state is not None:
        raise InvalidInputError(f"unknown state {changes.state!r}: use active or paused")
    return describe(session, subscription_id)


def _schedule(subscription: Subscription) -> Schedule:
    return Schedule(subscription.cadence, subscription.hour, subscription.weekday, subscription.timezone)


def _set_schedule(subscription: Subscription, schedule: Schedule) -> None:
    subscription.cadence, subscription.hour = schedule.cadence, schedule.hour
    subscription.weekday, subscription.timezone = schedule.weekday, schedule.timezone


def _activate(subscription: Subscription, now: datetime) -> None:
    """Make a subscription live from the next slot after ``now``.

    A first window reaches one period back (``digests`` starts it at the previous slot). A subscription
    coming back from a pause or an unsubscribe starts no earlier than that either, and never before the
    end of the last window it was sent, so nothing is repeated.
    """
    schedule = _schedule(subscription)
    subscription.state = "active"
    subscription.next_due_at = next_slot(schedule, now)
    if subscription.last_window_end is not None:
        subscription.last_window_end = max(
            subscription.last_window_end, previous_slot(schedule, subscription.next_due_at)
        )


def _add_skills(session: Session, subscription_id: int, skill_ids: Sequence[str]) -> None:
    have = set(
        session.scalars(
            select(SubscriptionSkill.skill_id).where(SubscriptionSkill.subscription_id == subscription_id)
        )
    )
    if len(have | set(skill_ids)) > (limit := MAX_SKILLS_PER_SUBSCRIPTION):
        raise InvalidInputError(f"a digest follows at most {limit} skills; it has {len(have)}: remove some")
    for skill_id in skill_ids:
        if skill_id not in have:
            session.add(SubscriptionSkill(subscription_id=subscription_id, skill_id=skill_id))
            have.add(skill_id)
    session.flush()


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
        subscriber_id=subscription.subscriber_id,
        email=email,
        cadence=subscription.cadence,
        hour=subscription.hour,
        weekday=subscription.weekday,
        timezone=subscription.timezone,
        state=subscription.state,
        skills=tuple(names),
        next_due_at=subscription.next_due_at,
        last_window_end=subscription.last_window_end,
    )


def list_all(session: Session) -> list[SubscriptionInfo]:
    """Every subscription, by subscriber address then cadence."""
    ids = session.scalars(
        select(Subscription.id)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .order_by(Subscriber.email, Subscription.cadence)
    ).all()
    return [describe(session, subscription_id) for subscription_id in ids]


def pending_for(session: Session, email: str, cadence: str) -> SubscriptionInfo:
    """The subscription of ``email`` at ``cadence`` (after a signup request it exists, pending or not)."""
    subscription_id = session.scalar(
        select(Subscription.id)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(Subscriber.email == email, Subscription.cadence == cadence)
    )
    if subscription_id is None:
        raise NotFoundError(f"no {cadence} subscription for {email}")
    return describe(session, subscription_id)
