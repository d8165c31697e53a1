"""Drill 6: two beat processes at once, as when a second one is started by mistake."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from digest import db
from digest.config import load_settings
from digest.models import Source
from digest.ops import processes
from digest.ops.beat import LOCK_NAME
from digest.runtime import Runtime
from tests.faults.conftest import Processes, RedisServer, prepare_due, statuses, wait_for, wait_for_count
from tests.support import Route, feed_server, rss, smtp_sink

# A drill waits on progress (wait_for_count fails after a minute with none), so its overall limit is
# generous: thousands of digests through real processes take minutes on two busy cores (issue 13).
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(900)]
SUBSCRIBERS = 20
TICK_QUEUES = ("crawl", "digest", "match")


def test_a_second_beat_sends_nothing_until_the_first_dies_and_no_crawl_or_digest_is_doubled(
    tmp_path: Path, postgres_url: str, private_redis: RedisServer, procs: Processes
) -> None:
    """Two ``digest beat`` processes on every schedule at 1 s, no worker yet: every queued tick comes from
    the first (Celery stamps the sender's pid on each message). Killed with SIGKILL, its Redis lock is
    left to expire (its expiry shortened here rather than waited for), and the second takes over. Then a
    worker runs every tick both sent: each feed is fetched once and each subscriber gets one digest."""
    with smtp_sink() as sink, feed_server() as feeds:
        feeds.routes["/feed"] = Route(rss(("b1", "Go generics in practice", "")))
        settings = load_settings(
            home=tmp_path / "home",
            secret_key="test-secret-key-0123456789abcdefghijkl",
            database_url=postgres_url,
            broker_url=private_redis.url,
            mail_url=sink.url,
            block_private_addresses=False,
        )
        rt = Runtime(settings)
        prepare_due(rt, SUBSCRIBERS)
        # Beat touches its schedule file there (the health check's heartbeat).
        settings.home.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        with db.transaction(rt.sessions) as session:
            session.add(
                Source(url=feeds.url("/feed"), name="b", kind="news", next_fetch_at=now, created_at=now)
            )
            session.execute(text("UPDATE schedules SET every_seconds = 1 WHERE every_seconds IS NOT NULL"))
        first = procs.start(processes.beat_command(), settings, "beat-first")
        wait_for(lambda: _senders(private_redis)[_origin(first)] >= 3, "the first beat's ticks")
        second = procs.start(processes.beat_command(), settings, "beat-second")
        wait_for(lambda: "another beat holds the lock" in procs.log_of(second), "the second beat to stand by")
        sent_by_first = _senders(private_redis)[_origin(first)]
        wait_for(lambda: _senders(private_redis)[_origin(first)] >= sent_by_first + 6, "more ticks")
        while_both_ran = _senders(private_redis)

        procs.kill(first)
        client = private_redis.client()
        # The lock's expiry, moved on from up to 90 s to now: the clock is faked, the takeover is real.
        expiry_ms = client.pttl(LOCK_NAME)
        client.pexpire(LOCK_NAME, 1)
        client.close()
        wait_for(lambda: _senders(private_redis)[_origin(second)] >= 3, "the second beat to take over")
        took_over = "took over" in procs.log_of(second)

        processes.stop([second])
        procs.worker(settings, "worker", processes.ALL_QUEUES)
        wait_for_count(lambda: statuses(rt).get("sent", 0), SUBSCRIBERS, "every digest")
        wait_for(lambda: not any(_queued(private_redis).values()), "every tick both beats sent to be run")
        procs.stop()
        final = statuses(rt)
        rt.close()

    assert while_both_ran[_origin(second)] == 0
    assert 0 < expiry_ms <= 90_000
    assert took_over
    assert final == {"sent": SUBSCRIBERS}
    assert [path for path, _ in feeds.requests] == ["/feed"]
    assert Counter(str(m["To"]) for m in sink.messages).most_common(1)[0][1] == 1
    assert len(sink.messages) == SUBSCRIBERS


def _origin(process: subprocess.Popen[bytes]) -> str:
    return f"gen{process.pid}@"


def _senders(server: RedisServer) -> Counter[str]:
    """How many queued messages each sending process published, by its ``origin`` prefix (gen<pid>@)."""
    client = server.client()
    counts: Counter[str] = Counter()
    for queue in TICK_QUEUES:
        for raw in client.lrange(queue, 0, -1):
            origin = json.loads(raw)["headers"]["origin"]
            counts[origin.split("@")[0] + "@"] += 1
    client.close()
    return counts


def _queued(server: RedisServer) -> dict[str, int]:
    client = server.client()
    lengths = {queue: int(client.llen(queue)) for queue in (*TICK_QUEUES, "mail")}
    client.close()
    return lengths
