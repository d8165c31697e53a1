"""Digests/s through Celery on Redis with PostgreSQL to an SMTP sink, beside a bare render-and-send loop.

Setup (not timed): a fresh PostgreSQL database with the bundled taxonomy; 60 sources (news, blogs,
papers); ``--items`` synthetic items ingested in the last hour, each tagged with 1-3 of 50 skills;
``--subscribers`` subscribers with 1-5 of those skills, hourly, daily or weekly in eight time zones, all
due at one ``now``. Every text is generated here (no feed's text).

Run: one ``dispatch_tick`` is sent to a real Celery worker (prefork, two children per core) on Redis; it
opens every window and enqueues one task per digest; the worker selects, renders and sends each to an
aiosmtpd sink on loopback, which runs in its own process and counts messages and distinct Message-IDs.
Timed from the tick to the last message.

Baseline, same run: the same template rendered and the same kind of messages sent over one reused SMTP
connection in a bare loop (no database, no Celery), for ``--baseline`` digests whose contents were
selected beforehand. Target: the Celery path at >= 60 % of the baseline's rate.

Also: peak memory of the worker (parent and children) and of the dispatch, and database commits per
digest (from ``pg_stat_database``; ``tests/deliver/test_digests.py`` checks that the SQL statements per
digest do not grow with its items). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import re
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, insert, select, text

from digest import db
from digest.cli.bootstrap import upgrade_all
from digest.config import Settings, load_settings
from digest.deliver.cadence import Schedule, previous_slot
from digest.deliver.compose import build_message, message_id
from digest.deliver.mail import SmtpMailer
from digest.deliver.selection import choose, read_candidates
from digest.ingest.taxonomy import loaded_version
from digest.models import (
    Delivery,
    Item,
    Skill,
    Source,
    Subscriber,
    Subscription,
    SubscriptionSkill,
    Tag,
)
from digest.ops import processes
from digest.records import DigestContent
from digest.runtime import Runtime
from digest.tasks import create_celery

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/12"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
# Whole-hour offsets only, so that NOW is the top of a local hour everywhere.
ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Helsinki",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Brisbane",
)
CADENCES = ("hourly", "daily", "daily", "daily", "weekly")
WANTED_SKILLS = (
    "Python", "Kubernetes", "Machine learning", "Deep learning", "Large language model", "Rust", "Go",
    "PostgreSQL", "Docker", "React", "TypeScript", "JavaScript", "Java", "MLOps", "PyTorch", "TensorFlow",
    "Amazon Web Services", "Microsoft Azure", "Google Cloud Platform", "Terraform", "Kafka", "Redis",
    "Distributed computing", "Generative artificial intelligence", "Data engineering", "C++", "Linux",
)  # fmt: skip
WORDS = (
    "scaling", "notes", "lessons", "release", "benchmark", "guide", "migration", "security", "patterns",
    "production", "observability", "latency", "costs", "open", "model", "cluster", "pipeline", "review",
)  # fmt: skip
KINDS = ("news", "blog", "paper")


def main() -> None:
    """Set up, run the baseline and the Celery path, print the figures and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--baseline", type=int, default=2_000, help="digests in the bare loop")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="worker children (0: two per core)",
    )
    args = parser.parse_args()
    rng = random.Random(6)
    name = f"digest_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    context = multiprocessing.get_context("spawn")
    counted: Synchronized[int] = context.Value("q", 0)
    unique: Synchronized[int] = context.Value("q", 0)
    ready = context.Event()
    port = _free_port()
    sink = context.Process(target=serve_sink, args=(port, counted, unique, ready), daemon=True)
    sink.start()
    ready.wait(20)
    try:
        figures = run(args, rng, ADMIN_URL.rsplit("/", 1)[0] + "/" + name, port, counted, unique)
    finally:
        sink.terminate()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(json.dumps(figures))


