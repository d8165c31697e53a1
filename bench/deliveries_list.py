"""A page of deliveries (``digest.deliver.history.page``, issue 13) at 100,000 deliveries on PostgreSQL,
beside baselines from the same run.

Setup (timed): a fresh PostgreSQL database on 127.0.0.1:5432 with the bundled taxonomy; ``--subscribers``
daily subscriptions, each with ``--deliveries`` sent digests carrying ``--items`` items from one source.

Measured, ``--runs`` times each, p50: the newest page and the oldest page (``before`` the 51st oldest id)
of 50, read through ``history.page``; baselines: ``SELECT 1`` in a transaction (the round trip), the
admin's former OFFSET query for the same oldest page (it read and skipped every newer row), and the former
``deliveries list`` for the newest 50 only (two statements per delivery; it had no LIMIT, so it read every
delivery ever made). Statements per page are counted too. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, select, text
from sqlalchemy.orm import Session

from digest import db
from digest.cli.bootstrap import upgrade_all
from digest.config import load_settings
from digest.deliver import history
from digest.models import (
    Delivery,
    DeliveryItem,
    Item,
    Skill,
    Source,
    Subscriber,
    Subscription,
)
from digest.runtime import Runtime

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
PAGE = 50


def main() -> None:
    """Create the database, populate it, measure, drop it; print the figures and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000)
    parser.add_argument("--deliveries", type=int, default=100, help="per subscriber")
    parser.add_argument("--items", type=int, default=5, help="per delivery")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    name = f"digest_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        result = run(args, ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(json.dumps(result))


def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    settings = load_settings(
        home=Path(tempfile.mkdtemp()) / "home", database_url=database_url, secret_key="bench"
    )
    rt = Runtime(settings)
    started = time.perf_counter()
    upgrade_all(rt, NOW)
    total = populate(rt, args.subscribers, args.deliveries, args.items)
    with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    setup_s = time.perf_counter() - started
    with db.transaction(rt.sessions) as session:
        oldest = list(session.scalars(select(Delivery.id).order_by(Delivery.id).limit(PAGE + 1)))
    deep = history.DeliveryQuery(before=oldest[-1], limit=PAGE)
    cases: dict[str, Callable[[Session], object]] = {
        "baseline: SELECT 1": lambda session: session.execute(text("SELECT 1")).all(),
        "history.page, newest 50": lambda session: history.page(session, history.DeliveryQuery(limit=PAGE)),
        "history.page, oldest 50": lambda session: history.page(session, deep),
        "before: admin OFFSET, oldest 50": lambda session: offset_page(session, total - PAGE),
        "before: list N+1, newest 50 only": lambda session: per_delivery(session, PAGE),
    }
    print(f"setup {setup_s:.1f} s: {total:,} deliveries, {total * args.items:,} manifest rows")
    print(f"{'case':<34} {'p50 ms':>8} {'statements':>11}")
    table: dict[str, dict[str, float | int]] = {}
    for label, case in cases.items():
        samples, statements = measure(rt, case, args.runs)
        table[label] = {"p50_ms": round(statistics.median(samples), 2), "statements": statements}
        print(f"{label:<34} {table[label]['p50_ms']:8.2f} {statements:11}")
    rt.close()
    return {"deliveries": total, "items_per_delivery": args.items, "runs": args.runs, "cases": table}


def measure(rt: Runtime, case: Callable[[Session], object], runs: int) -> tuple[list[float], int]:
    """Milliseconds of each run (one transaction each) after a warm-up, and the statements of one run."""
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    with db.transaction(rt.sessions) as session:
        case(session)
    samples = []
    for number in range(runs):
        if number == 0:
            event.listen(rt.engine, "before_cursor_execute", seen)
        started = time.perf_counter()
        with db.transaction(rt.sessions) as session:
            case(session)
        samples.append((time.perf_counter() - started) * 1000)
        if number == 0:
            event.remove(rt.engine, "before_cursor_execute", seen)
    return samples, len(statements)


def offset_page(session: Session, skipped: int) -> object:
    """The admin's deliveries query before issue 13, at the page that skips ``skipped`` rows."""
    return session.execute(
        select(Delivery.id, Delivery.status, Delivery.window_end, Subscriber.email, Subscription.cadence)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .order_by(Delivery.id.desc())
        .offset(skipped)
        .limit(PAGE + 1)
    ).all()


def per_delivery(session: Session, limit: int) -> object:
    """``deliveries list`` before issue 13, stopped after ``limit`` deliveries: two statements for each."""
    rows = session.execute(select(Delivery.id).order_by(Delivery.id.desc()).limit(limit)).scalars().all()
    for delivery_id in rows:
        session.scalars(select(DeliveryItem.item_id).where(DeliveryItem.delivery_id == delivery_id)).all()
        session.scalars(
            select(Skill.name)
            .join(DeliveryItem, DeliveryItem.skill_id == Skill.id)
            .where(DeliveryItem.delivery_id == delivery_id)
            .distinct()
        ).all()
    return rows


def populate(rt: Runtime, subscribers: int, deliveries: int, items: int) -> int:
    """Subscribers, their sent deliveries and manifests; the number of deliveries."""
    start = NOW - timedelta(days=deliveries)
    with db.transaction(rt.sessions) as session:
        skill_id = session.scalars(select(Skill.id).order_by(Skill.id).limit(1)).one()
        source = Source(
            url="https://news.example/feed", name="News", kind="news", next_fetch_at=NOW, created_at=start
        )
        session.add(source)
        session.flush()
        session.execute(
            insert(Item),
            [
                {
                    "source_id": source.id,
                    "entry_key": f"entry-{n}",
                    "story_key": f"story-{n}",
                    "url": f"https://news.example/{n}",
                    "title": f"Item {n}",
                    "published_at": start,
                    "ingested_at": start,
                    "updated_at": start,
                    "content_hash": f"{n:064x}",
                }
                for n in range(items)
            ],
        )
        item_ids = list(session.scalars(select(Item.id).order_by(Item.id)))
        session.execute(
            insert(Subscriber),
            [
                {"email": f"reader{n}@example.com", "timezone": "UTC", "state": "active", "created_at": start}
                for n in range(subscribers)
            ],
        )
        people = session.scalars(select(Subscriber.id).order_by(Subscriber.id)).all()
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
    # Day by day, so ids grow with time as they do in production.
    for day in range(deliveries):
        end = start + timedelta(days=day + 1)
        with db.transaction(rt.sessions) as session:
            session.execute(
                insert(Delivery),
                [
                    {
                        "subscription_id": subscription_id,
                        "window_start": end - timedelta(days=1),
                        "window_end": end,
                        "status": "sent",
                        "attempts": 1,
                        "finished_at": end,
                        "created_at": end,
                    }
                    for subscription_id in subscriptions
                ],
            )
            ids = session.scalars(select(Delivery.id).where(Delivery.window_end == end)).all()
            session.execute(
                insert(DeliveryItem),
                [
                    {"delivery_id": did, "position": n, "item_id": item, "skill_id": skill_id, "matched": []}
                    for did in ids
                    for n, item in enumerate(item_ids)
                ],
            )
    return subscribers * deliveries


if __name__ == "__main__":
    main()
