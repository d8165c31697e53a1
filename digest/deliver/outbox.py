"""The outbox: one way for every email row (digest, alert) to be claimed, sent, retried and recorded.

    claim (pending, or sending past its lease -> sending, attempts + 1, event "claimed")
      -> the orchestrator composes -> transmit:
           250               -> the journal -> sent (event "sent", the reply; the write alone retried
                                through a database outage); a bounce count starts from zero again
      a re-claim whose message the journal holds -> sent without sending (issue 18, journal.py)
           5xx               -> failed (event "failed", the reply); the third in a row marks a bounce
                                and suppresses the address (``suppression``)
           4xx, under cap    -> pending again (event "released", the reply); retried after a back-off
           4xx, past the cap -> failed (event "failed": attempts, age and the last reply)
      or skip (refused before sending: event "skipped")

A row is claimed with a conditional update, so two workers never send one row; a worker that died
mid-send leaves it ``sending`` and it is claimed again once ``SEND_LEASE`` has passed. A row still pending
at its ``requeue_at`` (its task may be lost with a broker that restarted) is handed to the dispatch again.

The attempt cap is an MTA's queue lifetime (RFC 5321 4.5.4.1: give up after 4-5 days; ours is
``DIGEST_GIVE_UP_AFTER``, 72 h by default) and an attempt count (``DIGEST_MAX_ATTEMPTS``): a mailbox that
answers 452 for a week would otherwise go release -> requeue -> retry forever (issue 13). A row that gave
up is ``failed`` with the last reply, listed by ``digest deliveries list --status failed`` and replayable.

Signup confirmations do not pass through here: they have no row (a request is answered the same whether
or not the address is known, so nothing about it may be stored before it is confirmed) and are sent once,
while the visitor waits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, case, insert, or_, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from digest.db import transaction
from digest.deliver import suppression
from digest.deliver.journal import Acceptance, Journal, journal_for
from digest.deliver.mail import Mailer
from digest.deliver.selection import MAX_ITEM_AGE
from digest.errors import JournalError, MailError
from digest.models import AlertDelivery, AlertDeliveryEvent, Delivery, DeliveryEvent, Subscriber
from digest.ops import metrics
from digest.records import DeliveryStatus as Status

logger = logging.getLogger(__name__)
# A row claimed longer ago than this is taken to have lost its worker and may be claimed again.
SEND_LEASE = timedelta(minutes=10)
# A row still pending this long after it was enqueued is enqueued again (its task may be lost with a
# broker that restarted); a second task for it finds it claimed or finished and does nothing.
REQUEUE_AFTER = timedelta(minutes=15)
# A temporary failure is retried after 30 s, 1 min, 2 min, ... up to 30 min: always shorter than the
# broker's visibility timeout, so a waiting retry is never handed to a second worker.
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=30)
# The write that marks an accepted message sent is retried after 0.25 s, 0.5 s, ... at most 5 s apart (for
# ``DIGEST_SENT_WRITE_RETRY`` in all): a PostgreSQL restart takes seconds, a failover tens of seconds.
SENT_RETRY_FIRST = 0.25
SENT_RETRY_MAX = 5.0
# Permanent failures in a row after which a subscriber is "bouncing" and gets no more email.
BOUNCE_LIMIT = 3


class Event(StrEnum):
    """A line of a delivery's history: one per claim and one per outcome."""

    CLAIMED = "claimed"
    SENT = "sent"
    # A temporary failure (4xx): back to pending, with the SMTP reply.
    RELEASED = "released"
    FAILED = "failed"
    SKIPPED = "skipped"
    # Reported after the server accepted it (issue 19): a DSN, an ARF report or a provider's webhook.
    BOUNCED = "bounced"
    SOFT_BOUNCED = "soft-bounced"
    COMPLAINED = "complained"


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """What the deliver wing needs from the settings."""

    sender: str
    base_url: str
    secret: str
    max_items: int
    send_empty: bool
    # The attempt cap (``DIGEST_MAX_ATTEMPTS``, ``DIGEST_GIVE_UP_AFTER``): a temporary failure past
    # either of these fails the delivery for good.
    max_attempts: int
    give_up_after: timedelta
    # How long before its window an item may have been published and still be mailed (issue 16).
    max_item_age: timedelta = MAX_ITEM_AGE
    # The folder of the sent journal (``DIGEST_HOME/journal``); None sends without one (issue 18).
    journal: Path | None = None
    # How long the write that marks an accepted email ``sent`` is retried (``DIGEST_SENT_WRITE_RETRY``).
    sent_write_retry: timedelta = timedelta(seconds=60)
    # The domain of each digest's VERP return path (``DIGEST_BOUNCE_DOMAIN``, issue 19); empty: none.
    bounce_domain: str = ""


@dataclass(frozen=True, slots=True)
class Box:
    """One kind of email row: its table and the table of its events."""

    table: type[Delivery] | type[AlertDelivery]
    events: type[DeliveryEvent] | type[AlertDeliveryEvent]
    # The name of its rows in the sent journal.
    kind: str


