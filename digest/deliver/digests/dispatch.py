"""Open the window of every due subscription: one pending delivery each, a batch at a time.

due subscriptions (rows locked, others skip them) -> cadence.window -> no later than the matcher's
progress (``store.tag_horizon``) -> one delivery row each (unique per subscription and window end)
-> subscriptions moved on -> the ids to enqueue; last, the deliveries whose task may be lost

On PostgreSQL a batch is two statements whatever its size (issue 18, a million windows in a tick): the
distinct schedules of the batch's subscriptions, whose windows Python computes (``cadence.window``; a
batch of 20,000 has a few dozen), then one INSERT ... SELECT that joins the locked subscriptions to those
windows and moves the subscriptions on in the same statement. SQLite gets a row per subscription.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects import sqlite
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
# PostgreSQL's batches are set-based, so larger: a batch costs a few statements, not a row each.
SET_BATCH = 20_000
# A dispatch that has created this many deliveries, and at least as many as the table held, refreshes
# the table's statistics (``_analyze``).
ANALYZE_AFTER = 1000


def dispatch_due(
    sessions: sessionmaker[Session], now: datetime, *, batch: int | None = None
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
        set_based = session.get_bind().dialect.name == "postgresql"
    size = batch or (SET_BATCH if set_based else DISPATCH_BATCH)
    after: int | None = 0
    created = 0
    while after is not None:
        with transaction(sessions) as session:
            if set_based:
                after, opened = set_based_batch(session, now, after, size, horizon)
            else:
                rows = _due_batch(session, now, after, size)
                after = rows[-1].id if rows else None
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


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a dispatch does for a subscription: open ``[start, end)`` and move on to ``next_due``, or only
    move on (``opens`` false)."""

    start: datetime
    end: datetime
    next_due: datetime
    opens: bool


def _plan(
    schedule: Schedule, last_end: datetime | None, next_due: datetime, now: datetime, horizon: datetime
) -> _Plan | None:
    """The plan for one schedule and position; None to leave the subscription due for the next tick."""
    start, end = window(schedule, last_end, next_due, now)
    if end > now:
        # A cadence change left the last window ending after this schedule's latest slot: no window
        # yet; the next one starts where the last ended.
        return _Plan(start, end, end, opens=False)
    if end > horizon:
        return None  # the matcher is still on items of this window: the next tick takes it
    return _Plan(start, end, next_slot(schedule, end), opens=True)


_DUE = "FROM subscriptions s WHERE s.state = 'active' AND s.next_due_at <= :now AND s.id > :after"
# The batch's bounds and schedules are read without the subscriber's state: a subscription of a subscriber
# who is not active is only counted in a batch, never opened (``_OPEN``).
_LAST_OF_BATCH = text(f"SELECT s.id {_DUE} ORDER BY s.id OFFSET :skip LIMIT 1")
_SCHEDULES = text(
    "SELECT DISTINCT s.cadence, s.hour, s.weekday, s.timezone, s.last_window_end, s.next_due_at "
    f"{_DUE} AND s.id <= :upto"
)
# Rows locked as the SQLite path's are (a second dispatcher skips them and finds them no longer due); the
# window of each comes from its schedule's plan; a subscription moves on only with the delivery this
# statement inserted, or with none when its plan opens none (exactly once: a conflict means another
# dispatcher opened the window and moved it on already).
_OPEN = text(
    f"""
    WITH due AS (
        SELECT s.id, s.cadence, s.hour, s.weekday, s.timezone, s.last_window_end, s.next_due_at
        {_DUE} AND s.id <= :upto
            -- OFFSET 0 keeps this a probe of the subscriber's primary key per row: as a join, PostgreSQL
            -- hashes the whole subscribers table for every batch.
            AND EXISTS (
                SELECT 1 FROM subscribers b WHERE b.id = s.subscriber_id AND b.state = 'active' OFFSET 0
            )
        FOR UPDATE OF s SKIP LOCKED
    ), plan AS (
        SELECT due.id, p.window_start, p.window_end, p.next_due, p.opens
        FROM due JOIN unnest(
            CAST(:cadence AS text[]), CAST(:hour AS integer[]), CAST(:weekday AS integer[]),
            CAST(:timezone AS text[]), CAST(:last_end AS timestamptz[]), CAST(:due_at AS timestamptz[]),
            CAST(:window_start AS timestamptz[]), CAST(:window_end AS timestamptz[]),
            CAST(:next_due AS timestamptz[]), CAST(:opens AS boolean[])
        ) AS p(cadence, hour, weekday, timezone, last_end, due_at, window_start, window_end, next_due, opens)
        ON p.cadence = due.cadence AND p.hour = due.hour AND p.weekday = due.weekday
            AND p.timezone = due.timezone AND p.due_at = due.next_due_at
            -- Equality, not IS NOT DISTINCT FROM, so that the join can be hashed.
            AND COALESCE(p.last_end, '-infinity') = COALESCE(due.last_window_end, '-infinity')
    ), opened AS (
        INSERT INTO deliveries (subscription_id, window_start, window_end, status, attempts, more,
                                more_by_skill, created_at, requeue_at)
        SELECT id, window_start, window_end, :pending, 0, 0, CAST('{{}}' AS json), :now, :requeue_at
        FROM plan WHERE opens
        ON CONFLICT (subscription_id, window_end) DO NOTHING
        RETURNING id, subscription_id
    ), moved AS (
        UPDATE subscriptions s
        SET next_due_at = plan.next_due,
            last_window_end = CASE WHEN plan.opens THEN plan.window_end ELSE s.last_window_end END
        FROM plan
        WHERE s.id = plan.id AND (NOT plan.opens OR s.id IN (SELECT subscription_id FROM opened))
    )
    SELECT id FROM opened ORDER BY id
    """  # noqa: S608 - composed of constants only; every value is a bound parameter
)
# Past every id: the last batch runs to the end of the table.
_NO_LIMIT = 2**63 - 1


