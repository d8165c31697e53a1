"""The people's rights over their data (issue 14; GDPR art. 15 and 17): export it, erase it.

    export: the subscriber -> subscriptions with skills -> alerts with their emails -> digests with their
            items (from the manifest), events and replays -> audit entries naming the address -> the
            suppression entry
    erase:  delete what is about the person, anonymise what the figures count, keep only the keyed hash
            in the suppression list -> one transaction

What "erased" keeps is written down in docs/design.md ("Export and erase"): each digest delivery row stays
with its status, window, attempts and times, so sent/failed figures do not change, but without subject,
Message-ID, body hash, error, manifest, replays or event details; the subscriber and subscription rows
stay as tombstones (state ``erased``, a placeholder address, UTC) so those rows keep their keys; alerts
and their emails are deleted (an alert names a skill the person follows, and no figure counts them).
Signup IP addresses are never stored with an address (the per-network counters hold no address), so
there is nothing of them to export or erase.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from digest.deliver import suppression
from digest.errors import ErasedError, NotFoundError
from digest.models import (
    Alert,
    AlertDelivery,
    AuditEntry,
    Delivery,
    DeliveryEvent,
    DeliveryItem,
    Item,
    Skill,
    Subscriber,
    Subscription,
    SubscriptionSkill,
)
from digest.models import Replay as ReplayRow

ERASED = "erased"
# Audit actions whose arguments name a subscriber's address under "email".
AUDITED_WITH_EMAIL = ("alerts.add", "suppression.add", "suppression.remove")


def placeholder(subscriber_id: int) -> str:
    """The address an erased subscriber's tombstone holds (RFC 2606: ``.invalid`` never resolves)."""
    return f"erased-{subscriber_id}@erased.invalid"


def export(session: Session, secret: str, email: str) -> dict[str, Any]:
    """Everything stored about ``email``, as JSON-ready data; ``NotFoundError`` if nothing is."""
    subscriber = session.scalars(select(Subscriber).where(Subscriber.email == email)).first()
    entry = suppression.find(session, secret, email)
    if subscriber is None and entry is None:
        raise NotFoundError(f"nothing is stored about {email}")
    data: dict[str, Any] = {"email": email, "subscriber": None, "subscriptions": [], "alerts": []}
    data |= {"deliveries": [], "audit": _audit(session, email)}
    if subscriber is not None:
        data["subscriber"] = {
            "id": subscriber.id,
            "state": suppression.person_states(session, [subscriber.id])[subscriber.id],
            "timezone": subscriber.timezone,
            "created_at": subscriber.created_at,
            "confirmed_at": subscriber.confirmed_at,
            "bounces": subscriber.bounces,
        }
        data["subscriptions"] = _subscriptions(session, subscriber.id)
        data["alerts"] = _alerts(session, subscriber.id)
        data["deliveries"] = _deliveries(session, subscriber.id)
    data["suppression"] = None if entry is None else _entry(entry)
    data["not_stored"] = (
        "signup IP addresses: signups are counted per network and hour with no address attached; "
        "confirmation emails per address are counted under an unkeyed hash for a day, then forgotten"
    )
    return data


