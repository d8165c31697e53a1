"""Beat on the schedules table: a change written while it runs is in force at the next re-read, no restart.

The first tests drive ``DatabaseScheduler.tick`` on a pinned, hand-moved clock (the app's ``now``) with
kombu's in-memory broker, so a minute of beat takes milliseconds; the last runs the real ``digest beat``
process on the filesystem broker and changes a cadence under it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from digest.cli.bootstrap import upgrade_all
from digest.config import load_settings
from digest.db import transaction
from digest.ops import processes, schedules
from digest.ops.beat import REFRESH, DatabaseScheduler
from digest.runtime import Runtime

ACTOR = "test"


class Clock:
    """The time beat sees; tests move it by hand."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 16, 9, 0, 0, tzinfo=UTC))


@pytest.fixture
def app(clock: Clock) -> Iterator[Celery]:
    celery = Celery("beat-test", broker="memory://", set_as_current=False)
    celery.conf.update(timezone="UTC", enable_utc=True, broker_connection_retry_on_startup=True)
    celery.now = clock
    yield celery
    celery.close()


class Beat:
    """A scheduler ticked second by second, remembering which task it sent at which time."""

    def __init__(self, app: Celery, clock: Clock, rt: Runtime) -> None:
        self.app, self.clock = app, clock
        self.scheduler = DatabaseScheduler(app, sessions=rt.sessions)
        self.sent: list[tuple[datetime, str]] = []

    def run(self, seconds: int) -> list[tuple[datetime, str]]:
        """Move the clock one second at a time; at each, tick until nothing more is due. What was sent."""
        first = len(self.sent)
        for _ in range(seconds):
            self.clock.at += timedelta(seconds=1)
            while self.scheduler.tick() == 0:
                pass
            self._drain()
        return self.sent[first:]

    def _drain(self) -> None:
        with self.app.connection_for_read() as connection:
            queue = connection.SimpleQueue("celery")
            while queue.qsize():
                message = queue.get_nowait()
                self.sent.append((self.clock.at, message.headers["task"]))
                message.ack()
            queue.close()

    def close(self) -> None:
        self.scheduler.close()


@pytest.fixture
def beat(app: Celery, clock: Clock, rt: Runtime) -> Iterator[Beat]:
    running = Beat(app, clock, rt)
    yield running
    running.close()


def times(sent: list[tuple[datetime, str]], task: str) -> list[datetime]:
    return [at for at, name in sent if name == task]


def test_it_sends_each_enabled_schedule_on_its_interval(beat: Beat, clock: Clock) -> None:
    start = clock.at

    sent = beat.run(180)

    assert times(sent, "digest.crawl_tick") == [start + timedelta(seconds=s) for s in (60, 120, 180)]
    assert times(sent, "digest.dispatch_tick") == [start + timedelta(seconds=s) for s in (60, 120, 180)]


def test_a_shorter_tick_written_while_it_runs_applies_at_the_next_re_read(
    beat: Beat, clock: Clock, rt: Runtime
) -> None:
    beat.run(61)  # both ticks sent once, at +60 s
    changed_at = clock.at
    with transaction(rt.sessions) as session:
        schedules.set_schedule(session, "crawl-tick", "10s", ACTOR, changed_at)

    sent = beat.run(90)

    crawls = times(sent, "digest.crawl_tick")
    # Re-read within REFRESH of the change; from then on every 10 s, counted from the last run.
    assert crawls[0] - changed_at <= REFRESH
    assert all(later - earlier == timedelta(seconds=10) for earlier, later in pairwise(crawls))
    assert len(crawls) >= 6
    assert times(sent, "digest.dispatch_tick") == [changed_at + timedelta(seconds=59)]


def test_a_schedule_turned_off_stops_and_one_turned_on_starts_without_a_restart(
    beat: Beat, clock: Clock, rt: Runtime
) -> None:
    beat.run(5)
    with transaction(rt.sessions) as session:
        schedules.set_schedule(session, "dispatch-tick", "off", ACTOR, clock.at)

    sent = beat.run(300)

    assert times(sent, "digest.dispatch_tick") == []
    assert len(times(sent, "digest.crawl_tick")) == 5

    with transaction(rt.sessions) as session:
        schedules.set_schedule(session, "dispatch-tick", "on", ACTOR, clock.at)
    assert times(beat.run(60 + int(REFRESH.total_seconds())), "digest.dispatch_tick")