def set_based_batch(
    session: Session, now: datetime, after: int, batch: int, horizon: datetime
) -> tuple[int | None, list[int]]:
    """Open the windows of the next ``batch`` due subscriptions after id ``after`` (PostgreSQL); returns
    where the next batch starts (None: this was the last) and the deliveries created."""
    due = {"now": now, "after": after}
    last = session.scalar(_LAST_OF_BATCH, {**due, "skip": batch - 1})
    upto = _NO_LIMIT if last is None else last
    columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "cadence", "hour", "weekday", "timezone", "last_end", "due_at",
            "window_start", "window_end", "next_due", "opens",
        )
    }  # fmt: skip
    for row in session.execute(_SCHEDULES, {**due, "upto": upto}):
        schedule = Schedule(row.cadence, row.hour, row.weekday, row.timezone)
        plan = _plan(schedule, row.last_window_end, row.next_due_at, now, horizon)
        if plan is None:
            continue
        for name, value in zip(
            columns,
            (*row, plan.start, plan.end, plan.next_due, plan.opens),
            strict=True,
        ):
            columns[name].append(value)
    created: list[int] = []
    if columns["cadence"]:
        created = list(
            session.scalars(
                _OPEN,
                {
                    **due,
                    "upto": upto,
                    **columns,
                    "pending": DeliveryStatus.PENDING.value,
                    "requeue_at": now + outbox.REQUEUE_AFTER,
                },
            )
        )
    return last, created


def _open_windows(session: Session, rows: Sequence[Row[Any]], now: datetime, horizon: datetime) -> list[int]:
    """Create the deliveries of a batch of due subscriptions and move their windows on (SQLite)."""
    deliveries: list[dict[str, Any]] = []
    moves: dict[int, dict[str, Any]] = {}
    for row in rows:
        schedule = Schedule(row.cadence, row.hour, row.weekday, row.timezone)
        plan = _plan(schedule, row.last_window_end, row.next_due_at, now, horizon)
        if plan is None:
            continue
        if not plan.opens:
            moves[row.id] = {"id": row.id, "next_due_at": plan.next_due}
            continue
        deliveries.append(_delivery_row(row.id, plan.start, plan.end, now))
        moves[row.id] = {"id": row.id, "next_due_at": plan.next_due, "last_window_end": plan.end}
    created: list[int] = []
    if deliveries:
        inserted = session.execute(
            sqlite.insert(Delivery)
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