def as_json(data: dict[str, Any]) -> str:
    """An export as a JSON document (times in ISO 8601), for the command and the manage page's download."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=_iso) + "\n"


def _iso(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def erase(session: Session, secret: str, email: str, source: str, now: datetime) -> dict[str, int]:
    """Erase ``email``'s personal data and suppress its keyed hash; what was changed, counted.

    ``NotFoundError`` if no subscriber has the address (an address only on the suppression list is
    suppressed again as erased, so its stored address goes too).
    """
    subscriber = session.scalars(select(Subscriber).where(Subscriber.email == email)).first()
    if subscriber is None and suppression.find(session, secret, email) is None:
        raise NotFoundError(f"nothing is stored about {email}")
    counts = {"subscriptions": 0, "alerts": 0, "deliveries": 0}
    if subscriber is not None:
        counts = _erase_subscriber(session, subscriber)
    _scrub_audit(session, email, secret)
    suppression.suppress(session, secret, email, suppression.ERASED, source, now)
    session.flush()
    return counts


def erased(delivery_id: int) -> ErasedError:
    """What a replay of an erased delivery answers: the status "erased", in one line."""
    return ErasedError(
        f"delivery {delivery_id}: erased (its subscriber's data was erased; nothing to replay)"
    )


def _erase_subscriber(session: Session, subscriber: Subscriber) -> dict[str, int]:
    subscriptions = select(Subscription.id).where(Subscription.subscriber_id == subscriber.id)
    deliveries = select(Delivery.id).where(Delivery.subscription_id.in_(subscriptions))
    delivery_count = len(session.scalars(deliveries).all())
    session.execute(delete(DeliveryItem).where(DeliveryItem.delivery_id.in_(deliveries)))
    session.execute(delete(ReplayRow).where(ReplayRow.delivery_id.in_(deliveries)))
    # SMTP replies quote the address; the event itself (claimed, sent, failed) is a figure.
    session.execute(
        update(DeliveryEvent).where(DeliveryEvent.delivery_id.in_(deliveries)).values(detail=None)
    )
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(deliveries))
        .values(subject=None, message_id=None, body_hash=None, error=None, more_by_skill={})
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(SubscriptionSkill).where(SubscriptionSkill.subscription_id.in_(subscriptions)))
    changed = session.execute(
        update(Subscription)
        .where(Subscription.subscriber_id == subscriber.id)
        .values(state=ERASED, timezone="UTC")
        .execution_options(synchronize_session=False)
    )
    alerts = session.execute(delete(Alert).where(Alert.subscriber_id == subscriber.id))
    subscriber.email, subscriber.timezone = placeholder(subscriber.id), "UTC"
    subscriber.state, subscriber.confirmed_at, subscriber.bounces = ERASED, None, 0
    return {
        "subscriptions": changed.rowcount,  # type: ignore[attr-defined]
        "alerts": alerts.rowcount,  # type: ignore[attr-defined]
        "deliveries": delivery_count,
    }


def _scrub_audit(session: Session, email: str, secret: str) -> None:
    """Audit entries keep what was done, with the address replaced by the start of its keyed hash."""
    mark = f"erased:{suppression.address_hash(secret, email)[:16]}"
    for entry in _audit_rows(session, email):
        entry.arguments = {key: mark if value == email else value for key, value in entry.arguments.items()}


def _audit_rows(session: Session, email: str) -> list[AuditEntry]:
    rows = session.scalars(select(AuditEntry).where(AuditEntry.action.in_(AUDITED_WITH_EMAIL)))
    return [row for row in rows if email in row.arguments.values()]


def _audit(session: Session, email: str) -> list[dict[str, Any]]:
    return [
        {"at": row.at, "actor": row.actor, "action": row.action, "arguments": row.arguments}
        for row in _audit_rows(session, email)
    ]


def _entry(entry: suppression.SuppressionInfo) -> dict[str, Any]:
    return {"reason": entry.reason, "source": entry.source, "since": entry.since}


def _subscriptions(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Subscription).where(Subscription.subscriber_id == subscriber_id).order_by(Subscription.id)
    ).all()
    skills = session.execute(
        select(SubscriptionSkill.subscription_id, Skill.name)
        .join(Skill, Skill.id == SubscriptionSkill.skill_id)
        .where(SubscriptionSkill.subscription_id.in_([row.id for row in rows]))
        .order_by(Skill.name)
    ).all()
    return [
        {
            "id": row.id,
            "cadence": row.cadence,
            "hour": row.hour,
            "weekday": row.weekday,
            "timezone": row.timezone,
            "state": row.state,
            "skills": [name for sid, name in skills if sid == row.id],
            "created_at": row.created_at,
            "next_due_at": row.next_due_at,
            "last_window_end": row.last_window_end,
        }
        for row in rows
    ]


def _alerts(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    alerts = session.execute(
        select(Alert, Skill.name)
        .join(Skill, Skill.id == Alert.skill_id)
        .where(Alert.subscriber_id == subscriber_id)
        .order_by(Alert.id)
    ).all()
    emails = session.scalars(
        select(AlertDelivery)
        .where(AlertDelivery.alert_id.in_([alert.id for alert, _ in alerts]))
        .order_by(AlertDelivery.id)
    ).all()
    return [
        {
            "id": alert.id,
            "skill": name,
            "period": alert.period,
            "threshold": alert.threshold,
            "min_count": alert.min_count,
            "state": alert.state,
            "created_at": alert.created_at,
            "emails": [
                {
                    "id": row.id,
                    "day": row.day,
                    "status": row.status,
                    "subject": row.subject,
                    "items": row.item_ids,
                }
                for row in emails
                if row.alert_id == alert.id
            ],
        }
        for alert, name in alerts
    ]


def _deliveries(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Delivery)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Subscription.subscriber_id == subscriber_id)
        .order_by(Delivery.id)
    ).all()
    ids = [row.id for row in rows]
    items = session.execute(
        select(DeliveryItem.delivery_id, DeliveryItem.position, Item.title, Item.url, Skill.name)
        .join(Item, Item.id == DeliveryItem.item_id)
        .join(Skill, Skill.id == DeliveryItem.skill_id)
        .where(DeliveryItem.delivery_id.in_(ids))
        .order_by(DeliveryItem.delivery_id, DeliveryItem.position)
    ).all()
    events = session.scalars(
        select(DeliveryEvent).where(DeliveryEvent.delivery_id.in_(ids)).order_by(DeliveryEvent.id)
    ).all()
    replays = session.scalars(select(ReplayRow).where(ReplayRow.delivery_id.in_(ids))).all()
    return [
        {
            "id": row.id,
            "subscription_id": row.subscription_id,
            "window_start": row.window_start,
            "window_end": row.window_end,
            "status": row.status,
            "subject": row.subject,
            "message_id": row.message_id,
            "error": row.error,
            "created_at": row.created_at,
            "finished_at": row.finished_at,
            "items": [
                {"title": title, "url": url, "skill": skill}
                for did, _, title, url, skill in items
                if did == row.id
            ],
            "events": [
                {"at": event.at, "event": event.event, "detail": event.detail}
                for event in events
                if event.delivery_id == row.id
            ],
            "replays": [
                {"kind": replay.kind, "to": replay.address, "status": replay.status, "at": replay.created_at}
                for replay in replays
                if replay.delivery_id == row.id
            ],
        }
        for row in rows
    ]
