"""Drill 7 (issue 18 item 4): the sent fact survives a database outage and a worker killed after the 250.

Before, a worker that had the SMTP server's 250 and then lost its "sent" write to a PostgreSQL restart left
the delivery claimed; after the lease it was mailed again. Now only that write is retried, and the
acceptance is journaled on local disk first, so a re-claim marks it sent instead of sending it again."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select, update

from digest import db
from digest.config import Settings, load_settings, settings_env
from digest.deliver import digests, outbox
from digest.deliver.journal import Journal
from digest.models import Delivery, DeliveryEvent
from digest.runtime import Runtime
from digest.tasks import create_celery
from tests.faults.conftest import PostgresServer, Processes, RedisServer, prepare_due, statuses
from tests.support import SmtpSink, smtp_sink, wait_for

# A drill waits on progress (wait_for_count fails after a minute with none), so its overall limit is
# generous: thousands of digests through real processes take minutes on two busy cores (issue 13).
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]


def drill_settings(tmp_path: Path, database_url: str, sink: SmtpSink, broker_url: str = "") -> Settings:
    broker = {"broker_url": broker_url} if broker_url else {}
    return load_settings(
        home=tmp_path / "home",
        secret_key="test-secret-key-0123456789abcdefghijkl",
        database_url=database_url,
        mail_url=sink.url,
        block_private_addresses=False,
        **broker,
    )


def one_due_delivery(rt: Runtime) -> int:
    due = prepare_due(rt, 1)
    [delivery_id] = [opened for batch in digests.dispatch_due(rt.sessions, due.at) for opened in batch]
    return delivery_id


def history(rt: Runtime, delivery_id: int) -> list[tuple[str, str | None]]:
    with db.transaction(rt.sessions) as session:
        rows = session.execute(
            select(DeliveryEvent.event, DeliveryEvent.detail)
            .where(DeliveryEvent.delivery_id == delivery_id)
            .order_by(DeliveryEvent.id)
        ).all()
    return [(row.event, row.detail) for row in rows]


def test_postgresql_restarted_between_the_250_and_the_sent_write_leaves_one_email(
    tmp_path: Path, private_postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The fault point is the mailer: once the sink has answered 250, ``pg_ctl restart -m immediate`` is
    started and the old postmaster is gone before the send returns. The sent write hits the dropped
    connection, is retried with back-off until the server is back, and commits; the send is not repeated."""
    with smtp_sink() as sink:
        # As the worker runs it: no pre-ping, so the dead pooled connection is what the write meets first.
        rt = Runtime(drill_settings(tmp_path, private_postgres.url, sink), pre_ping=False)
        delivery_id = one_due_delivery(rt)
        restart = threading.Thread(target=private_postgres.restart_immediately)
        before = private_postgres.postmaster_pid()

        class RestartAfterTheReply:
            def send(self, message: EmailMessage) -> str | None:
                reply = rt.mailer.send(message)
                restart.start()
                wait_for(lambda: private_postgres.postmaster_pid() != before, "the old postmaster to go")
                return reply

            def close(self) -> None:
                rt.mailer.close()

        with caplog.at_level(logging.WARNING, logger=outbox.__name__):
            outcome = digests.send_delivery(
                rt.sessions,
                delivery_id,
                mailer=RestartAfterTheReply(),
                composer=rt.composer,
                config=rt.delivery,
                now=datetime.now(UTC),
            )
        restart.join(timeout=120)
        events = history(rt, delivery_id)
        final = statuses(rt)
        rt.close()

    assert private_postgres.postmaster_pid() not in (None, before)
    assert any("marking it sent failed" in record.getMessage() for record in caplog.records)
    assert outcome.status == "sent" and final == {"sent": 1}
    assert [str(message["Message-ID"]) for message in sink.messages] == [outcome.message_id]
    assert [event for event, _ in events] == ["claimed", "sent"]
    assert (events[-1][1] or "").startswith("250 ")


def test_a_worker_killed_after_the_journal_write_leaves_one_email_after_the_reclaim(
    tmp_path: Path, postgres_url: str, private_redis: RedisServer, procs: Processes
) -> None:
    """A process sends the digest and is killed (SIGKILL) as soon as its journal has the acceptance, before
    the sent write. After the lease (dated back) a Celery worker on the same host claims it again, finds
    the dead process's journal file and marks it sent: one email, and the history says why."""
    with smtp_sink() as sink:
        settings = drill_settings(tmp_path, postgres_url, sink, private_redis.url)
        rt = Runtime(settings)
        delivery_id = one_due_delivery(rt)
        doomed = subprocess.run(
            [sys.executable, "-m", "tests.faults.crash_after_journal", str(delivery_id)],
            env={**os.environ, **settings_env(settings), "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
        assert doomed.returncode == -signal.SIGKILL, doomed.stderr.decode(errors="replace")
        assert len(sink.messages) == 1 and statuses(rt) == {"sending": 1}
        [dead_file] = (settings.home / "journal").glob("*.sqlite3")
        with db.transaction(rt.sessions) as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(claimed_at=datetime.now(UTC) - outbox.SEND_LEASE - timedelta(minutes=1))
            )
        procs.worker(settings, "worker", ("digest", "mail"))
        create_celery(settings).send_task("digest.dispatch_tick", args=[datetime.now(UTC).isoformat()])
        wait_for(lambda: statuses(rt) == {"sent": 1}, "the re-claimed digest to be marked sent")
        procs.stop()
        events = history(rt, delivery_id)
        rt.close()

    assert len(sink.messages) == 1
    assert [event for event, _ in events] == ["claimed", "claimed", "sent"]
    detail = events[-1][1] or ""
    assert detail.startswith("250 ") and detail.endswith(f"found in the journal {dead_file.name}")
    assert Journal(dead_file.parent, "reader").find("digest", delivery_id) is None
