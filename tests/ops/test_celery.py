"""The Celery path with a real worker process: once on the embedded broker, once on Redis + PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest import db
from digest.config import Settings, load_settings
from digest.deliver import outbox
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.ingest import crawl, taxonomy
from digest.models import Delivery, Item, Skill, Source, Tag
from digest.ops import processes
from digest.runtime import Runtime
from digest.tasks import create_celery
from tests.conftest import SMALL_TAXONOMY
from tests.support import Route, feed_server, rss, smtp_sink, wait_for

pytestmark = pytest.mark.slow
SUBSCRIBED = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
DISPATCH = datetime(2026, 11, 16, 7, 0, 30, tzinfo=UTC)
WAIT = 60.0


def prepare(settings: Settings, how_many: int) -> Runtime:
    """A migrated database with tagged items and ``how_many`` daily subscribers due at DISPATCH."""
    rt = Runtime(settings)
    db.upgrade(rt.engine)
    with db.transaction(rt.sessions) as session:
        taxonomy.load(session, taxonomy.read_taxonomy(SMALL_TAXONOMY), SUBSCRIBED)
        for number in range(how_many):
            subscribe(
                session,
                f"reader{number}@example.com",
                ["Python"],
                Schedule("daily", 8, 0, "Europe/Berlin"),
                SUBSCRIBED,
                confirmed=True,
            )
    with feed_server() as server:
        server.routes["/feed"] = Route(
            rss(
                ("p1", "Python 3.14 released", "Free-threaded builds."),
                ("p2", "Why we moved our Python services", "A migration story."),
            )
        )
        with db.transaction(rt.sessions) as session:
            session.add(
                Source(
                    url=server.url("/feed"),
                    name="loopback",
                    kind="news",
                    next_fetch_at=SUBSCRIBED,
                    created_at=SUBSCRIBED,
                )
            )
        [source_id] = crawl.claim_due_sources(rt.sessions, SUBSCRIBED)
        outcome = crawl.refresh_and_tag(
            rt.sessions, rt.fetcher, rt.matchers, source_id, SUBSCRIBED, random.Random(1)
        )
    assert outcome.new == 2
    return rt


@pytest.fixture
def worker() -> Iterator[Callable[[Settings], None]]:
    """Starts real worker processes for given settings and stops them at the end of the test."""
    started = []

    def start(settings: Settings) -> None:
        started.append(processes.start(processes.worker_command(), settings))

    yield start
    processes.stop(started)


def wait_until_sent(rt: Runtime, expected: int) -> dict[str, int]:
    deadline = time.monotonic() + WAIT
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        with db.transaction(rt.sessions) as session:
            counts = dict(
                session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
                .tuples()
                .all()
            )
        if counts.get("sent", 0) + counts.get("failed", 0) >= expected:
            return counts
        time.sleep(0.2)
    return counts


def test_a_real_worker_sends_digests_through_the_embedded_broker(
    tmp_path: Path, worker: Callable[[Settings], None]
) -> None:
    settings = load_settings(home=tmp_path / "home", secret_key="test-secret-key-0123456789abcdefghijkl")
    assert settings.broker_url.startswith("filesystem://") and settings.database_url.startswith("sqlite")
    rt = prepare(settings, how_many=3)
    worker(settings)

    create_celery(settings).send_task("digest.dispatch_tick", args=[DISPATCH.isoformat()])

    assert wait_until_sent(rt, 3) == {"sent": 3}
    assert len(list((settings.home / "outbox" / "new").iterdir())) == 3
    rt.close()


def test_a_prefork_worker_stopped_with_digests_reserved_on_the_embedded_broker_loses_and_doubles_none(
    tmp_path: Path,
) -> None:
    """The polled brokers prefetch several messages a process (issue 18): stopped while both children are
    in SMTP DATA, the worker finishes those two and puts back what it had reserved; a new one sends the
    rest, each once."""
    total = 30
    with smtp_sink() as sink:
        settings = load_settings(
            home=tmp_path / "home",
            secret_key="test-secret-key-0123456789abcdefghijkl",
            mail_url=sink.url,
            block_private_addresses=False,
        )
        assert settings.broker_url.startswith("filesystem://")
        rt = prepare(settings, how_many=total)
        queue = settings.home / "broker" / "queue"
        hold = threading.Event()
        sink.hold = hold
        command = processes.worker_command(pool="prefork", concurrency=2)
        first = processes.start(command, settings)
        try:
            create_celery(settings).send_task("digest.dispatch_tick", args=[DISPATCH.isoformat()])
            wait_for(lambda: sum(1 for _ in queue.glob("*.mail.msg")) < total - 2, "the worker to reserve")
            wait_for(sink.held.is_set, "a digest in SMTP DATA")
            first.send_signal(signal.SIGTERM)
            hold.set()
            first.wait(timeout=WAIT)
        finally:
            processes.stop([first])
        sent_first = len(sink.messages)
        left = sum(1 for _ in queue.glob("*.mail.msg"))
        second = processes.start(command, settings)
        try:
            counts = wait_until_sent(rt, total)
        finally:
            processes.stop([second])
        rt.close()

    assert 1 <= sent_first < total
    assert left == total - sent_first
    assert counts == {"sent": total}
    assert len(sink.messages) == total
    assert len({m["Message-ID"] for m in sink.messages}) == total


def test_a_real_worker_sends_digests_through_redis_to_smtp(
    tmp_path: Path, postgres_url: str, redis_url: str, worker: Callable[[Settings], None]
) -> None:
    with smtp_sink() as sink:
        settings = load_settings(
            home=tmp_path / "home",
            secret_key="test-secret-key-0123456789abcdefghijkl",
            database_url=postgres_url,
            broker_url=redis_url,
            mail_url=sink.url,
            block_private_addresses=False,
        )
        rt = prepare(settings, how_many=5)
        worker(settings)

        create_celery(settings).send_task("digest.dispatch_tick", args=[DISPATCH.isoformat()])
        counts = wait_until_sent(rt, 5)
        rt.close()

    assert counts == {"sent": 5}
    assert sorted(str(m["To"]) for m in sink.messages) == [f"reader{n}@example.com" for n in range(5)]
    assert len({m["Message-ID"] for m in sink.messages}) == 5


def test_a_worker_killed_mid_send_neither_loses_nor_doubles_a_digest(
    tmp_path: Path, postgres_url: str, redis_url: str, worker: Callable[[Settings], None]
) -> None:
    with smtp_sink() as sink:
        settings = load_settings(
            home=tmp_path / "home",
            secret_key="test-secret-key-0123456789abcdefghijkl",
            database_url=postgres_url,
            broker_url=redis_url,
            mail_url=sink.url,
            block_private_addresses=False,
        )
        rt = prepare(settings, how_many=3)
        sink.hold = threading.Event()
        started = processes.start(processes.worker_command(("digest", "mail"), pool="prefork"), settings)
        try:
            create_celery(settings).send_task("digest.dispatch_tick", args=[DISPATCH.isoformat()])
            assert sink.held.wait(WAIT), "no digest reached the SMTP sink"
            # The pool child is in the middle of SMTP DATA, its claim and manifest committed: kill -9.
            [child] = _children(started.pid)
            os.kill(child, signal.SIGKILL)
            wait_for(sink.saw_a_client_go, "the sink to see the kill")
            sink.hold.set()
            sink.hold = None
            counts = wait_until_sent(rt, 2)
            # The killed claim stays "sending" until its lease is over (the clock is moved on by dating
            # the claim back); then a dispatch enqueues it again.
            with db.transaction(rt.sessions) as session:
                for held in session.scalars(select(Delivery).where(Delivery.status == "sending")):
                    assert held.claimed_at is not None
                    held.claimed_at -= outbox.SEND_LEASE + timedelta(minutes=1)
                session.flush()
                stuck = outbox.requeue(session, outbox.DIGESTS, datetime.now(UTC))
            for delivery_id in stuck:
                create_celery(settings).send_task("digest.send_delivery", args=[delivery_id])
            counts = wait_until_sent(rt, 3)
        finally:
            processes.stop([started])
        rt.close()

    assert len(stuck) == 1
    assert counts == {"sent": 3}
    assert sorted(str(m["To"]) for m in sink.messages) == [f"reader{n}@example.com" for n in range(3)]
    assert len({m["Message-ID"] for m in sink.messages}) == 3


def _children(pid: int) -> list[int]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
        if found:
            return found
        time.sleep(0.1)
    return []


def test_a_beat_tick_crawls_due_feeds_and_the_matcher_tags_them_in_batches(
    tmp_path: Path, postgres_url: str, redis_url: str, worker: Callable[[Settings], None]
) -> None:
    settings = load_settings(
        home=tmp_path / "home",
        secret_key="test-secret-key-0123456789abcdefghijkl",
        database_url=postgres_url,
        broker_url=redis_url,
        block_private_addresses=False,
    )
    rt = Runtime(settings)
    db.upgrade(rt.engine)
    now = datetime.now(UTC)
    with feed_server() as server:
        server.routes["/feed"] = Route(
            rss(("t1", "Kubernetes 1.36 and Go", ""), ("t2", "PyTorch on GPUs", ""))
        )
        with db.transaction(rt.sessions) as session:
            taxonomy.load(session, taxonomy.read_taxonomy(SMALL_TAXONOMY), now)
            session.add(
                Source(
                    url=server.url("/feed"), name="loopback", kind="news", next_fetch_at=now, created_at=now
                )
            )
        worker(settings)

        create_celery(settings).send_task("digest.crawl_tick")
        deadline = time.monotonic() + WAIT
        tagged: set[tuple[str, str]] = set()
        while time.monotonic() < deadline and len(tagged) < 3:
            with db.transaction(rt.sessions) as session:
                tagged = set(
                    session.execute(
                        select(Item.title, Skill.name)
                        .join(Tag, Tag.item_id == Item.id)
                        .join(Skill, Skill.id == Tag.skill_id)
                    ).tuples()
                )
            time.sleep(0.2)
    rt.close()

    assert tagged == {
        ("Kubernetes 1.36 and Go", "Kubernetes"),
        ("Kubernetes 1.36 and Go", "Go"),
        ("PyTorch on GPUs", "PyTorch"),
    }