DIGESTS = Box(Delivery, DeliveryEvent, "digest")
ALERTS = Box(AlertDelivery, AlertDeliveryEvent, "alert")


@dataclass(frozen=True, slots=True)
class Attempt:
    """A claimed row, as the send needs it after composing."""

    delivery_id: int
    attempts: int
    created_at: datetime
    subscriber_id: int
    # The subscriber's permanent failures in a row so far (a success resets them).
    bounces: int


@dataclass(frozen=True, slots=True)
class Result:
    """What a send came to: its final status and why (a temporary failure under the cap raises instead)."""

    status: Status
    error: str | None


def claimable(box: Box, now: datetime) -> ColumnElement[bool]:
    """The rows a sender may claim at ``now``: pending, or claimed by a sender whose lease ran out."""
    table = box.table
    return or_(
        table.status == Status.PENDING,
        (table.status == Status.SENDING) & (table.claimed_at < now - SEND_LEASE),
    )


def retry_delay(attempt: int) -> timedelta:
    """How long to wait before the ``attempt``-th retry (1, 2, ...) of a temporary failure."""
    delay: timedelta = RETRY_BASE * 2 ** max(0, attempt - 1)
    return min(RETRY_MAX, delay)


def claim(
    session: Session, box: Box, delivery_id: int, now: datetime, *columns: InstrumentedAttribute[Any]
) -> Row[Any] | None:
    """Take a row (pending, or abandoned past its lease) and record the attempt; None if it is not free.

    The returned row holds ``attempts`` and ``created_at`` (for the cap) and ``columns``, by label.
    """
    table = box.table
    row = session.execute(
        update(table)
        .where(table.id == delivery_id, claimable(box, now))
        .values(status=Status.SENDING, claimed_at=now, attempts=table.attempts + 1)
        .returning(table.attempts, table.created_at, *columns)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is not None:
        record(session, box, delivery_id, now, Event.CLAIMED, f"attempt {row.attempts}")
    return row


def transmit(
    sessions: sessionmaker[Session],
    box: Box,
    attempt: Attempt,
    message: EmailMessage,
    *,
    mailer: Mailer,
    config: DeliveryConfig,
    now: datetime,
) -> Result:
    """Send a claimed row's message and record what came of it. Raises ``MailError`` (not permanent) when
    the row went back to pending for a retry; past the attempt cap it returns ``failed`` instead.

    A row claimed again (attempt 2 or later) whose message the journal says was accepted is marked ``sent``
    without sending; a journal that cannot be read raises ``JournalError`` before anything is sent."""
    journal = journal_for(config.journal) if config.journal is not None else None
    # A first attempt cannot have been accepted before: only a row claimed again pays for the look-up.
    if (
        journal is not None
        and attempt.attempts > 1
        and _sent_before(sessions, box, attempt, journal, config, now)
    ):
        return Result(Status.SENT, None)
    try:
        reply = mailer.send(message)
    except MailError as exc:
        if exc.permanent:
            return _bounce(sessions, box, attempt, now, str(exc), config.secret)
        given_up = give_up(attempt, config, now)
        if given_up is not None:
            with transaction(sessions) as session:
                finish(
                    session, box, attempt.delivery_id, Status.FAILED, now, f"{given_up}; last reply: {exc}"
                )
            return Result(Status.FAILED, f"{given_up}; last reply: {exc}")
        requeue_at = now + retry_delay(attempt.attempts) + REQUEUE_AFTER
        with transaction(sessions) as session:
            session.execute(
                update(box.table)
                .where(box.table.id == attempt.delivery_id)
                .values(status=Status.PENDING, error=str(exc), requeue_at=requeue_at)
                .execution_options(synchronize_session=False)
            )
            record(session, box, attempt.delivery_id, now, Event.RELEASED, str(exc))
        raise
    accepted = Acceptance(box.kind, attempt.delivery_id, str(message["Message-ID"]), now, reply or "accepted")
    if journal is not None:
        _remember(journal, accepted)
    _commit_sent(sessions, box, attempt, now, accepted.reply, config.sent_write_retry)
    if journal is not None:
        journal.forget(box.kind, attempt.delivery_id)
    return Result(Status.SENT, None)


def _sent_before(
    sessions: sessionmaker[Session],
    box: Box,
    attempt: Attempt,
    journal: Journal,
    config: DeliveryConfig,
    now: datetime,
) -> bool:
    """Whether an earlier attempt's message was accepted (the journal has it); if so it is marked sent now."""
    found = journal.find(box.kind, attempt.delivery_id)
    if found is None:
        return False
    done = found.acceptance
    detail = (
        f"{done.reply}, accepted at {done.accepted_at.isoformat()}; found in the journal {found.file.name}"
    )
    _commit_sent(sessions, box, attempt, now, detail, config.sent_write_retry)
    journal.forget(box.kind, attempt.delivery_id, found.file)
    return True


def _remember(journal: Journal, accepted: Acceptance) -> None:
    """Write the acceptance to the journal; failing that, the database write below is all there is."""
    try:
        journal.record(accepted)
    except JournalError as exc:
        logger.error("delivery %s was accepted but not journaled: %s", accepted.delivery_id, exc)


def _commit_sent(
    sessions: sessionmaker[Session],
    box: Box,
    attempt: Attempt,
    now: datetime,
    detail: str,
    retry_for: timedelta,
) -> None:
    """Mark the row ``sent``, retrying through a database restart or failover for ``retry_for``: the server
    has accepted the message, so this write is what is retried, never the send (issue 18)."""
    deadline = time.monotonic() + retry_for.total_seconds()
    pause = SENT_RETRY_FIRST
    while True:
        try:
            with transaction(sessions) as session:
                _mark_sent(session, box, attempt, now, detail)
            return
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + pause > deadline:
                raise
            logger.warning(
                "delivery %s accepted; marking it sent failed (%s), again in %.1f s",
                attempt.delivery_id,
                type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__,
                pause,
            )
            time.sleep(pause)
            pause = min(pause * 2, SENT_RETRY_MAX)


def _mark_sent(session: Session, box: Box, attempt: Attempt, now: datetime, detail: str) -> None:
    """``sending`` -> ``sent`` with the server's reply as the event; nothing if the row is sent already (a
    commit whose answer was lost with the connection, or another worker that found the journal)."""
    table = box.table
    marked = session.execute(
        update(table)
        .where(table.id == attempt.delivery_id, table.status == Status.SENDING)
        .values(status=Status.SENT, finished_at=now, error=None)
        .returning(table.id)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if marked is None:
        return
    record(session, box, attempt.delivery_id, now, Event.SENT, detail)
    if box is DIGESTS:
        metrics.delivered(Status.SENT)
    if attempt.bounces:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == attempt.subscriber_id)
            .values(bounces=0)
            .execution_options(synchronize_session=False)
        )


