"""Queues, routing, the broker's visibility timeout against every countdown, and the single-beat lock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from digest import tasks
from digest.config import load_settings
from digest.deliver import outbox
from digest.ops import processes
from digest.ops.beat import AdvisoryBeatLock, FileBeatLock, RedisBeatLock, lock_for
from tests.faults.conftest import RedisServer, wait_for

pytestmark = pytest.mark.faults


def test_no_countdown_or_task_outlives_the_redis_visibility_timeout(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path,
        secret_key="test-secret-key-0123456789abcdefghijkl",
        broker_url="redis://127.0.0.1:6379/0",
    )
    visibility = timedelta(
        seconds=tasks.create_celery(settings).conf.broker_transport_options["visibility_timeout"]
    )
    longest_run = timedelta(seconds=tasks.app.conf.task_time_limit)
    # A message waiting for its countdown is held unacknowledged, then runs: both must fit.
    assert visibility > outbox.retry_delay(tasks.MAIL_RETRIES) + longest_run
    assert visibility > outbox.RETRY_MAX + longest_run
    for task in (t for name, t in tasks.app.tasks.items() if name.startswith("digest.")):
        if task.autoretry_for:
            assert visibility > timedelta(seconds=task.retry_backoff_max) + longest_run, task.name


def test_every_queue_a_task_is_routed_to_is_declared_and_consumed_by_default() -> None:
    routed = {route["queue"] for route in tasks.ROUTES.values()}
    assert routed == set(tasks.QUEUES) == set(processes.ALL_QUEUES)
    assert set(processes.WORK_QUEUES) | set(processes.MAIL_QUEUES) == set(tasks.QUEUES)
    assert not set(processes.WORK_QUEUES) & set(processes.MAIL_QUEUES)


def test_each_task_lands_on_its_own_queue_and_nowhere_else(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    settings = load_settings(
        home=tmp_path, secret_key="test-secret-key-0123456789abcdefghijkl", broker_url=private_redis.url
    )
    app = tasks.create_celery(settings)
    with app.connection_for_write() as connection:
        for queue in app.amqp.queues.values():
            queue(connection.default_channel).declare()
    client = private_redis.client()
    for name, route in tasks.ROUTES.items():
        app.send_task(name)
        lengths = {queue: client.llen(queue) for queue in tasks.QUEUES}
        assert lengths == {queue: int(queue == route["queue"]) for queue in tasks.QUEUES}, name
        client.delete(route["queue"])
    client.close()
    app.close()


def test_a_second_redis_lock_is_refused_until_the_first_expires(private_redis: RedisServer) -> None:
    first = RedisBeatLock(private_redis.url, ttl=timedelta(seconds=30))
    second = RedisBeatLock(private_redis.url, ttl=timedelta(seconds=30))
    assert first.hold() and first.hold()
    assert not second.hold()
    client = private_redis.client()
    # The first beat's renewals stop (it died) and its key expires: deleted now instead of waited for.
    assert 0 < client.pttl(first.name) <= 30_000
    client.delete(first.name)
    client.close()
    assert second.hold()
    assert not first.hold()
    second.release()
    assert first.hold()
    first.release()


def test_a_second_advisory_lock_is_refused_until_the_holder_s_connection_ends(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    first, second = AdvisoryBeatLock(engine), AdvisoryBeatLock(engine)
    assert first.hold() and first.hold()
    assert not second.hold()
    first.release()
    # The server ends the first session after the client closed it, asynchronously (FIELD-NOTES).
    wait_for(second.hold, "the second beat to take the lock once the first's session ended")
    second.release()
    engine.dispose()


def test_a_second_file_lock_is_refused_until_the_holder_closes_it(tmp_path: Path) -> None:
    first, second = FileBeatLock(tmp_path / "beat-lock"), FileBeatLock(tmp_path / "beat-lock")
    assert first.hold() and first.hold()
    assert not second.hold()
    first.release()
    assert second.hold()
    second.release()


def test_beats_meet_in_redis_when_it_is_the_broker_else_in_the_database(tmp_path: Path) -> None:
    sqlite = create_engine(f"sqlite:///{tmp_path / 'digest.sqlite3'}")
    postgres = create_engine("postgresql+psycopg://nobody@127.0.0.1:5432/none")
    assert isinstance(lock_for("redis://127.0.0.1:6379/0", sqlite), RedisBeatLock)
    assert isinstance(lock_for("filesystem://", postgres), AdvisoryBeatLock)
    file_lock = lock_for("filesystem://", sqlite)
    assert isinstance(file_lock, FileBeatLock)
    assert file_lock.path == tmp_path / "digest.sqlite3.beat-lock"
    sqlite.dispose()
    postgres.dispose()
