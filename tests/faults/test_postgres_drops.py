"""Drill 3: every PostgreSQL connection of the database terminated, again and again, while digests go out."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from digest import db
from digest.config import load_settings
from digest.deliver import outbox
from digest.models import Delivery
from digest.runtime import Runtime
from digest.tasks import create_celery
from tests.faults.conftest import (
    Processes,
    RedisServer,
    message_ids,
    prepare_due,
    statuses,
    wait_for,
    wait_for_count,
)
from tests.support import smtp_sink

# A drill waits on progress (wait_for_count fails after a minute with none), so its overall limit is
# generous: thousands of digests through real processes take minutes on two busy cores (issue 13).
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(900)]
SUBSCRIBERS = 300
# Terminations at most: enough for some to land inside a task's transaction, which is what is drilled.
DROPS = 40


def test_tasks_retry_through_dropped_database_connections_and_every_digest_is_sent(
    tmp_path: Path, postgres_url: str, private_redis: RedisServer, procs: Processes
) -> None:
    """300 subscribers, two workers; every backend of the database is terminated every 0.2 s until the
    workers have logged retries on OperationalError (or 40 times). A delivery left claimed (its task's
    first commit cut off) waits for its lease: the workers are stopped, the claim dated back, and a dispatch
    enqueues it again. No one gets a copy (docs/design.md, "The sent fact")."""
    with smtp_sink() as sink:
        settings = load_settings(
            home=tmp_path / "home",
            secret_key="test-secret-key-0123456789abcdefghijkl",
            database_url=postgres_url,
            broker_url=private_redis.url,
            mail_url=sink.url,
            block_private_addresses=False,
        )
        rt = Runtime(settings)
        due = prepare_due(rt, SUBSCRIBERS)
        workers = [
            procs.worker(settings, name, ("digest", "mail"), loglevel="INFO")
            for name in ("worker-a", "worker-b")
        ]
        create_celery(settings).send_task("digest.dispatch_tick", args=[due.at.isoformat()])

        killer = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        drops = 0
        wait_for(lambda: len(sink.messages) > 0, "the first digest")
        while drops < DROPS and not _retried(procs, workers) and len(sink.messages) < SUBSCRIBERS:
            with killer.connect() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            drops += 1
            time.sleep(0.2)
        killer.dispose()
        retried = _retried(procs, workers)
        wait_for(lambda: _settled(rt), "every digest sent or claimed, none waiting for a retry")
        procs.stop()

        with db.transaction(rt.sessions) as session:
            cut_off = list(session.scalars(select(Delivery).where(Delivery.status == "sending")))
            for delivery in cut_off:
                assert delivery.claimed_at is not None
                delivery.claimed_at -= outbox.SEND_LEASE + timedelta(minutes=1)
        procs.worker(settings, "worker-c", ("digest", "mail"))
        create_celery(settings).send_task("digest.dispatch_tick", args=[datetime.now(UTC).isoformat()])
        wait_for_count(
            lambda: statuses(rt).get("sent", 0), SUBSCRIBERS, "the cut-off digests to be sent again"
        )
        procs.stop()
        final, sent = statuses(rt), message_ids(rt)
        rt.close()

    assert retried, f"{drops} terminations and no task retried: the drill proved nothing"
    assert final == {"sent": SUBSCRIBERS}
    arrived = Counter((str(m["To"]), str(m["Message-ID"])) for m in sink.messages)
    # Nobody got two digests: a "sent" write cut off after SMTP's 250 is retried on its own, and a delivery
    # left claimed is marked sent from the journal when claimed again (issue 18).
    assert len(arrived) == SUBSCRIBERS
    assert {message_id for _, message_id in arrived} == sent
    assert sum(arrived.values()) == SUBSCRIBERS


def _retried(procs: Processes, workers: list[subprocess.Popen[bytes]]) -> bool:
    logs = "".join(procs.log_of(worker) for worker in workers)
    return "Retry in" in logs and "OperationalError" in logs


def _settled(rt: Runtime) -> bool:
    counts = statuses(rt)
    return counts.get("pending", 0) == 0 and counts.get("sent", 0) + counts.get("sending", 0) == SUBSCRIBERS
