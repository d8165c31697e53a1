"""Deliver orchestrator: claim, select, compose, send, record; and replay from the manifest.

    dispatch: due subscription --(conditional update of next_due_at)--> delivery row (pending, window fixed)
    send:     claim delivery (pending -> sending) -> select items of the window (or the stored manifest)
              -> compose -> store manifest -> send -> mark sent | skipped | failed

A window is fixed when its delivery row is created and the row is unique per (subscription, window end),
so two ticks, two beats or a redelivered task never make a second digest for one slot, and the next
window starts where this one ended, so no item is lost or repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.cadence import Schedule, latest_slot, next_slot, previous_slot
from digest.compose import Composer, build_message, message_id
from digest.db import transaction
from digest.errors import MailError, NotFoundError
from digest.mail import Mailer
from digest.models import (
    Delivery,
    DeliveryItem,
    Item,
    Skill,
    Source,
    Subscriber,
    Subscription,
    SubscriptionSkill,
)
from digest.records import ComposedEmail, DeliveryOutcome, DigestContent, DigestSection, ItemForDigest
from digest.selection import item_for_digest, select_window
from digest.tokens import MANAGE, UNSUBSCRIBE, make_token

# A delivery claimed longer ago than this is taken to have lost its worker and may be claimed again.
SEND_LEASE = timedelta(minutes=10)
FINAL = ("sent", "skipped", "failed")


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """What the deliver wing needs from the settings."""

    sender: str
    base_url: str
    secret: str
    max_items: int
    send_empty: bool


def schedule_of(subscription: Subscription) -> Schedule:
    """The cadence record of a subscription row."""
    return Schedule(subscription.cadence, subscription.hour, subscription.weekday, subscription.timezone)


def dispatch_due(sessions: sessionmaker[Session], now: datetime) -> list[int]:
    """Create the delivery of every subscription due at ``now``; return the deliveries to send.

    Also returns deliveries left pending (or abandoned mid-send) by a lost task, so they are sent again.
    """
    with transaction(sessions) as session:
        due = session.scalars(
            select(Subscription.id).where(Subscription.state == "active", Subscription.next_due_at <= now)
        ).all()
    created = [delivery_id for sid in due if (delivery_id := _open_window(sessions, sid, now)) is not None]
    with transaction(sessions) as session:
        stale = session.scalars(
            select(Delivery.id).where(
                or_(
                    Delivery.status == "pending",
                    (Delivery.status == "sending") & (Delivery.claimed_at < now - SEND_LEASE),
                ),
                Delivery.id.not_in(created) if created else Delivery.id.is_not(None),
            )
        ).all()
    return created + list(stale)


def _open_window(sessions: sessionmaker[Session], subscription_id: int, now: datetime) -> int | None:
    """Claim one due subscription and create its delivery; None if another dispatcher got there first."""
    with transaction(sessions) as session:
        subscription = session.get(Subscription, subscription_id)
        if subscription is None or subscription.next_due_at > now:
            return None
        schedule = schedule_of(subscription)
        slot_end = latest_slot(schedule, now)
        start = subscription.last_window_end or previous_slot(schedule, subscription.next_due_at)
        claimed = session.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id, Subscription.next_due_at == subscription.next_due_at)
            .values(next_due_at=next_slot(schedule, slot_end), last_window_end=slot_end)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        delivery = Delivery(
            subscription_id=subscription_id,
            window_start=start,
            window_end=slot_end,
            status="pending",
            created_at=now,
        )
        session.add(delivery)
        session.flush()
        return delivery.id


def send_delivery(
    sessions: sessionmaker[Session],
    delivery_id: int,
    *,
    mailer: Mailer,
    composer: Composer,
    config: DeliveryConfig,
    now: datetime,
) -> DeliveryOutcome:
    """Send one delivery at most once. Raises ``MailError`` (not permanent) when a retry may succeed."""
    if not _claim(sessions, delivery_id, now):
        return _outcome(sessions, delivery_id)
    with transaction(sessions) as session:
        content, has_manifest = _content(session, delivery_id, config)
        subscription_state = session.scalar(
            select(Subscription.state)
            .join(Delivery, Delivery.subscription_id == Subscription.id)
            .where(Delivery.id == delivery_id)
        )
    if subscription_state != "active":
        return _finish(sessions, delivery_id, "skipped", now, error=f"subscription is {subscription_state}")
    if not content.sections and not config.send_empty:
        return _finish(sessions, delivery_id, "skipped", now, error=None)
    email = composer.digest(content)
    message = _message(content, email, config, now)
    if not has_manifest:
        _store_manifest(sessions, delivery_id, content, email, message["Message-ID"])
    try:
        mailer.send(message)
    except MailError as exc:
        if exc.permanent:
            return _finish(sessions, delivery_id, "failed", now, error=str(exc))
        _release(sessions, delivery_id, str(exc))
        raise
    return _finish(sessions, delivery_id, "sent", now, error=None)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A delivery re-rendered from its manifest, beside the hash stored when it was sent."""

    email: ComposedEmail
    message: EmailMessage
    hash_stored: str | None


def render_delivery(
    sessions: sessionmaker[Session], delivery_id: int, composer: Composer, config: DeliveryConfig
) -> Rendered:
    """Re-render a delivery from its stored manifest, as the message it was sent as."""
    with transaction(sessions) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            raise NotFoundError(f"no delivery with id {delivery_id}")
        content, _ = _content(session, delivery_id, config)
        sent_at, stored = delivery.finished_at or delivery.created_at, delivery.body_hash
    email = composer.digest(content)
    return Rendered(email, _message(content, email, config, sent_at), stored)


