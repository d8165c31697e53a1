"""One dispatch tick over a million due subscriptions on PostgreSQL: windows opened per second, memory.

Figures, all from one run in a fresh PostgreSQL database (created here and dropped at the end):
- setup: ``--subscriptions`` active subscribers and due subscriptions written with set-based INSERTs;
- baseline: a bare set-based INSERT ... SELECT of the same deliveries (one row per subscription, no
  windows computed, no locks, nothing moved on), rolled back: the floor for writing these rows;
- the tick: ``dispatch_due`` to the end, windows/s and its ratio to the baseline, the process's RSS before
  and its peak during the tick (memory flat: the batches are streamed);
- a second tick at the same time, which must open nothing (exactly once);
- enqueueing: ``--enqueue`` send tasks published to Redis on a queue of this run's own (deleted after),
  one task per delivery as ``dispatch_tick`` sends them (a producer from the pool each, as before issue
  18, then pipelined on one producer, as now), per second and extrapolated to the tick's deliveries.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text

from digest import db
from digest.config import load_settings
from digest.deliver import digests
from digest.deliver.cadence import Schedule, previous_slot
from digest.runtime import Runtime
from digest.tasks import PUBLISH_BATCH, create_celery

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 30, 9, 0, 30, tzinfo=UTC)
# Whole-hour offsets only, so that NOW is in the hour of a local slot everywhere.
ZONES = ("UTC", "Europe/London", "Europe/Berlin", "Europe/Helsinki", "America/New_York", "Asia/Tokyo")
CADENCES = ("hourly", "daily", "weekly")
PAGE = os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=1_000_000)
    parser.add_argument("--enqueue", type=int, default=20_000, help="send tasks published (0: none)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    name = f"bench_dispatch_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        figures = run(args, ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(json.dumps(figures))


def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp()) / "home"
    settings = load_settings(
        home=home,
        database_url=database_url,
        broker_url=args.redis_url,
        secret_key="bench-secret-key-0123456789abcdefghijk",
    )
    rt = Runtime(settings)
    db.upgrade(rt.engine)
    count = args.subscriptions
    started = time.perf_counter()
    populate(rt, count)
    print(f"setup       {time.perf_counter() - started:7.1f} s  ({count} due subscriptions)")

    bare_s = baseline(rt)
    print(f"baseline    {bare_s:7.1f} s  {count / bare_s:9.0f} rows/s  (bare INSERT ... SELECT, rolled back)")

    rss_before = _rss_mb()
    peak = rss_before
    opened = 0
    started = time.perf_counter()
    for batch in digests.dispatch_due(rt.sessions, NOW):
        opened += len(batch)
        peak = max(peak, _rss_mb())
    tick_s = time.perf_counter() - started
    rate = opened / tick_s
    print(
        f"tick        {tick_s:7.1f} s  {rate:9.0f} windows/s  ({opened} opened; "
        f"{tick_s / bare_s:.2f} x the baseline's time; target <= 60 s)"
    )
    print(f"memory      {rss_before:7.0f} MB before, {peak:.0f} MB at most during the tick")
    again = sum(len(batch) for batch in digests.dispatch_due(rt.sessions, NOW))
    print(f"second tick {again:7d} opened (must be 0)")
    each, batched = enqueue(settings, args.enqueue) if args.enqueue else (0.0, 0.0)
    if args.enqueue:
        print(
            f"enqueue     {each:7.0f} tasks/s to Redis, a pooled producer each ({opened / each:.0f} s for "
            f"this tick); {batched:.0f}/s pipelined on one producer ({opened / batched:.0f} s)"
        )
    rt.close()
    return {
        "subscriptions": count,
        "opened": opened,
        "second_tick_opened": again,
        "tick_s": round(tick_s, 2),
        "windows_per_s": round(rate),
        "baseline_insert_s": round(bare_s, 2),
        "ratio_to_baseline": round(tick_s / bare_s, 2),
        "rss_before_mb": round(rss_before),
        "rss_peak_tick_mb": round(peak),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "enqueue_each_per_s": round(each),
        "enqueue_batched_per_s": round(batched),
    }


def populate(rt: Runtime, count: int) -> None:
    """Subscribers and subscriptions, every one due at NOW, in two INSERT ... SELECTs."""
    groups = [_group(zone, cadence) for zone in ZONES for cadence in CADENCES]
    created = NOW - timedelta(days=60)
    with rt.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO subscribers (id, email, timezone, state, created_at, confirmed_at, bounces) "
                "SELECT i, 'reader' || i || '@readers.example', 'UTC', 'active', :created, :created, 0 "
                "FROM generate_series(1, :count) AS i"
            ),
            {"created": created, "count": count},
        )
        connection.execute(
            text(
                "INSERT INTO subscriptions (id, subscriber_id, cadence, hour, weekday, timezone, state, "
                "last_window_end, next_due_at, created_at) "
                "SELECT i, i, g.cadence, g.hour, g.weekday, g.zone, 'active', g.last_end, :now, :created "
                "FROM generate_series(1, :count) AS i JOIN unnest(CAST(:cadence AS text[]), "
                "CAST(:hour AS integer[]), CAST(:weekday AS integer[]), CAST(:zone AS text[]), "
                "CAST(:last_end AS timestamptz[])) WITH ORDINALITY AS g(cadence, hour, weekday, zone, "
                "last_end, n) ON g.n = 1 + i % :groups"
            ),
            {
                "now": NOW,
                "created": created,
                "count": count,
                "groups": len(groups),
                **{key: [group[key] for group in groups] for key in groups[0]},
            },
        )
        connection.execute(text("ANALYZE subscribers"))
        connection.execute(text("ANALYZE subscriptions"))


def _group(zone: str, cadence: str) -> dict[str, Any]:
    local = NOW.astimezone(ZoneInfo(zone))
    schedule = Schedule(cadence, local.hour, local.weekday(), zone)
    return {
        "cadence": cadence,
        "hour": local.hour,
        "weekday": local.weekday(),
        "zone": zone,
        "last_end": previous_slot(schedule, NOW.replace(minute=0, second=0)),
    }


def baseline(rt: Runtime) -> float:
    """Seconds to INSERT one delivery per subscription with a bare INSERT ... SELECT (rolled back)."""
    with rt.engine.connect() as connection:
        started = time.perf_counter()
        connection.execute(
            text(
                "INSERT INTO deliveries (subscription_id, window_start, window_end, status, attempts, more, "
                "more_by_skill, created_at, requeue_at) SELECT id, last_window_end, next_due_at, 'pending', "
                "0, 0, CAST('{}' AS json), :now, :now FROM subscriptions"
            ),
            {"now": NOW},
        )
        seconds = time.perf_counter() - started
        connection.rollback()
    return seconds


def enqueue(settings: Any, count: int) -> tuple[float, float]:
    """Send tasks published per second to a queue of this run's own (deleted after): each taking a
    producer from the pool (``dispatch_tick`` before issue 18), then all on one producer (a batch's, now)."""
    app = create_celery(settings)
    queue = f"bench-dispatch-{uuid.uuid4().hex[:8]}"
    try:
        started = time.perf_counter()
        for delivery_id in range(count):
            app.send_task("digest.send_delivery", args=(delivery_id,), queue=queue)
        each = count / (time.perf_counter() - started)
        started = time.perf_counter()
        with app.producer_or_acquire() as producer, producer.batch(max_size=PUBLISH_BATCH):
            for delivery_id in range(count):
                app.send_task("digest.send_delivery", args=(delivery_id,), queue=queue, producer=producer)
        return each, count / (time.perf_counter() - started)
    finally:
        # The queue and kombu's binding sets for it: nothing of this run is left in Redis.
        with app.connection_for_write() as connection:
            client = connection.default_channel.client
            client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        app.close()


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


if __name__ == "__main__":
    main()
