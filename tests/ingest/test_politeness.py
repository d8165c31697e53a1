"""Politeness per host (issue 16): DIGEST_HOST_LIMITS holds across processes, in the database or Redis.

Two worker processes fetch from two loopback hosts at once: 127.0.0.2 allows one request at a time, a
second apart; 127.0.0.3 allows two at a time. The servers record when each request arrived and ended.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any

import pytest

from digest.config import HostLimit, load_settings, parse_host_limits
from digest.db import make_engine, make_sessions
from digest.errors import ConfigError
from digest.ingest.fetch import FetchConfig, Fetcher
from digest.ingest.politeness import DatabaseGate, Gate, RedisGate
from digest.runtime import Runtime

LIMITS = "127.0.0.2=1/1s,127.0.0.3=2"
REQUESTS_PER_WORKER = 3
HOLD = 0.3


class Recorder:
    """A loopback server on one address that takes HOLD seconds per answer and notes each request."""

    def __init__(self, address: str) -> None:
        self.spans: list[tuple[float, float]] = []
        lock = threading.Lock()
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                start = time.monotonic()
                time.sleep(HOLD)  # the server is slow on purpose: requests would overlap if allowed
                body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with lock:
                    spans.append((start, time.monotonic()))

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.server.server_address[1]}/feed"


@contextmanager
def recorders() -> Iterator[tuple[Recorder, Recorder]]:
    pair = (Recorder("127.0.0.2"), Recorder("127.0.0.3"))
    threads = [threading.Thread(target=r.server.serve_forever, daemon=True) for r in pair]
    for thread in threads:
        thread.start()
    try:
        yield pair
    finally:
        for recorder in pair:
            recorder.server.shutdown()
            recorder.server.server_close()


def worker(database_url: str, redis_url: str | None, urls: list[str]) -> None:
    """One process: a fetcher with its own gate, fetching every URL on threads at once."""
    engine = make_engine(database_url)
    gate: Gate = RedisGate(redis_url) if redis_url else DatabaseGate(make_sessions(engine))
    config = FetchConfig(block_private=False, per_host=8, host_limits=parse_host_limits(LIMITS))
    with Fetcher(config, gate) as fetcher, ThreadPoolExecutor(len(urls)) as pool:
        for result in pool.map(fetcher.fetch, urls):
            assert result.status_code == 200
    engine.dispose()


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def run_two_workers(database_url: str, redis_url: str | None) -> tuple[Recorder, Recorder]:
    context = multiprocessing.get_context("spawn")
    with recorders() as (slow, wide):
        urls = [slow.url] * REQUESTS_PER_WORKER + [wide.url] * REQUESTS_PER_WORKER
        processes = [context.Process(target=worker, args=(database_url, redis_url, urls)) for _ in range(2)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
            assert process.exitcode == 0
    return slow, wide


def check(slow: Recorder, wide: Recorder) -> None:
    assert len(slow.spans) == len(wide.spans) == 2 * REQUESTS_PER_WORKER
    assert most_at_once(slow.spans) == 1
    starts = sorted(start for start, _ in slow.spans)
    # The spacing counts from the end of the previous request too, so starts are at least a second apart
    # however late a request reaches the server after its slot was taken.
    assert min(b - a for a, b in pairwise(starts)) >= 1.0
    assert most_at_once(wide.spans) <= 2


def test_two_processes_share_the_host_limits_through_the_database(rt: Runtime) -> None:
    check(*run_two_workers(rt.settings.database_url, None))


def test_two_processes_share_the_host_limits_through_redis(rt: Runtime, redis_url: str) -> None:
    check(*run_two_workers(rt.settings.database_url, redis_url))


def test_host_limits_are_read_with_a_spacing_or_without() -> None:
    assert parse_host_limits("export.arxiv.org=1/3s, hnrss.org=2") == {
        "export.arxiv.org": HostLimit(1, timedelta(seconds=3)),
        "hnrss.org": HostLimit(2),
    }
    assert parse_host_limits("") == {}


@pytest.mark.parametrize("text", ["arxiv", "export.arxiv.org=0", "export.arxiv.org=1/soon", "a b=1"])
def test_a_bad_host_limit_stops_start_up_with_one_line(tmp_path: object, text: str) -> None:
    with pytest.raises(ConfigError, match="DIGEST_HOST_LIMITS") as error:
        load_settings(home=tmp_path, host_limits=text)

    assert "\n" not in str(error.value)
