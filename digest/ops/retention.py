"""Retention (issue 19): items and digest deliveries are deleted once they are older than their settings.

    deliveries whose window ended before now - DIGEST_DELIVERY_RETENTION (finished ones only)
        -> in batches by primary key: events, manifest, the delivery (replays and notices by cascade),
           a tombstone row (``pruned_ranges``) per batch, one commit per batch
    items first stored before now - DIGEST_ITEM_RETENTION that no kept manifest carries
        -> in batches by primary key: their tags, the items; one commit per batch
    the horizon of pruned items is recorded, so the daily figure tables (which outlive the items they
        count) are never rebuilt from what is left of those days (``site.figures.daily``)

Each batch is a short transaction that locks only the rows it deletes, so sends, crawls and pages go on
while a prune runs; an interrupted prune is simply run again. Deliveries go first: an item is kept while a
manifest still carries it (a replay renders it), so with the defaults (180 and 400 days) every item is free
by the time it is due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Select, delete, exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.errors import PrunedError
from digest.models import (
    Delivery,
    DeliveryEvent,
    DeliveryItem,
    IdempotentRequest,
    Item,
    PrunedRange,
    Setting,
    Tag,
)
from digest.records import DeliveryStatus, iso

# Rows deleted per transaction: large enough that a year of items takes minutes, small enough that each
# transaction holds its locks for milliseconds.
BATCH = 1000
ITEMS_PRUNED_KEY = "items-pruned-before"
# A delivery still being sent (or waiting for a retry) is never deleted under its worker.
FINISHED = (DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED)
# How long an Idempotency-Key of the platform API answers its first result: the IETF draft
# (draft-ietf-httpapi-idempotency-key-header) leaves the expiry to the resource server; a day covers
# any client's retries, as Stripe's does, and is too short for the table to grow.
IDEMPOTENCY_KEPT = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Policy:
    """How long each kind of row is kept (``DIGEST_ITEM_RETENTION``, ``DIGEST_DELIVERY_RETENTION``)."""

    items: timedelta
    deliveries: timedelta


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune deleted (or, dry, would delete)."""

    items_before: datetime
    deliveries_before: datetime
    deliveries: int
    delivery_items: int
    delivery_events: int
    items: int
    tags: int
    idempotent_requests: int
    batches: int
    dry_run: bool

    def as_json(self) -> dict[str, Any]:
        """The shape ``digest prune --json`` prints."""
        return {
            "dry_run": self.dry_run,
            "items_before": iso(self.items_before),
            "deliveries_before": iso(self.deliveries_before),
            "deliveries": self.deliveries,
            "delivery_items": self.delivery_items,
            "delivery_events": self.delivery_events,
            "items": self.items,
            "tags": self.tags,
            "idempotent_requests": self.idempotent_requests,
            "batches": self.batches,
        }


# Called after each batch with the rows it deleted (a progress bar).
Progress = Callable[[int], None]


def cuts(policy: Policy, now: datetime) -> tuple[datetime, datetime]:
    """The items cut and the deliveries cut: a row exactly at its limit stays, one a second older goes."""
    return now - policy.items, now - policy.deliveries


def plan(session: Session, policy: Policy, now: datetime) -> PruneResult:
    """What ``prune`` would delete at ``now``, counted and not deleted (``--dry-run``)."""
    items_before, deliveries_before = cuts(policy, now)
    doomed = select(Delivery.id).where(_old_delivery(deliveries_before))
    items = select(Item.id).where(_old_item(items_before, doomed))
    return PruneResult(
        items_before,
        deliveries_before,
        _count(session, doomed),
        _count(session, select(DeliveryItem.position).where(DeliveryItem.delivery_id.in_(doomed))),
        _count(session, select(DeliveryEvent.id).where(DeliveryEvent.delivery_id.in_(doomed))),
        _count(session, items),
        _count(session, select(Tag.item_id).where(Tag.item_id.in_(items))),
        _count(session, select(IdempotentRequest.id).where(_old_request(now))),
        0,
        dry_run=True,
    )


