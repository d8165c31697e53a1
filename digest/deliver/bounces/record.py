"""What a bounce or complaint does to the delivery it names and to its subscriber (issue 19).

    hard bounce -> an event "bounced" in the delivery's history with the reason; the subscriber becomes
                   "bouncing" and the address is suppressed for every email kind (``suppression``)
    complaint   -> an event "complained"; the address is suppressed (reason complaint)
    soft bounce -> an event "soft-bounced"; one more bounce in a row (``outbox.count_bounce``: the third
                   makes the subscriber bouncing and suppresses the address)

The same report seen twice (a provider retrying its webhook, a mailbox read again) adds nothing the second
time: an event with the same kind and reason on the delivery means it was counted already.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from digest.deliver import outbox, suppression
from digest.deliver.bounces.reports import COMPLAINT, HARD, SOFT, Report
from digest.deliver.outbox import DIGESTS, Event
from digest.models import Delivery, DeliveryEvent, Subscriber, Subscription
from digest.records import DeliveryStatus

EVENTS = {HARD: Event.BOUNCED, SOFT: Event.SOFT_BOUNCED, COMPLAINT: Event.COMPLAINED}
# Our Message-ID (``compose.message_id``), as a provider's webhook echoes it; replays have a suffix.
_MESSAGE_ID = re.compile(r"<?digest\.(?P<id>[0-9]{1,18})@[^>\s]+>?")
APPLIED, REPEATED, UNKNOWN = "applied", "repeated", "unknown delivery"


@dataclass(frozen=True, slots=True)
class Applied:
    """What one report did: ``outcome`` is applied, repeated (seen before) or unknown delivery."""

    kind: str
    delivery_id: int | None
    outcome: str
    reason: str
    source: str

    def as_json(self) -> dict[str, Any]:
        """The shape ``digest bounces read --json`` prints per report."""
        return {
            "kind": self.kind,
            "delivery": self.delivery_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "source": self.source,
        }


def apply(session: Session, report: Report, secret: str, now: datetime) -> Applied:
    """Record ``report`` on its delivery and act on its subscriber, in the caller's transaction."""
    delivery_id = _delivery_id(session, report)
    person = None
    if delivery_id is not None:
        person = session.execute(
            select(Subscriber.id, Subscriber.email)
            .join(Subscription, Subscription.subscriber_id == Subscriber.id)
            .join(Delivery, Delivery.subscription_id == Subscription.id)
            .where(Delivery.id == delivery_id)
        ).one_or_none()
    if delivery_id is None or person is None:
        return Applied(report.kind, delivery_id, UNKNOWN, report.reason, report.source)
    event = EVENTS[report.kind]
    seen = session.scalar(
        select(DeliveryEvent.id).where(
            DeliveryEvent.delivery_id == delivery_id,
            DeliveryEvent.event == event,
            DeliveryEvent.detail == report.reason,
        )
    )
    if seen is not None:
        return Applied(report.kind, delivery_id, REPEATED, report.reason, report.source)
    outbox.record(session, DIGESTS, delivery_id, now, event, report.reason)
    if report.kind == HARD:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == person.id)
            .values(state="bouncing", bounces=Subscriber.bounces + 1)
            .execution_options(synchronize_session=False)
        )
        suppression.suppress(session, secret, person.email, suppression.BOUNCE, report.source, now)
    elif report.kind == COMPLAINT:
        suppression.suppress(session, secret, person.email, suppression.COMPLAINT, report.source, now)
    else:
        outbox.count_bounce(session, person.id, secret, report.source, now)
    return Applied(report.kind, delivery_id, APPLIED, report.reason, report.source)


def _delivery_id(session: Session, report: Report) -> int | None:
    """The delivery a report names: its signed VERP address; for a verified webhook, else our Message-ID,
    else the latest digest sent to the recipient (a provider that reports neither, like Postmark)."""
    if report.delivery_id is not None or not report.authenticated:
        return report.delivery_id
    found = _MESSAGE_ID.fullmatch(report.message_id.strip()) if report.message_id else None
    if found is not None:
        return int(found.group("id"))
    if report.recipient is None:
        return None
    return session.scalar(
        select(Delivery.id)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(Subscriber.email == report.recipient, Delivery.status == DeliveryStatus.SENT)
        .order_by(Delivery.finished_at.desc(), Delivery.id.desc())
        .limit(1)
    )