def run(
    args: argparse.Namespace,
    rng: random.Random,
    database_url: str,
    port: int,
    counted: Synchronized[int],
    unique: Synchronized[int],
) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp()) / "home"
    settings = load_settings(
        home=home,
        database_url=database_url,
        broker_url=REDIS_URL,
        mail_url=f"smtp://127.0.0.1:{port}",
        secret_key="bench-secret-key-0123456789abcdefghijk",
        base_url="https://skills.example",
        from_address="digest@skills.example",
    )
    _flush_redis()
    rt = Runtime(settings)
    started = time.perf_counter()
    upgrade_all(rt, NOW)
    skill_ids = populate(rt, args.subscribers, args.items, rng)
    setup_seconds = time.perf_counter() - started
    print(f"setup        {setup_seconds:6.1f} s   ({args.subscribers} subscribers, {args.items} items)")

    bare_rate = baseline(rt, skill_ids, args.baseline, port, rng)
    print(f"baseline     {bare_rate:6.1f} digests/s (render + MIME + SMTP, one connection, no DB)")
    counted.value, unique.value = 0, 0

    expected = args.subscribers
    commits_before = _commits(rt)
    # A digest waits on PostgreSQL commits and SMTP a quarter of its time: two children per core keep
    # the cores busy (measured: 59/s with one per core, 69/s with two, on 10,000 subscribers).
    concurrency = args.concurrency or 2 * multiprocessing.cpu_count()
    worker = processes.start(
        processes.worker_command(("digest", "mail"), pool="prefork", concurrency=concurrency),
        settings,
        quiet=True,
    )
    try:
        _wait_for_worker(settings)
        started = time.perf_counter()
        create_celery(settings).send_task("digest.dispatch_tick", args=[NOW.isoformat()], queue="digest")
        peak_kb = _wait_for(counted, expected, worker.pid)
        seconds = time.perf_counter() - started
    finally:
        processes.stop([worker])
    commits = _commits(rt) - commits_before
    statuses = _statuses(rt)
    rate = counted.value / seconds
    figures = {
        "subscribers": args.subscribers,
        "items": args.items,
        "skills": len(skill_ids),
        "worker_children": concurrency,
        "messages": counted.value,
        "distinct_message_ids": unique.value,
        "statuses": statuses,
        "seconds": round(seconds, 1),
        "digests_per_s": round(rate, 1),
        "baseline_digests_per_s": round(bare_rate, 1),
        "ratio_to_baseline": round(rate / bare_rate, 3),
        "worker_peak_rss_mb": round(peak_kb / 1024, 1),
        "commits_per_digest": round(commits / max(1, counted.value), 2),
        "setup_s": round(setup_seconds, 1),
    }
    print(f"celery path  {rate:6.1f} digests/s ({counted.value} messages in {seconds:.1f} s)")
    print(f"vs baseline  {rate / bare_rate:6.1%}       (target >= 60 %)")
    print(f"distinct     {unique.value} Message-IDs for {counted.value} messages; statuses {statuses}")
    print(f"memory       {peak_kb / 1024:6.1f} MB    worker peak RSS, parent + children")
    print(f"commits      {figures['commits_per_digest']:6.2f}       per digest (pg_stat_database)")
    rt.close()
    return figures


# --- data ------------------------------------------------------------------------------------------


