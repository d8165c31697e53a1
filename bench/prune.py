"""Retention's prune (``digest.ops.retention.prune``, issue 19) on PostgreSQL, beside a baseline from the same
run: how long the longest transaction holds its locks, and how long the whole prune takes.

Setup (timed): a fresh PostgreSQL database on 127.0.0.1:5432; ``--deliveries`` sent digests of one
subscription each (``--subscribers`` of them), half of them past ``DIGEST_DELIVERY_RETENTION``, each with
``--items`` manifest rows and three events.

Measured: the batched prune (1,000 deliveries a transaction), each batch timed from one commit to the next;
baseline: the same rows deleted as one transaction of three ``DELETE … WHERE`` statements on a second copy,
which holds every row's lock until it commits. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, insert, select, text

from digest import db
from digest.cli.bootstrap import upgrade_all
from digest.config import load_settings
from digest.models import Delivery, DeliveryEvent, DeliveryItem, Item, Skill, Source, Subscriber, Subscription
from digest.ops import retention
from digest.runtime import Runtime

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
POLICY = retention.Policy(timedelta(days=400), timedelta(days=180))


def main() -> None:
    """Populate two databases alike, prune one in batches and the other at once; print and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=40_000)
    parser.add_argument("--subscribers", type=int, default=400)
    parser.add_argument("--items", type=int, default=5, help="manifest rows per delivery")
    args = parser.parse_args()
    batched = in_database(lambda rt: prune_batched(rt), args)
    at_once = in_database(lambda rt: prune_at_once(rt), args)
    result = {
        "deliveries": args.deliveries,
        "pruned": batched["pruned"],
        "manifest_rows_per_delivery": args.items,
        "batched": batched,
        "one_transaction": at_once,
        "longest_lock_ratio": round(at_once["longest_transaction_ms"] / batched["longest_transaction_ms"], 1),
        "total_time_ratio": round(batched["total_ms"] / at_once["total_ms"], 2),
    }
    print(f"{'case':<28} {'total ms':>10} {'longest transaction ms':>24}")
    for label, case in (("baseline: one transaction", at_once), ("retention.prune, batched", batched)):
        print(f"{label:<28} {case['total_ms']:10.0f} {case['longest_transaction_ms']:24.1f}")
    print(
        f"the longest lock is held {result['longest_lock_ratio']}x shorter, "
        f"for {result['total_time_ratio']}x the total time"
    )
    print(json.dumps(result))


def in_database(measure: Any, args: argparse.Namespace) -> dict[str, Any]:
    name = f"digest_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        settings = load_settings(
            home=Path(tempfile.mkdtemp()) / "home",
            database_url=ADMIN_URL.rsplit("/", 1)[0] + "/" + name,
            secret_key="bench-secret-0123456789abcdefghijklmnop",
        )
        rt = Runtime(settings)
        started = time.perf_counter()
        upgrade_all(rt, NOW)
        populate(rt, args.deliveries, args.subscribers, args.items)
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
        print(f"setup {time.perf_counter() - started:.1f} s")
        figures: dict[str, Any] = measure(rt)
        rt.close()
        return figures
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prune_batched(rt: Runtime) -> dict[str, Any]:
    marks = [time.perf_counter()]
    result = retention.prune(
        rt.sessions, POLICY, NOW, progress=lambda _rows: marks.append(time.perf_counter())
    )
    spans = [(after - before) * 1000 for before, after in pairwise(marks)]
    return {
        "pruned": result.deliveries,
        "batches": result.batches,
        "total_ms": round((marks[-1] - marks[0]) * 1000, 1),
        "longest_transaction_ms": round(max(spans), 1),
    }


def prune_at_once(rt: Runtime) -> dict[str, Any]:
    cut = NOW - POLICY.deliveries
    doomed = select(Delivery.id).where(Delivery.window_end < cut)
    started = time.perf_counter()
    with db.transaction(rt.sessions) as session:
        session.execute(delete(DeliveryEvent).where(DeliveryEvent.delivery_id.in_(doomed)))
        session.execute(delete(DeliveryItem).where(DeliveryItem.delivery_id.in_(doomed)))
        session.execute(delete(Delivery).where(Delivery.window_end < cut))
    total = (time.perf_counter() - started) * 1000
    return {"total_ms": round(total, 1), "longest_transaction_ms": round(total, 1)}


def populate(rt: Runtime, deliveries: int, subscribers: int, items: int) -> None:
    """Sent deliveries spread over the last 360 days (half past retention), with manifests and events."""
    start = NOW - timedelta(days=360)
    with db.transaction(rt.sessions) as session:
        skill_id = session.scalars(select(Skill.id).order_by(Skill.id).limit(1)).one()
        source = Source(
            url="https://news.example/feed", name="News", kind="news", next_fetch_at=NOW, created_at=start
        )
        session.add(source)
        session.flush()
        item_rows = [
            {
                "source_id": source.id,
                "entry_key": f"entry-{n}",
                "story_key": f"story-{n}",
                "title": f"Item {n}",
                "published_at": NOW - timedelta(days=10),
                "ingested_at": NOW - timedelta(days=10),
                "updated_at": NOW,
                "content_hash": f"{n:064x}",
            }
            for n in range(items)
        ]
        session.execute(insert(Item), item_rows)
        item_ids = list(session.scalars(select(Item.id).order_by(Item.id)))
        session.execute(
            insert(Subscriber),
            [
                {"email": f"r{n}@example.com", "timezone": "UTC", "state": "active", "created_at": start}
                for n in range(subscribers)
            ],
        )
        people = list(session.scalars(select(Subscriber.id).order_by(Subscriber.id)))
        session.execute(
            insert(Subscription),
            [
                {
                    "subscriber_id": person,
                    "cadence": "daily",
                    "timezone": "UTC",
                    "state": "active",
                    "next_due_at": NOW,
                    "created_at": start,
                }
                for person in people
            ],
        )
        subscriptions = list(session.scalars(select(Subscription.id).order_by(Subscription.id)))
    per = deliveries // len(subscriptions)
    step = timedelta(days=360) / per
    for subscription in subscriptions:
        with db.transaction(rt.sessions) as session:
            ends = [start + step * (n + 1) for n in range(per)]
            ids = list(
                session.scalars(
                    insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True),
                    [
                        {
                            "subscription_id": subscription,
                            "window_start": end - step,
                            "window_end": end,
                            "status": "sent",
                            "created_at": end,
                            "finished_at": end,
                        }
                        for end in ends
                    ],
                )
            )
            session.execute(
                insert(DeliveryItem),
                [
                    {"delivery_id": delivery, "position": n, "item_id": item, "skill_id": skill_id}
                    for delivery in ids
                    for n, item in enumerate(item_ids)
                ],
            )
            session.execute(
                insert(DeliveryEvent),
                [
                    {"delivery_id": delivery, "at": end, "event": event, "detail": None}
                    for delivery, end in zip(ids, ends, strict=True)
                    for event in ("claimed", "sent", "bounced")
                ],
            )


if __name__ == "__main__":
    main()
