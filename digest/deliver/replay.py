"""Admins' replays: a past digest sent again exactly as it was, to someone else or to its subscriber.

A replay renders the delivery from its stored manifest with the template version it was sent with
(``digests.render_delivery``), gets a Message-ID of its own (``<digest.ID.replayN@...>``) and an
``X-Digest-Replay-Of`` header naming the original, and is recorded (``replays``) before it is sent, so a
second resend of one delivery is refused unless forced, and a bulk resend interrupted half way skips what it
already sent when it is run again. Every replay is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.deliver import rights
from digest.deliver.compose import Composer, build_message, message_id
from digest.deliver.digests import Rendered, render_delivery
from digest.deliver.mail import Mailer
from digest.deliver.outbox import DeliveryConfig
from digest.deliver.subscribers import normalise_email
from digest.errors import AlreadyResentError, InvalidInputError, MailError, NotFoundError
from digest.models import Delivery, Replay, Subscriber, Subscription
from digest.ops import audit, retention
from digest.records import DeliveryStatus


class Means(Protocol):
    """What a replay needs from the process it runs in. The edges pass their ``Runtime``; this wing
    does not import it (runtime sits above the wings)."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def mailer(self) -> Mailer: ...

    @property
    def composer(self) -> Composer: ...

    @property
    def delivery(self) -> DeliveryConfig: ...


COPY = "copy"
RESEND = "resend"


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """What became of one replay."""

    delivery_id: int
    replay_id: int
    kind: str
    address: str
    message_id: str
    status: str
    error: str | None = None


def send_copy(rt: Means, delivery_id: int, address: str, actor: str, now: datetime) -> ReplayOutcome:
    """Send a copy of a past delivery to ``address`` (an admin answering "what did they get?")."""
    return _replay(rt, delivery_id, COPY, normalise_email(address), actor, now)


def resend(rt: Means, delivery_id: int, actor: str, now: datetime, *, force: bool = False) -> ReplayOutcome:
    """Send a past delivery to its subscriber again, marked as a replay; once only, unless ``force``."""
    with transaction(rt.sessions) as session:
        address = session.scalar(
            select(Subscriber.email)
            .join(Subscription, Subscription.subscriber_id == Subscriber.id)
            .join(Delivery, Delivery.subscription_id == Subscription.id)
            .where(Delivery.id == delivery_id)
        )
        if address is None:
            raise retention.pruned(session, delivery_id) or NotFoundError(
                f"no delivery with id {delivery_id}"
            )
        earlier = _resent(rt, delivery_id)
        if earlier is not None and not force:
            raise AlreadyResentError(
                f"delivery {delivery_id} was resent already (replay {earlier.id}, {earlier.status})"
            )
    return _replay(rt, delivery_id, RESEND, address, actor, now)


def resend_failed(
    rt: Means,
    since: datetime,
    until: datetime | None,
    actor: str,
    now: datetime,
    each: Callable[[list[int], Callable[[int], ReplayOutcome]], list[ReplayOutcome]],
) -> tuple[list[ReplayOutcome], int]:
    """Resend every delivery that failed in ``[since, until)`` and was not resent yet.

    ``each`` runs the resends (the CLI's progress bar). Returns the outcomes and how many were skipped as
    already resent, so running it again after an interruption sends only what is left.
    """
    with transaction(rt.sessions) as session:
        # An erased subscriber's deliveries are not resent (issue 14): they answer "erased" one by one.
        query = (
            select(Delivery.id)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .where(
                Delivery.status == DeliveryStatus.FAILED,
                Delivery.finished_at >= since,
                Subscription.state != rights.ERASED,
            )
        )
        if until is not None:
            query = query.where(Delivery.finished_at < until)
        failed = list(session.scalars(query.order_by(Delivery.id)))
        done = set(
            session.scalars(
                select(Replay.delivery_id).where(
                    Replay.delivery_id.in_(failed),
                    Replay.kind == RESEND,
                    Replay.status == DeliveryStatus.SENT,
                )
            )
        )
    todo = [delivery_id for delivery_id in failed if delivery_id not in done]
    outcomes = each(todo, lambda delivery_id: resend(rt, delivery_id, actor, now, force=True))
    return outcomes, len(done)


def _resent(rt: Means, delivery_id: int) -> Replay | None:
    with transaction(rt.sessions) as session:
        return session.scalars(
            select(Replay)
            .where(
                Replay.delivery_id == delivery_id,
                Replay.kind == RESEND,
                Replay.status.in_((DeliveryStatus.SENDING, DeliveryStatus.SENT)),
            )
            .order_by(Replay.id)
        ).first()


def as_sent(rt: Means, delivery_id: int) -> Rendered:
    """A sent delivery rendered again from its manifest, with its templates of the day: the bytes that
    were sent (a copy, a resend, and the "view in browser" page all show this)."""
    rendered = render_delivery(rt.sessions, delivery_id, rt.composer, rt.delivery)
    if rendered.hash_stored is None:
        raise InvalidInputError(f"delivery {delivery_id} has no manifest: it was skipped, not sent")
    return rendered


def _replay(rt: Means, delivery_id: int, kind: str, address: str, actor: str, now: datetime) -> ReplayOutcome:
    rendered = as_sent(rt, delivery_id)
    sender = rt.delivery.sender
    with transaction(rt.sessions) as session:
        replay = Replay(
            delivery_id=delivery_id,
            kind=kind,
            address=address,
            message_id="",
            status=DeliveryStatus.SENDING,
            actor=actor,
            created_at=now,
        )
        session.add(replay)
        session.flush()
        replay.message_id = message_id(delivery_id, sender, replay=replay.id)
        audit.record(session, actor, f"replay.{kind}", {"delivery": delivery_id, "to": address}, now)
        replay_id, msgid = replay.id, replay.message_id
    message = build_message(
        rendered.email,
        sender=sender,
        recipient=address,
        message_id_value=msgid,
        date=now,
        unsubscribe_url=rendered.content.unsubscribe_url,
        extra_headers=[("X-Digest-Replay-Of", rendered.message["Message-ID"])],
    )
    status, error = DeliveryStatus.SENT, None
    try:
        rt.mailer.send(message)
    except MailError as exc:
        status, error = DeliveryStatus.FAILED, str(exc)
    with transaction(rt.sessions) as session:
        session.execute(update(Replay).where(Replay.id == replay_id).values(status=status, error=error))
    return ReplayOutcome(delivery_id, replay_id, kind, address, msgid, status, error)