def _message(
    content: DigestContent, email: ComposedEmail, config: DeliveryConfig, date: datetime
) -> EmailMessage:
    return build_message(
        email,
        sender=config.sender,
        recipient=content.email,
        message_id_value=message_id(content.delivery_id, config.sender),
        date=date,
        unsubscribe_url=content.unsubscribe_url,
    )


def _claim(sessions: sessionmaker[Session], delivery_id: int, now: datetime) -> bool:
    with transaction(sessions) as session:
        result = session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                or_(
                    Delivery.status == "pending",
                    (Delivery.status == "sending") & (Delivery.claimed_at < now - SEND_LEASE),
                ),
            )
            .values(status="sending", claimed_at=now, attempts=Delivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _content(session: Session, delivery_id: int, config: DeliveryConfig) -> tuple[DigestContent, bool]:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFoundError(f"no delivery with id {delivery_id}")
    subscription = session.get(Subscription, delivery.subscription_id)
    assert subscription is not None
    email = session.scalar(select(Subscriber.email).where(Subscriber.id == subscription.subscriber_id))
    assert email is not None
    sections = _manifest_sections(session, delivery_id)
    has_manifest = bool(sections)
    more = delivery.more
    if not has_manifest:
        skill_ids = session.scalars(
            select(SubscriptionSkill.skill_id).where(SubscriptionSkill.subscription_id == subscription.id)
        ).all()
        selection = select_window(
            session, skill_ids, delivery.window_start, delivery.window_end, config.max_items
        )
        sections, more = selection.sections, selection.more
    unsubscribe_token = make_token(config.secret, UNSUBSCRIBE, {"s": subscription.id})
    manage_token = make_token(config.secret, MANAGE, {"u": subscription.subscriber_id})
    content = DigestContent(
        delivery_id=delivery_id,
        email=email,
        cadence=subscription.cadence,
        timezone=subscription.timezone,
        window_start=delivery.window_start,
        window_end=delivery.window_end,
        sections=sections,
        more=more,
        unsubscribe_url=f"{config.base_url}/u/{unsubscribe_token}",
        manage_url=f"{config.base_url}/manage/{manage_token}",
        base_url=config.base_url,
    )
    return content, has_manifest


def _manifest_sections(session: Session, delivery_id: int) -> tuple[DigestSection, ...]:
    rows = session.execute(
        select(DeliveryItem, Item, Source.name, Source.kind, Skill.name, Skill.slug)
        .join(Item, Item.id == DeliveryItem.item_id)
        .join(Source, Source.id == Item.source_id)
        .join(Skill, Skill.id == DeliveryItem.skill_id)
        .where(DeliveryItem.delivery_id == delivery_id)
        .order_by(DeliveryItem.position)
    ).all()
    sections: dict[str, tuple[str, str, list[ItemForDigest]]] = {}
    for entry, item, source_name, source_kind, skill_name, skill_slug in rows:
        sections.setdefault(entry.skill_id, (skill_name, skill_slug, []))[2].append(
            item_for_digest(
                item, source_name, source_kind, entry.skill_id, entry.matched, entry.in_title, entry.score
            )
        )
    return tuple(
        DigestSection(sid, name, slug, tuple(items)) for sid, (name, slug, items) in sections.items()
    )


def _store_manifest(
    sessions: sessionmaker[Session],
    delivery_id: int,
    content: DigestContent,
    email: ComposedEmail,
    msgid: str,
) -> None:
    with transaction(sessions) as session:
        session.execute(delete(DeliveryItem).where(DeliveryItem.delivery_id == delivery_id))
        position = 0
        for section in content.sections:
            for item in section.items:
                session.add(
                    DeliveryItem(
                        delivery_id=delivery_id,
                        position=position,
                        item_id=item.item_id,
                        skill_id=section.skill_id,
                        matched=list(item.matched),
                        in_title=item.in_title,
                        score=item.score,
                    )
                )
                position += 1
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        delivery.subject = email.subject
        delivery.template_version = email.template_version
        delivery.body_hash = email.body_hash
        delivery.message_id = msgid
        delivery.more = content.more


def _release(sessions: sessionmaker[Session], delivery_id: int, error: str) -> None:
    """Hand a delivery back for a retry after a temporary failure."""
    with transaction(sessions) as session:
        session.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(status="pending", error=error)
        )


def _finish(
    sessions: sessionmaker[Session], delivery_id: int, status: str, now: datetime, *, error: str | None
) -> DeliveryOutcome:
    with transaction(sessions) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(status=status, finished_at=now, error=error)
            .execution_options(synchronize_session=False)
        )
    return _outcome(sessions, delivery_id)


def _outcome(sessions: sessionmaker[Session], delivery_id: int) -> DeliveryOutcome:
    with transaction(sessions) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            raise NotFoundError(f"no delivery with id {delivery_id}")
        count = len(
            session.scalars(
                select(DeliveryItem.position).where(DeliveryItem.delivery_id == delivery_id)
            ).all()
        )
        return DeliveryOutcome(delivery_id, delivery.status, count, delivery.message_id, delivery.error)


def pending(sessions: sessionmaker[Session], delivery_ids: Sequence[int]) -> int:
    """How many of ``delivery_ids`` are not finished yet."""
    if not delivery_ids:
        return 0
    with transaction(sessions) as session:
        return len(
            session.scalars(
                select(Delivery.id).where(Delivery.id.in_(list(delivery_ids)), Delivery.status.not_in(FINAL))
            ).all()
        )
