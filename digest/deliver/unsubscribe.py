"""Stopping mail: one subscription, or everything a person gets (issue 14, finding 5).

"Unsubscribe from everything" stops every email kind in the caller's one transaction: each digest
subscription, each trend alert (turned off), and each digest or alert email waiting to be sent but not
yet claimed by a sender (skipped through the outbox, with an event). A row already claimed is checked
again at send time (``digests.send`` and ``alerts`` refuse a subscriber who is not active), so nothing
gets out after the person said stop. The subscriber's own state becomes ``unsubscribed`` and the address
goes on the suppression list, so no later shortcut (a re-import by ops) mails it again (``suppression``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.deliver import outbox, suppression
from digest.deliver.subscribers import describe, subscriptions_of
from digest.errors import NotFoundError
from digest.models import Alert, AlertDelivery, Delivery, Subscriber, Subscription
from digest.records import DeliveryStatus, SubscriptionInfo

REASON = "the subscriber unsubscribed from everything"


def unsubscribe(session: Session, subscription_id: int) -> SubscriptionInfo:
    """Stop a subscription at once. Saying it twice is not an error."""
    subscription = session.get(Subscription, subscription_id)
    if subscription is None:
        raise NotFoundError(f"no subscription with id {subscription_id}")
    subscription.state = "unsubscribed"
    session.flush()
    return describe(session, subscription_id)


def unsubscribe_all(
    session: Session, subscriber_id: int, now: datetime, *, secret: str, source: str
) -> list[SubscriptionInfo]:
    """Stop every email the subscriber gets: digests, alerts and the emails not yet claimed; suppress the
    address (``secret`` keys its hash; ``source`` says where the request came from)."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFoundError(f"no subscriber with id {subscriber_id}")
    subscriptions = select(Subscription.id).where(Subscription.subscriber_id == subscriber_id)
    alert_ids = select(Alert.id).where(Alert.subscriber_id == subscriber_id)
    for subscription in session.scalars(
        select(Subscription).where(Subscription.subscriber_id == subscriber_id)
    ):
        subscription.state = "unsubscribed"
    for alert in session.scalars(select(Alert).where(Alert.id.in_(alert_ids), Alert.state == "active")):
        alert.state = "off"
    waiting = DeliveryStatus.PENDING
    digests = select(Delivery.id).where(
        Delivery.subscription_id.in_(subscriptions), Delivery.status == waiting
    )
    alert_mails = select(AlertDelivery.id).where(
        AlertDelivery.alert_id.in_(alert_ids), AlertDelivery.status == waiting
    )
    for box, query in ((outbox.DIGESTS, digests), (outbox.ALERTS, alert_mails)):
        # Locked until commit, so a sender's claim (an update of pending rows) waits and then finds them
        # skipped; SQLite has one writer at a time anyway.
        for delivery_id in list(session.scalars(query.with_for_update())):
            outbox.finish(session, box, delivery_id, DeliveryStatus.SKIPPED, now, REASON)
    subscriber.state = "unsubscribed"
    suppression.suppress(session, secret, subscriber.email, suppression.UNSUBSCRIBED, source, now)
    session.flush()
    return subscriptions_of(session, subscriber_id)