def prune(
    sessions: sessionmaker[Session],
    policy: Policy,
    now: datetime,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> PruneResult:
    """Delete what is past retention at ``now``, ``batch`` rows a transaction; the counts deleted."""
    items_before, deliveries_before = cuts(policy, now)
    names = ("deliveries", "delivery_items", "delivery_events", "items", "tags", "idempotent_requests")
    counts = dict.fromkeys(names, 0)
    batches = _in_batches(
        sessions,
        lambda session, after: _prune_deliveries(session, deliveries_before, now, after, batch),
        counts,
        lambda deleted: progress(deleted["deliveries"]) if progress else None,
    )
    batches += _in_batches(
        sessions,
        lambda session, after: _prune_items(session, items_before, now, after, batch),
        counts,
        lambda deleted: progress(deleted["items"]) if progress else None,
    )
    batches += _in_batches(
        sessions,
        lambda session, after: _prune_requests(session, now, after, batch),
        counts,
        lambda deleted: progress(deleted["idempotent_requests"]) if progress else None,
    )
    return PruneResult(items_before, deliveries_before, batches=batches, dry_run=False, **counts)


# One batch from the key after ``after``: the last key deleted and the rows deleted per table, or None.
Step = Callable[[Session, int], tuple[int, dict[str, int]] | None]


def _in_batches(
    sessions: sessionmaker[Session],
    step: Step,
    counts: dict[str, int],
    each: Callable[[dict[str, int]], None],
) -> int:
    """Run ``step`` a transaction at a time, walking the keys upwards, until it finds nothing; the batches."""
    after, batches = 0, 0
    while True:
        with transaction(sessions) as session:
            done = step(session, after)
        if done is None:
            return batches
        after, deleted = done
        batches += 1
        for name, rows in deleted.items():
            counts[name] += rows
        each(deleted)


def _prune_deliveries(
    session: Session, before: datetime, now: datetime, after: int, batch: int
) -> tuple[int, dict[str, int]] | None:
    """One batch of deliveries past retention with ids above ``after``: the last id and the counts."""
    ids = list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.id > after, _old_delivery(before))
            .order_by(Delivery.id)
            .limit(batch)
        )
    )
    if not ids:
        return None
    deleted = {
        "delivery_events": _deleted(session, delete(DeliveryEvent).where(DeliveryEvent.delivery_id.in_(ids))),
        "delivery_items": _deleted(session, delete(DeliveryItem).where(DeliveryItem.delivery_id.in_(ids))),
        # Replays and skill notices of these deliveries go by their ON DELETE CASCADE.
        "deliveries": _deleted(session, delete(Delivery).where(Delivery.id.in_(ids))),
    }
    session.add(
        PrunedRange(first_id=ids[0], last_id=ids[-1], deliveries=len(ids), before=before, pruned_at=now)
    )
    return ids[-1], deleted


def _prune_items(
    session: Session, before: datetime, now: datetime, after: int, batch: int
) -> tuple[int, dict[str, int]] | None:
    """One batch of items past retention with ids above ``after``: the last id and the counts."""
    ids = list(
        session.scalars(
            select(Item.id).where(Item.id > after, _old_item(before)).order_by(Item.id).limit(batch)
        )
    )
    if not ids:
        _record_horizon(session, before, now)
        return None
    deleted = {
        "tags": _deleted(session, delete(Tag).where(Tag.item_id.in_(ids))),
        "items": _deleted(session, delete(Item).where(Item.id.in_(ids))),
    }
    # Recorded with the first batch, before anything of a day is gone, so a figures refresh running at the
    # same moment never rebuilds a day from half its items.
    _record_horizon(session, before, now)
    return ids[-1], deleted


def _prune_requests(
    session: Session, now: datetime, after: int, batch: int
) -> tuple[int, dict[str, int]] | None:
    """One batch of Idempotency-Key records past ``IDEMPOTENCY_KEPT``: a retry after that is a new request."""
    ids = list(
        session.scalars(
            select(IdempotentRequest.id)
            .where(IdempotentRequest.id > after, _old_request(now))
            .order_by(IdempotentRequest.id)
            .limit(batch)
        )
    )
    if not ids:
        return None
    return ids[-1], {
        "idempotent_requests": _deleted(
            session, delete(IdempotentRequest).where(IdempotentRequest.id.in_(ids))
        )
    }


def _old_request(now: datetime) -> ColumnElement[bool]:
    return IdempotentRequest.created_at < now - IDEMPOTENCY_KEPT


def _old_delivery(before: datetime) -> ColumnElement[bool]:
    return (Delivery.window_end < before) & Delivery.status.in_(FINISHED)


def _old_item(before: datetime, doomed: Select[Any] | None = None) -> ColumnElement[bool]:
    """Items stored before ``before`` that no kept manifest carries; a dry run passes the ``doomed``
    deliveries, whose manifests the prune deletes first."""
    carried = exists().where(DeliveryItem.item_id == Item.id)
    if doomed is not None:
        carried = carried.where(DeliveryItem.delivery_id.not_in(doomed))
    return (Item.ingested_at < before) & ~carried


def _record_horizon(session: Session, before: datetime, now: datetime) -> None:
    row = session.get(Setting, ITEMS_PRUNED_KEY)
    if row is None:
        session.add(Setting(key=ITEMS_PRUNED_KEY, value={"before": iso(before)}, updated_at=now))
    elif before > _parse(row.value["before"]):
        # A shorter retention later moves the horizon on; a longer one cannot bring items back.
        row.value, row.updated_at = {"before": iso(before)}, now


def items_pruned_before(session: Session) -> datetime | None:
    """Items first stored before this may have been pruned (None: none ever were). The daily figures of
    days before it are kept as they are and never rebuilt."""
    row = session.get(Setting, ITEMS_PRUNED_KEY)
    return _parse(row.value["before"]) if row is not None else None


def pruned(session: Session, delivery_id: int) -> PrunedError | None:
    """What a look-up of a missing delivery answers when retention deleted it: "pruned on DATE"; else None."""
    row = session.scalars(
        select(PrunedRange)
        .where(PrunedRange.first_id <= delivery_id, PrunedRange.last_id >= delivery_id)
        .order_by(PrunedRange.id)
    ).first()
    if row is None:
        return None
    return PrunedError(
        f"delivery {delivery_id}: pruned on {row.pruned_at:%Y-%m-%d} (its window ended before "
        f"{row.before:%Y-%m-%d}, past DIGEST_DELIVERY_RETENTION; nothing to replay)"
    )


def _count(session: Session, query: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _deleted(session: Session, statement: Any) -> int:
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], result).rowcount)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
