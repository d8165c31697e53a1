"""Drill 4: an SMTP server refusing 30 % of messages for now (421/451) and some addresses for good (550)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from digest import db
from digest.config import load_settings
from digest.deliver import outbox, replay
from digest.models import Delivery, Subscriber, Subscription
from digest.runtime import Runtime
from digest.tasks import create_celery
from tests.faults.conftest import (
    Processes,
    RedisServer,
    address,
    message_ids,
    prepare_due,
    statuses,
    wait_for,
)
from tests.support import smtp_sink

# A drill waits on progress (wait_for_count fails after a minute with none), so its overall limit is
# generous: thousands of digests through real processes take minutes on two busy cores (issue 13).
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(900)]
SUBSCRIBERS = 200
SEED = 9
ROUNDS = 20


class Refusals:
    """The sink's ``refuse``: 550 for ``unknown``; 421 or 451 for 30 % of the other attempts, decided by
    the seed, the address and the attempt number, so the run is the same whichever worker asks first."""

    def __init__(self, unknown: set[str]) -> None:
        self.unknown = unknown
        self.attempts: Counter[str] = Counter()
        self.temporary = 0
        self.flaky = True

    def __call__(self, recipient: str) -> str | None:
        """The reply to RCPT TO, or None to accept."""
        if recipient in self.unknown:
            return "550 5.1.1 no such mailbox"
        if not self.flaky:
            return None
        self.attempts[recipient] += 1
        draw = random.Random(f"{SEED}:{recipient}:{self.attempts[recipient]}")
        if draw.random() < 0.3:
            self.temporary += 1
            return draw.choice(("421 4.3.2 try again later", "451 4.3.0 busy, try again"))
        return None


def test_temporary_refusals_end_in_one_copy_each_and_permanent_ones_in_replayable_failures(
    tmp_path: Path, postgres_url: str, private_redis: RedisServer, procs: Processes
) -> None:
    """200 subscribers, two workers; 8 addresses are unknown (550). Retries are driven as the dispatch's
    requeue would drive them after ``requeue_at``, dated back, instead of waiting for the task's back-off."""
    unknown = {address(number) for number in range(0, SUBSCRIBERS, 25)}
    with smtp_sink() as sink:
        refusals = Refusals(set(unknown))
        sink.refuse = refusals
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
        procs.worker(settings, "worker-a", ("digest", "mail"))
        procs.worker(settings, "worker-b", ("digest", "mail"))
        celery = create_celery(settings)
        celery.send_task("digest.dispatch_tick", args=[due.at.isoformat()])
        wait_for(lambda: _attempted(rt, {}), "every digest tried once")

        rounds = 0
        while statuses(rt).get("pending", 0) and rounds < ROUNDS:
            rounds += 1
            with db.transaction(rt.sessions) as session:
                session.execute(
                    update(Delivery).where(Delivery.status == "pending").values(requeue_at=due.at)
                )
                before = dict(session.execute(select(Delivery.id, Delivery.attempts)).tuples().all())
                again = outbox.requeue(session, outbox.DIGESTS, datetime.now(UTC))
            for delivery_id in again:
                celery.send_task("digest.send_delivery", args=[delivery_id])
            tried = {i: before[i] for i in again}
            wait_for(lambda tried=tried: _attempted(rt, tried), f"retry round {rounds}")  # type: ignore[misc]
        after_retries = statuses(rt)

        failed = _failed(rt)
        # The addresses are fixed and the server is well again: a replay is a single attempt, no retries.
        refusals.unknown.clear()
        refusals.flaky = False
        replays = [
            replay.resend(rt, delivery_id, "drill", datetime.now(UTC)).status for delivery_id in failed
        ]
        procs.stop()
        sent = message_ids(rt)
        rt.close()

    assert refusals.temporary > 0
    assert after_retries == {"sent": SUBSCRIBERS - len(unknown), "failed": len(unknown)}
    assert set(failed.values()) == unknown
    assert replays == ["sent"] * len(unknown)
    digests_arrived = [m for m in sink.messages if str(m["To"]) not in unknown]
    assert len(digests_arrived) == SUBSCRIBERS - len(unknown)
    assert {str(m["Message-ID"]) for m in digests_arrived} == sent
    assert sorted(str(m["To"]) for m in sink.messages if str(m["To"]) in unknown) == sorted(unknown)


def _attempted(rt: Runtime, before: dict[int, int]) -> bool:
    """Whether every delivery (or each of ``before``, past those attempts) was tried and is not mid-send."""
    with db.transaction(rt.sessions) as session:
        rows = session.execute(select(Delivery.id, Delivery.status, Delivery.attempts)).all()
    if not before:
        return len(rows) == SUBSCRIBERS and all(status != "sending" and tries for _, status, tries in rows)
    return all(status != "sending" and tries > before[i] for i, status, tries in rows if i in before)


def _failed(rt: Runtime) -> dict[int, str]:
    with db.transaction(rt.sessions) as session:
        rows = session.execute(
            select(Delivery.id, Subscriber.email)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Delivery.status == "failed")
        )
        return dict(rows.tuples().all())