def test_a_cron_schedule_fires_at_its_minutes(beat: Beat, clock: Clock, rt: Runtime) -> None:
    with transaction(rt.sessions) as session:
        schedules.set_schedule(session, "dispatch-tick", "*/5 * * * *", ACTOR, clock.at)

    sent = beat.run(16 * 60)

    fired = times(sent, "digest.dispatch_tick")
    assert [moment.strftime("%H:%M") for moment in fired] == ["09:05", "09:10", "09:15"]
    assert all(moment.second <= 1 for moment in fired)


def test_it_wakes_at_least_every_refresh_even_when_nothing_is_due_for_hours(
    beat: Beat, clock: Clock, rt: Runtime
) -> None:
    with transaction(rt.sessions) as session:
        for name in ("crawl-tick", "dispatch-tick"):
            schedules.set_schedule(session, name, "1d", ACTOR, clock.at)
    beat.scheduler.refresh(clock.at)

    assert beat.scheduler.tick() <= REFRESH.total_seconds()


def test_it_keeps_its_schedule_while_the_table_cannot_be_read(
    beat: Beat, monkeypatch: pytest.MonkeyPatch
) -> None:
    beat.run(1)
    monkeypatch.setattr(schedules, "beat_entries", _database_restarting)

    sent = beat.run(120)

    assert len(times(sent, "digest.crawl_tick")) == 2


def _database_restarting(_session: object) -> list[schedules.BeatEntry]:
    raise OperationalError("SELECT", {}, Exception("the database system is starting up"))


def test_it_touches_beat_s_schedule_file_at_every_re_read_for_the_health_check(
    app: Celery, clock: Clock, rt: Runtime, tmp_path: Path
) -> None:
    heartbeat = tmp_path / "celerybeat-schedule"
    scheduler = DatabaseScheduler(app, sessions=rt.sessions, schedule_filename=str(heartbeat))
    try:
        assert heartbeat.exists()
        os.utime(heartbeat, (0, 0))
        clock.at += REFRESH
        scheduler.tick()
    finally:
        scheduler.close()

    assert time.time() - heartbeat.stat().st_mtime < 60


@pytest.mark.slow
def test_the_beat_process_picks_up_a_cadence_change_without_a_restart(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", secret_key="test-secret-key-0123456789abcdefghijkl")
    rt = Runtime(settings)
    upgrade_all(rt, datetime.now(UTC))
    with transaction(rt.sessions) as session:
        for name in ("crawl-tick", "dispatch-tick"):
            schedules.set_schedule(session, name, "off", ACTOR, datetime.now(UTC))
    queue = settings.home / "broker" / "queue"
    beat_process = processes.start(processes.beat_command(), settings, quiet=True)
    try:
        # Beat takes its lock at its first tick, after its first read of the table (nothing enabled).
        lock = Path(f"{make_url(settings.database_url).database}.beat-lock")
        deadline = time.monotonic() + 60
        while not _flocked(lock) and beat_process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _flocked(lock) and beat_process.poll() is None
        assert _messages(queue) == []
        with transaction(rt.sessions) as session:
            schedules.set_schedule(session, "crawl-tick", "10s", ACTOR, datetime.now(UTC))
            schedules.set_schedule(session, "crawl-tick", "on", ACTOR, datetime.now(UTC))
        changed = time.monotonic()
        deadline = changed + REFRESH.total_seconds() + 10 + 15
        while time.monotonic() < deadline and not _messages(queue):
            time.sleep(0.1)
        waited = time.monotonic() - changed
        assert beat_process.poll() is None
    finally:
        processes.stop([beat_process])
        rt.close()

    assert _messages(queue) and set(_messages(queue)) == {"digest.crawl_tick"}
    assert waited < 60
    assert (settings.home / "celerybeat-schedule").exists()


def _messages(folder: Path) -> list[str]:
    return [json.loads(path.read_bytes())["headers"]["task"] for path in sorted(folder.glob("*.msg"))]


def _flocked(path: Path) -> bool:
    """Whether some process holds an flock on ``path`` (read from /proc/locks, so nothing is taken)."""
    if not path.exists():
        return False
    inode = str(path.stat().st_ino)
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "FLOCK" in fields and fields[fields.index("FLOCK") + 4].rsplit(":", 1)[-1] == inode:
            return True
    return False
