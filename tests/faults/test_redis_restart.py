"""Drill 2: the Redis broker restarted (without persistence) in the middle of a dispatch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

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


def test_a_redis_restart_mid_dispatch_loses_no_digest_and_doubles_none(
    tmp_path: Path, postgres_url: str, private_redis: RedisServer, procs: Processes
) -> None:
    """300 subscribers due, two workers; the broker is killed and started empty once a third has arrived.

    The queued tasks die with it; the deliveries they were for stay pending, and the dispatch's requeue
    enqueues them again once their ``requeue_at`` has passed (dated back here instead of waiting 15 min).
    """
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
        workers = [procs.worker(settings, name, ("digest", "mail")) for name in ("worker-a", "worker-b")]
        create_celery(settings).send_task("digest.dispatch_tick", args=[due.at.isoformat()])

        wait_for_count(lambda: len(sink.messages), SUBSCRIBERS // 3, "a third of the digests at the sink")
        private_redis.kill()
        private_redis.start()
        wait_for(lambda: not _sending(rt), "the sends in flight at the restart to finish")
        with db.transaction(rt.sessions) as session:
            lost = list(session.scalars(select(Delivery).where(Delivery.status == "pending")))
            for delivery in lost:
                delivery.requeue_at = due.at - outbox.REQUEUE_AFTER
        # A new client: the drill's own broker connection died with the server too.
        create_celery(settings).send_task("digest.dispatch_tick", args=[datetime.now(UTC).isoformat()])
        wait_for_count(lambda: statuses(rt).get("sent", 0), SUBSCRIBERS, "every digest after the restart")
        alive = [worker.poll() is None for worker in workers]
        procs.stop()
        final, sent = statuses(rt), message_ids(rt)
        rt.close()

    assert alive == [True, True]
    assert lost, "the restart lost no queued task, so the drill proved nothing"
    assert final == {"sent": SUBSCRIBERS}
    arrived = [str(message["Message-ID"]) for message in sink.messages]
    assert len(arrived) == SUBSCRIBERS
    assert set(arrived) == sent


def _sending(rt: Runtime) -> bool:
    return statuses(rt).get("sending", 0) > 0
