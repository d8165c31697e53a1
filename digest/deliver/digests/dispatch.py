"""Open the window of every due subscription: one pending delivery each, a batch at a time.

due subscriptions (rows locked, others skip them) -> cadence.window -> no later than the matcher's
progress (``store.tag_horizon``) -> one delivery row each (unique per subscription and window end)
-> subscriptions moved on -> the ids to enqueue; last, the deliveries whose task may be lost
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.deliver import outbox
from digest.deliver.cadence import Schedule, next_slot, previous_slot, window
from digest.errors import ConflictError, NotFoundError
from digest.ingest.store import tag_horizon
from digest.models import Delivery, Subscriber, Subscription
from digest.ops import sending
from digest.records import DeliveryStatus

DISPATCH_BATCH = 500
# A dispatch that has created this many deliveries, and at least as many as the table held, refreshes
# the table's statistics (``_analyze``).
ANALYZE_AFTER = 1000


def dispatch_due(
    sessions: sessionmaker[Session], now: datetime, *, batch: int = DISPATCH_BATCH
) -> Iterator[list[int]]:
    """Open the window of every subscription due at ``now``; yield the new deliveries a batch at a time.

    Batches are committed as they go, so sending can start while a large dispatch goes on and memory does
    not grow with the number of subscribers. Last come the deliveries whose task may be lost (pending
    past their re-enqueue time, or abandoned mid-send), to be enqueued again.

    While sending is paused (``digest sending pause``) it does nothing: due subscriptions stay due, and
    the first dispatch after resuming opens one window each, from where the last one ended.
    """
    with transaction(sessions) as session:
        if sending.paused(session):
            return
        horizon = tag_horizon(session, now)
        known = _estimated_deliveries(session)
    after = created = 0
    while True:
        with transaction(sessions) as session:
            rows = _due_batch(session, now, after, batch)
            if not rows:
                break
            after = rows[-1].id
            opened = _open_windows(session, rows, now, horizon)
            created += len(opened)
            if known is not None and created >= max(ANALYZE_AFTER, known):
                _analyze(session)
                known = None
        if opened:
            yield opened
    with transaction(sessions) as session:
        stale = outbox.requeue(session, outbox.DIGESTS, now)
    if stale:
        yield stale


def _estimated_deliveries(session: Session) -> float | None:
    """PostgreSQL's estimate of the deliveries table's rows (None elsewhere)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return float(session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'deliveries'")) or 0)


def _analyze(session: Session) -> None:
    """Refresh the planner's statistics of a deliveries table this dispatch has at least doubled.

    Plans that PostgreSQL caches per connection (the claim, foreign-key checks) were made for the table's
    old size; on a young installation (or with autovacuum off) a table planned as empty is scanned whole
    for every digest. ANALYZE replaces the statistics, which makes every cached plan be made again.
    """
    session.execute(text("ANALYZE deliveries"))


def _due_batch(session: Session, now: datetime, after: int, batch: int) -> Sequence[Row[Any]]:
    # Rows are locked until the batch commits; a second dispatcher skips them (PostgreSQL) or waits for
    # the write lock (SQLite), and either way finds them no longer due.
    return session.execute(
        select(
            Subscription.id,
            Subscription.cadence,
            Subscription.hour,
            Subscription.weekday,
            Subscription.timezone,
            Subscription.next_due_at,
            Subscription.last_window_end,
        )
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(
            Subscription.state == "active",
            Subscriber.state == "active",
            Subscription.next_due_at <= now,
            Subscription.id > after,
        )
        .order_by(Subscription.id)
        .limit(batch)
        .with_for_update(of=Subscription, skip_locked=True)
    ).all()


def _open_windows(session: Session, rows: Sequence[Row[Any]], now: datetime, horizon: datetime) -> list[int]:
    """Create the deliveries of a batch of due subscriptions and move their windows on."""
    deliveries: list[dict[str, Any]] = []
    moves: dict[int, dict[str, Any]] = {}
    for row in rows:
        schedule = Schedule(row.cadence, row.hour, row.weekday, row.timezone)
        start, end = window(schedule, row.last_window_end, row.next_due_at, now)
        if end > now:
            # A cadence change left the last window ending after this schedule's latest slot: no window
            # yet; the next one starts where the last ended.
            moves[row.id] = {"id": row.id, "next_due_at": end}
            continue
        if end > horizon:
            continue  # the matcher is still on items of this window: the next tick takes it
        deliveries.append(_delivery_row(row.id, start, end, now))
        moves[row.id] = {"id": row.id, "next_due_at": next_slot(schedule, end), "last_window_end": end}
    created: list[int] = []
    if deliveries:
        dialect_insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        inserted = session.execute(
            dialect_insert(Delivery)
            .on_conflict_do_nothing(index_elements=["subscription_id", "window_end"])
            .returning(Delivery.id, Delivery.subscription_id),
            deliveries,
        ).all()
        created = [row.id for row in inserted]
        opened = {row.subscription_id for row in inserted}
        # A conflict means another dispatcher opened this window already and moved the subscription on.
        moves = {sid: move for sid, move in moves.items() if sid in opened or "last_window_end" not in move}
    if moves:
        session.execute(update(Subscription), list(moves.values()))
    return sorted(created)


def open_now(session: Session, subscription_id: int, now: datetime) -> int:
    """Close a subscription's open window at ``now`` (no later than the matcher's progress) and open its
    delivery, to be sent at once (``POST /api/v1/subscriptions/{id}/run``, issue 19); its id.

    The window starts where the last one ended, as a dispatch's would, and the next dispatch starts where
    this one ends, at its usual slot: nothing is lost or sent twice. The subscription row is locked, so
    two runs at once open one window; the second finds nothing new to send (``ConflictError``).
    """
    if sending.paused(session):
        raise ConflictError("sending is paused (`digest sending resume`): nothing is sent now")
    subscription = session.scalars(
        select(Subscription).where(Subscription.id == subscription_id).with_for_update()
    ).first()
    if subscription is None:
        raise NotFoundError(f"no subscription with id {subscription_id}")
    person = session.scalar(select(Subscriber.state).where(Subscriber.id == subscription.subscriber_id))
    if subscription.state != "active" or person != "active":
        state = subscription.state if subscription.state != "active" else f"active, its subscriber {person}"
        raise ConflictError(f"subscription {subscription_id} is {state}: only an active one is sent")
    schedule = Schedule(subscription.cadence, subscription.hour, subscription.weekday, subscription.timezone)
    start = subscription.last_window_end or previous_slot(schedule, subscription.next_due_at)
    end = tag_horizon(session, now)
    if end <= start:
        raise ConflictError(f"nothing new since the last digest ({start:%Y-%m-%d %H:%M} UTC): try later")
    delivery = Delivery(**_delivery_row(subscription.id, start, end, now))
    session.add(delivery)
    subscription.last_window_end = end
    if subscription.next_due_at <= end:
        subscription.next_due_at = next_slot(schedule, end)
    session.flush()
    return delivery.id


def _delivery_row(subscription_id: int, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    """A new pending delivery of ``[start, end)``, to be enqueued again if its task is lost."""
    return {
        "subscription_id": subscription_id,
        "window_start": start,
        "window_end": end,
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "more": 0,
        "more_by_skill": {},
        "created_at": now,
        "requeue_at": now + outbox.REQUEUE_AFTER,
    }