def populate(rt: Runtime, subscribers: int, items: int, rng: random.Random) -> list[str]:
    """Sources, tagged items and due subscribers, inserted in bulk; the skill ids used."""
    with db.transaction(rt.sessions) as session:
        version = loaded_version(session) or "bench"
        by_name: dict[str, str] = dict(
            session.execute(select(Skill.name, Skill.id).where(Skill.merged_into.is_(None))).tuples().all()
        )
        chosen = [by_name[name] for name in WANTED_SKILLS if name in by_name]
        others = sorted(set(by_name.values()) - set(chosen))
        chosen += rng.sample(others, 50 - len(chosen))
        names = {skill_id: name for name, skill_id in by_name.items()}
        session.execute(
            insert(Source),
            [
                {
                    "id": number + 1,
                    "url": f"https://{KINDS[number % 3]}{number}.example/feed",
                    "name": f"{KINDS[number % 3].capitalize()} source {number}",
                    "kind": KINDS[number % 3],
                    "next_fetch_at": NOW + timedelta(days=1),
                    "created_at": NOW - timedelta(days=30),
                }
                for number in range(60)
            ],
        )
        item_rows, tag_rows = _items(items, chosen, names, version, rng)
        for chunk in _chunks(item_rows, 5_000):
            session.execute(insert(Item), chunk)
        for chunk in _chunks(tag_rows, 10_000):
            session.execute(insert(Tag), chunk)
    for start in range(0, subscribers, 10_000):
        with db.transaction(rt.sessions) as session:
            _subscribers(session, range(start + 1, min(subscribers, start + 10_000) + 1), chosen, rng)
    with db.transaction(rt.sessions) as session:
        for table in ("sources", "items", "subscribers", "subscriptions"):
            session.execute(text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))"))
        session.execute(text("ANALYZE"))
    return chosen