def give_up(attempt: Attempt, config: DeliveryConfig, now: datetime) -> str | None:
    """Why a temporary failure of ``attempt`` ends its delivery, or None while it may be retried."""
    if attempt.attempts >= config.max_attempts:
        return f"gave up after {attempt.attempts} attempts"
    if now - attempt.created_at >= config.give_up_after:
        return f"gave up after {_hours(now - attempt.created_at)} ({attempt.attempts} attempts)"
    return None


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:.0f} h"


def _bounce(
    sessions: sessionmaker[Session], box: Box, attempt: Attempt, now: datetime, error: str, secret: str
) -> Result:
    """A permanent refusal: the delivery failed (replayable), and a third in a row marks a bounce and puts
    the address on the suppression list (issue 14: a hard bounce gets no email of any kind)."""
    with transaction(sessions) as session:
        finish(session, box, attempt.delivery_id, Status.FAILED, now, error)
        count_bounce(session, attempt.subscriber_id, secret, "outbox", now)
    return Result(Status.FAILED, error)


def count_bounce(session: Session, subscriber_id: int, secret: str, source: str, now: datetime) -> None:
    """One more bounce in a row for a subscriber (a permanent refusal, or a soft bounce reported later,
    issue 19); the ``BOUNCE_LIMIT``-th makes them "bouncing" and suppresses the address."""
    person = session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id)
        .values(
            bounces=Subscriber.bounces + 1,
            state=case((Subscriber.bounces + 1 >= BOUNCE_LIMIT, "bouncing"), else_=Subscriber.state),
        )
        .returning(Subscriber.email, Subscriber.state)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if person is not None and person.state == "bouncing":
        suppression.suppress(session, secret, person.email, suppression.BOUNCE, source, now)


def finish(
    session: Session, box: Box, delivery_id: int, status: Status, now: datetime, error: str | None
) -> None:
    """Give a row its final status (sent, skipped or failed) and record it."""
    session.execute(
        update(box.table)
        .where(box.table.id == delivery_id)
        .values(status=status, finished_at=now, error=error)
        .execution_options(synchronize_session=False)
    )
    record(session, box, delivery_id, now, Event(status.value), error)
    if box is DIGESTS:
        metrics.delivered(status)


def record(
    session: Session, box: Box, delivery_id: int, now: datetime, event: Event, detail: str | None
) -> None:
    """One line of a row's history (``digest deliveries show``), in the same transaction."""
    session.execute(insert(box.events).values(delivery_id=delivery_id, at=now, event=event, detail=detail))


def requeue(session: Session, box: Box, now: datetime, *, exclude: list[int] | None = None) -> list[int]:
    """Rows whose task may be lost (pending past ``requeue_at``, or abandoned mid-send), marked as enqueued
    again now. A row waiting out a retry's back-off is not among them."""
    table = box.table
    query = select(table.id).where(
        or_(
            and_(table.status == Status.PENDING, or_(table.requeue_at.is_(None), table.requeue_at <= now)),
            and_(table.status == Status.SENDING, table.claimed_at < now - SEND_LEASE),
        )
    )
    if exclude:
        query = query.where(table.id.not_in(exclude))
    stale = list(session.scalars(query))
    if stale:
        session.execute(
            update(table)
            .where(table.id.in_(stale))
            .values(requeue_at=now + REQUEUE_AFTER)
            .execution_options(synchronize_session=False)
        )
    return stale
