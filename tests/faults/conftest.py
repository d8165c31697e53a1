"""What the drills share: a private Redis per drill, worker and beat processes with logs, due subscribers.

Every drill gets its own ``redis-server`` on a free loopback port, so one drill may restart it and none
flushes a database another engineer's test run is using on the shared 6379.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from digest import db
from digest.config import Settings, settings_env
from digest.deliver.cadence import Schedule, latest_slot
from digest.deliver.subscribers import subscribe
from digest.ingest import crawl, taxonomy
from digest.models import Delivery, Source
from digest.ops import processes
from digest.runtime import Runtime
from tests.conftest import SMALL_TAXONOMY, need
from tests.support import WAIT, Route, feed_server, free_port, rss, wait_for


def wait_for_count(count: Callable[[], int], target: int, what: str, stall: float = WAIT) -> None:
    """Poll ``count`` until it reaches ``target``; fail naming ``what`` only once it has not grown for
    ``stall`` seconds. Thousands of digests take as long as a loaded machine needs: progress is the sign
    of life, not a fixed deadline."""
    best, moved = count(), time.monotonic()
    while best < target:
        if time.monotonic() - moved > stall:
            pytest.fail(f"timed out waiting for {what}: {best} of {target}, none more in {stall:g} s")
        time.sleep(0.1)
        now = count()
        if now > best:
            best, moved = now, time.monotonic()


@dataclass
class RedisServer:
    """A redis-server of this drill's own on 127.0.0.1, without persistence: a restart loses every message."""

    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The DIGEST_BROKER_URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A client of this server."""
        return redis.Redis(host="127.0.0.1", port=self.port)

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--daemonize", "no"]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(argv, stdout=output, stderr=output)
        wait_for(self._answers, f"redis-server on port {self.port}", 10)

    def kill(self) -> None:
        """SIGKILL the server: queued and unacknowledged messages are gone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None

    def _answers(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server for this drill alone, stopped afterwards."""
    if shutil.which("redis-server") is None:
        need("Redis", "redis-server is not installed, and the drills start their own")
    server = RedisServer(free_port(), tmp_path / "redis.log")
    server.start()
    yield server
    if server.process is not None:
        server.kill()


@dataclass
class PostgresServer:
    """A PostgreSQL cluster of this drill's own on 127.0.0.1 (initdb, trust, fsync off), which the drill may
    restart with ``pg_ctl restart -m immediate`` without touching the shared server on 5432. As root, the
    cluster runs as the ``postgres`` user, which initdb insists on."""

    folder: Path
    port: int

    @property
    def url(self) -> str:
        """The DIGEST_DATABASE_URL of this cluster's ``postgres`` database."""
        return f"postgresql+psycopg://digest@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.folder / "data"

    def start(self) -> None:
        """initdb, then start it and wait until it accepts connections."""
        self._run("initdb", "-D", str(self.data), "-U", "digest", "--auth=trust", "--no-sync")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "log")
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", log, "-o", options)

    def restart_immediately(self) -> None:
        """``pg_ctl restart -m immediate``: every backend dies at once, then recovery; returns once up."""
        # -l again: without it the new postmaster would hold pg_ctl's output pipe open.
        self._run(
            "pg_ctl", "restart", "-m", "immediate", "-w", "-D", str(self.data), "-l", str(self.folder / "log")
        )

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, or None when it is down."""
        pid_file = self.data / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def stop(self) -> None:
        """Stop it (immediate: nothing of it is kept)."""
        if self.postmaster_pid() is not None:
            self._run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(self.data))

    def log(self) -> str:
        """What the server logged."""
        return (self.folder / "log").read_text(errors="replace")

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=120)


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for this drill alone, removed afterwards."""
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        need("PostgreSQL", "initdb and pg_ctl are not installed, and this drill starts its own cluster")
    # Not under pytest's tmp_path: as root that is private to root, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="digest-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = PostgresServer(folder, free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Processes:
    """Worker and beat processes of a drill, each logging to its own file; all stopped at the end."""

    folder: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[int, Path] = field(default_factory=dict)

    def start(self, argv: Sequence[str], settings: Settings, name: str) -> subprocess.Popen[bytes]:
        """Start ``argv`` with the environment that carries ``settings``, logging to ``<name>.log``."""
        log = self.folder / f"{name}.log"
        with log.open("ab") as output:
            process = subprocess.Popen(
                list(argv), env={**os.environ, **settings_env(settings)}, stdout=output, stderr=output
            )
        self.started.append(process)
        self.logs[process.pid] = log
        return process

    def worker(
        self, settings: Settings, name: str, queues: Sequence[str] = processes.ALL_QUEUES, **options: str
    ) -> subprocess.Popen[bytes]:
        """A Celery worker on ``queues``: ``pool`` (solo), ``concurrency`` (1), ``loglevel`` (WARNING)."""
        argv = processes.worker_command(
            queues, options.get("pool", "solo"), int(options.get("concurrency", 1))
        )
        argv[argv.index("-l") + 1] = options.get("loglevel", "WARNING")
        return self.start(argv, settings, name)

    def log_of(self, process: subprocess.Popen[bytes]) -> str:
        """What ``process`` wrote so far."""
        return self.logs[process.pid].read_text(errors="replace")

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """kill -9, and reap it."""
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        """Warm shutdown for all still running (SIGTERM), SIGKILL after a grace period."""
        processes.stop([process for process in self.started if process.poll() is None], grace=20)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Processes started by a drill, stopped at its end whatever happened."""
    started = Processes(tmp_path)
    yield started
    started.stop()


@dataclass(frozen=True)
class Due:
    """Subscribers prepared to be due: dispatching at ``at`` opens one window each, ending at ``slot``."""

    at: datetime
    slot: datetime
    how_many: int


def prepare_due(rt: Runtime, how_many: int) -> Due:
    """A migrated database with two tagged Python items and ``how_many`` daily subscribers due now.

    The slot is two to three hours before the real clock (workers claim with it), so a dispatch run again
    later in the drill finds nobody due and only re-enqueues what its requeue finds.
    """
    at = datetime.now(UTC).replace(microsecond=0)
    schedule = Schedule("daily", (at.hour - 2) % 24, 0, "UTC")
    slot = latest_slot(schedule, at)
    subscribed = slot - timedelta(hours=20)
    db.upgrade(rt.engine)
    with db.transaction(rt.sessions) as session:
        taxonomy.load(session, taxonomy.read_taxonomy(SMALL_TAXONOMY), subscribed)
        for number in range(how_many):
            subscribe(session, address(number), ["Python"], schedule, subscribed, confirmed=True)
    with feed_server() as server:
        server.routes["/feed"] = Route(
            # Undated items count as published when first seen: the drills run on the real clock, and a
            # fixed date would fall out of DIGEST_MAX_ITEM_AGE as the calendar moves on (issue 16).
            rss(
                ("p1", "Python 3.14 released", "Free-threaded."),
                ("p2", "Moving our Python services", "."),
                published=None,
            )
        )
        with db.transaction(rt.sessions) as session:
            session.add(
                Source(
                    url=server.url("/feed"),
                    name="loopback",
                    kind="news",
                    next_fetch_at=subscribed,
                    created_at=subscribed,
                )
            )
        [source_id] = crawl.claim_due_sources(rt.sessions, subscribed)
        outcome = crawl.refresh_and_tag(
            rt.sessions, rt.fetcher, rt.matchers, source_id, subscribed, random.Random(1)
        )
    assert outcome.new == 2
    return Due(at, slot, how_many)


def address(number: int) -> str:
    """The address of the ``number``-th prepared subscriber."""
    return f"reader{number}@example.com"


def statuses(rt: Runtime) -> dict[str, int]:
    """How many deliveries are in each status."""
    with db.transaction(rt.sessions) as session:
        return dict(
            session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).tuples().all()
        )


def message_ids(rt: Runtime) -> set[str]:
    """The Message-IDs the database says were sent."""
    with db.transaction(rt.sessions) as session:
        return set(session.scalars(select(Delivery.message_id).where(Delivery.status == "sent")))