def _items(
    count: int, skills: list[str], names: dict[str, str], version: str, rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    items, tags = [], []
    for number in range(1, count + 1):
        ingested = NOW - timedelta(seconds=rng.randint(60, 3_300))
        tagged = rng.sample(skills, rng.choice((1, 1, 2, 3)))
        title = f"{names[tagged[0]]} {' '.join(rng.sample(WORDS, 4))}"
        # One story in twenty is also published by a second feed.
        story = f"story-{number - 1 if number % 20 == 0 else number}"
        items.append(
            {
                "id": number,
                "source_id": rng.randint(1, 60),
                "entry_key": f"entry-{number}",
                "story_key": story,
                "url": f"https://site{number % 97}.example/posts/{number}",
                "title": title,
                "summary": " ".join(rng.choice(WORDS) for _ in range(45)),
                "summary_html": "",
                "authors": [],
                "published_at": ingested - timedelta(minutes=rng.randint(0, 600)),
                "ingested_at": ingested,
                "updated_at": ingested,
                "content_hash": f"{number:064x}",
                "tagged_version": version,
            }
        )
        for position, skill_id in enumerate(tagged):
            in_title = position == 0
            mentions = rng.randint(1, 4)
            tags.append(
                {
                    "item_id": number,
                    "skill_id": skill_id,
                    "ingested_at": ingested,
                    "matched": [names[skill_id]],
                    "count": mentions,
                    "in_title": in_title,
                    "score": min(1.0, (mentions + (2 if in_title else 0)) / 8),
                }
            )
    return items, tags


def _subscribers(session: Any, numbers: range, skills: list[str], rng: random.Random) -> None:
    people, subscriptions, follows = [], [], []
    for number in numbers:
        zone = rng.choice(ZONES)
        local = NOW.astimezone(ZoneInfo(zone))
        cadence = rng.choice(CADENCES)
        schedule = Schedule(cadence, local.hour, local.weekday(), zone)
        people.append(
            {
                "id": number,
                "email": f"reader{number}@readers.example",
                "timezone": zone,
                "state": "active",
                "created_at": NOW - timedelta(days=60),
                "confirmed_at": NOW - timedelta(days=60),
                "bounces": 0,
            }
        )
        subscriptions.append(
            {
                "id": number,
                "subscriber_id": number,
                "cadence": cadence,
                "hour": local.hour,
                "weekday": local.weekday(),
                "timezone": zone,
                "state": "active",
                "last_window_end": previous_slot(schedule, NOW),
                "next_due_at": NOW,
                "created_at": NOW - timedelta(days=60),
            }
        )
        follows += [
            {"subscription_id": number, "skill_id": skill_id}
            for skill_id in rng.sample(skills, rng.randint(1, 5))
        ]
    session.execute(insert(Subscriber), people)
    session.execute(insert(Subscription), subscriptions)
    session.execute(insert(SubscriptionSkill), follows)


def _chunks(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


# --- baseline --------------------------------------------------------------------------------------


def baseline(rt: Runtime, skills: list[str], count: int, port: int, rng: random.Random) -> float:
    """Digests/s of render + MIME + SMTP over one connection, contents selected beforehand."""
    config = rt.delivery
    windows = {
        cadence: (previous_slot(Schedule(cadence, 9, NOW.weekday(), "UTC"), NOW), NOW)
        for cadence in ("hourly", "daily", "weekly")
    }
    with db.transaction(rt.sessions) as session:
        candidates = {
            cadence: read_candidates(session, skills, start, end) for cadence, (start, end) in windows.items()
        }
    contents = []
    for number in range(count):
        cadence = rng.choice(CADENCES)
        followed = set(rng.sample(skills, rng.randint(1, 5)))
        start, end = windows[cadence]
        mine = [each for each in candidates[cadence] if each.item.skill_id in followed]
        selection = choose(mine, config.max_items)
        contents.append(
            DigestContent(
                delivery_id=10_000_000 + number,
                email=f"reader{number}@readers.example",
                cadence=cadence,
                timezone="UTC",
                window_start=start,
                window_end=end,
                sections=selection.sections,
                more=selection.more,
                unsubscribe_url=f"{config.base_url}/u/token{number}",
                manage_url=f"{config.base_url}/manage/token{number}",
                base_url=config.base_url,
            )
        )
    mailer = SmtpMailer("127.0.0.1", port, security="none", username=None, password=None)
    composer = rt.composer
    started = time.perf_counter()
    for content in contents:
        email = composer.digest(content)
        mailer.send(
            build_message(
                email,
                sender=config.sender,
                recipient=content.email,
                message_id_value=message_id(content.delivery_id, config.sender),
                date=NOW,
                unsubscribe_url=content.unsubscribe_url,
            )
        )
    seconds = time.perf_counter() - started
    mailer.close()
    return count / seconds


# --- the sink and the processes --------------------------------------------------------------------


def serve_sink(
    port: int, counted: Synchronized[int], unique: Synchronized[int], ready: Any
) -> None:  # pragma: no cover - runs in the sink process
    """An aiosmtpd server counting messages and distinct Message-IDs; runs until terminated."""
    from aiosmtpd.controller import Controller

    seen: set[bytes] = set()
    pattern = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            found = pattern.search(envelope.content[:4096])
            if found and found.group(1) not in seen:
                seen.add(found.group(1))
                unique.value += 1
            counted.value += 1
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, server_hostname="localhost")
    controller.start()
    ready.set()
    asyncio.run(_forever())


async def _forever() -> None:  # pragma: no cover - runs in the sink process
    while True:
        await asyncio.sleep(3600)


def _wait_for_worker(settings: Settings) -> None:
    app = create_celery(settings)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(timeout=1.0):
            return
    raise SystemExit("the worker did not answer a ping within 60 s")


def _wait_for(counted: Synchronized[int], expected: int, pid: int) -> int:
    """Wait until ``expected`` messages arrived (or nothing arrives for a minute); the worker's peak RSS."""
    peak = 0
    last, last_change = -1, time.monotonic()
    while counted.value < expected:
        peak = max(peak, _tree_rss_kb(pid))
        if counted.value != last:
            last, last_change = counted.value, time.monotonic()
        elif time.monotonic() - last_change > 60:
            print(f"stalled at {counted.value} of {expected} messages")
            break
        time.sleep(0.5)
    return max(peak, _tree_rss_kb(pid))


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and its children, in kB (Linux /proc)."""
    total = 0
    for each in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total += int(found.group(1)) if found else 0
    return total


def _children(pid: int) -> Sequence[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(child) for task in tasks for child in (task / "children").read_text().split()]
    except OSError:
        return []


def _commits(rt: Runtime) -> int:
    with rt.engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            ).scalar_one()
        )


def _statuses(rt: Runtime) -> dict[str, int]:
    with db.transaction(rt.sessions) as session:
        rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).tuples()
        return dict(rows.all())


def _flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
