"""`digest up` runs web, worker and beat together; beat's ticks reach the worker; Ctrl-C stops all three."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.support import FeedServer, Route, feed_server, free_port, rss

pytestmark = pytest.mark.slow


def environment(home: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"DIGEST_HOME": str(home)}


def digest(home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", *args],
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def processes_of(home: Path) -> list[int]:
    """Processes whose environment names this DIGEST_HOME: what `digest up` started."""
    marker = f"DIGEST_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def wait_for(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        running.routes["/feed"] = Route(rss(("u1", "Rust in the kernel", "Notes.")))
        yield running


def test_up_runs_web_worker_and_beat_until_ctrl_c(tmp_path: Path, server: FeedServer) -> None:
    home = tmp_path / "home"
    digest(home, "db", "upgrade")
    digest(home, "feeds", "add", server.url("/feed"))
    engine = create_engine(f"sqlite:///{home / 'digest.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE schedules SET every_seconds = 1"))
    engine.dispose()
    port = free_port()
    log = tmp_path / "up.log"
    with log.open("wb") as output:
        up = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "up", "--port", str(port)],
            env=environment(home),
            start_new_session=True,
            stdout=output,
            stderr=output,
        )
    try:
        wait_for(lambda: _healthy(port), 60, "the web app")
        wait_for(lambda: _crawled(home), 60, "beat's crawl tick to reach the worker")
        assert len(processes_of(home)) >= 4

        os.killpg(up.pid, signal.SIGINT)
        up.wait(timeout=30)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()

    wait_for(lambda: processes_of(home) == [], 10, "every child process to exit")
    assert not _healthy(port)
    assert "Traceback" not in log.read_text()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json() == {"ok": True}
    except httpx.HTTPError:
        return False


def _crawled(home: Path) -> bool:
    # Read from the database: a `digest feeds list` per poll costs seconds of CPU on a loaded machine.
    engine = create_engine(f"sqlite:///{home / 'digest.sqlite3'}", connect_args={"timeout": 30})
    try:
        with engine.connect() as connection:
            feeds = connection.execute(
                text("SELECT last_status, (SELECT count(*) FROM items) FROM sources")
            ).all()
    finally:
        engine.dispose()
    return [tuple(feed) for feed in feeds] == [("ok", 1)]
