"""Prometheus metrics: what the pipeline counts, the task latency, and the queue lengths read on scrape.

    digest_fetches_total{status}          feed fetches: ok, not-modified, error
    digest_items_ingested_total           new items stored
    digest_tags_written_total             skill tags written by the matcher
    digest_digests_total{status}          digests finished: sent, skipped, failed
    digest_task_duration_seconds{task}    histogram of Celery task run time, by task name
    digest_queue_length{queue}            messages waiting in each Celery queue (web app only)
    digest_broker_up                      1 if the broker answered the queue-length read (web app only)

Where they are served: the web app's ``/metrics`` (its own process, plus the queue lengths, read from the
broker at each scrape so they are never stale), and each worker node on ``--metrics-port``. A prefork
worker counts in its child processes, so ``digest worker`` points prometheus_client's multiprocess mode at
a folder of its own under ``DIGEST_HOME/metrics`` before celery starts, and the node's exporter adds up
its children's files. Queue lengths are read by the web app only, so N workers do not report them N times.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import redis
import structlog
from celery import bootsteps, signals
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from digest.records import FINAL

FETCH_STATUSES = ("ok", "not-modified", "error")
DIGEST_STATUSES = FINAL
# prometheus_client reads this variable itself when it is imported; it is its contract, not a setting.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Every kombu Redis queue is a list per priority step; an unprioritised message goes to the plain name.
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)
BROKER_TIMEOUT = 2.0

FETCHES = Counter("digest_fetches", "Feed fetches by outcome.", ["status"])
ITEMS = Counter("digest_items_ingested", "New items stored.")
TAGS = Counter("digest_tags_written", "Skill tags written by the matcher.")
DIGESTS = Counter("digest_digests", "Digests finished, by outcome.", ["status"])
TASK_SECONDS = Histogram(
    "digest_task_duration_seconds",
    "Run time of Celery tasks, by task name.",
    ["task"],
    # From one ~1 ms task to a slow feed (30 s timeout) or a dispatch of thousands.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
for _status in FETCH_STATUSES:
    FETCHES.labels(_status)
for _status in DIGEST_STATUSES:
    DIGESTS.labels(_status)
_started: dict[str, float] = {}
logger = structlog.get_logger(__name__)


def fetched(status: str, new_items: int) -> None:
    """Count one feed fetch and the new items it stored."""
    FETCHES.labels(status).inc()
    ITEMS.inc(new_items)


def tagged(tags: int) -> int:
    """Count the tags a matcher batch wrote; returns ``tags`` so a caller can count and return at once."""
    TAGS.inc(tags)
    return tags


def delivered(status: str) -> None:
    """Count one digest that reached a final status (sent, skipped or failed)."""
    DIGESTS.labels(status).inc()


def queue_depths(
    broker_url: str, transport_options: Mapping[str, Any], queues: Sequence[str]
) -> dict[str, int] | None:
    """Messages waiting in each queue, read from the broker; None when this broker cannot say.

    Redis: the lists kombu keeps per queue and priority. The filesystem transport: the message files of
    each queue in its folder. Raises ``OSError`` (or redis' ``RedisError``) when the broker does not answer.
    """
    scheme = urlsplit(broker_url).scheme
    if scheme in ("redis", "rediss"):
        client = redis.Redis.from_url(
            broker_url, socket_timeout=BROKER_TIMEOUT, socket_connect_timeout=BROKER_TIMEOUT
        )
        try:
            with client.pipeline(transaction=False) as pipe:
                for queue in queues:
                    for key in _redis_keys(queue):
                        pipe.llen(key)
                lengths = iter(pipe.execute())
            return {queue: sum(next(lengths) for _ in _redis_keys(queue)) for queue in queues}
        finally:
            client.close()
    if scheme == "filesystem":
        folder = Path(transport_options["data_folder_in"])
        # kombu names a message file <time>_<uuid>.<queue>.msg.
        names = [name.partition(".")[2] for name in os.listdir(folder)]
        return {queue: names.count(f"{queue}.msg") for queue in queues}
    return None


def _redis_keys(queue: str) -> list[str]:
    return [queue, *(f"{queue}{REDIS_PRIORITY_SEPARATOR}{step}" for step in REDIS_PRIORITY_STEPS)]


class QueueCollector:
    """``digest_queue_length`` and ``digest_broker_up``, read from the broker at every scrape."""

    def __init__(self, broker_url: str, transport_options: Mapping[str, Any], queues: Sequence[str]):
        self._broker = (broker_url, dict(transport_options), tuple(queues))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read the queue lengths now; a broker that does not answer reports ``digest_broker_up 0``."""
        lengths = GaugeMetricFamily(
            "digest_queue_length", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        up = GaugeMetricFamily("digest_broker_up", "1 if the broker answered the queue-length read.")
        try:
            depths = queue_depths(*self._broker)
        except (OSError, RedisError):
            # A broker that is down is a value to alert on, not a failed scrape that hides the others.
            up.add_metric([], 0)
            yield up
            return
        if depths is None:
            return
        for queue, depth in depths.items():
            lengths.add_metric([queue], depth)
        up.add_metric([], 1)
        yield lengths
        yield up


class Scrape:
    """Several collectors as one, so a single exposition shows them all."""

    def __init__(self, *collectors: Collector) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Any]:
        """Every metric of every collector, in order."""
        for collector in self._collectors:
            yield from collector.collect()


def process_metrics() -> Collector:
    """This process's metrics, or, in multiprocess mode, those of every process writing to the folder."""
    folder = os.environ.get(MULTIPROCESS_VARIABLE)
    if not folder:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]  # untyped in the library
    return registry


def prepare_multiprocess_folder(home: Path) -> Path:
    """An empty folder for this worker node's metric files: ``HOME/metrics/<host>-<pid>``.

    The host name keeps apart containers that share ``DIGEST_HOME`` (each may be pid 1), and the pid keeps
    apart workers on one host. Folders of this host whose process is gone are removed first.
    """
    host = socket.gethostname()
    parent = home / "metrics"
    parent.mkdir(parents=True, exist_ok=True)
    for folder in parent.glob(f"{host}-*"):
        pid = folder.name.rpartition("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    folder = parent / f"{host}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerExporter(bootsteps.StartStopStep):  # type: ignore[misc]  # celery ships no types
    """A worker node's ``/metrics`` on ``--metrics-port``, served by a thread in the node's main process."""

    def __init__(self, parent: Any, metrics_port: int = 0, metrics_host: str = "127.0.0.1", **options: Any):
        super().__init__(parent, **options)
        self.port = metrics_port
        self.host = metrics_host
        self.server: Any = None

    def start(self, parent: Any) -> None:
        """Listen, unless no port was given."""
        if self.port:
            self.server, _ = start_http_server(self.port, addr=self.host, registry=process_metrics())
            logger.info("metrics exporter listening", host=self.host, port=self.port)

    def stop(self, parent: Any) -> None:
        """Stop listening."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def connect_celery(app: Any) -> None:
    """Time every task, and give ``celery worker`` the ``--metrics-port`` and ``--metrics-host`` options."""
    signals.task_prerun.connect(_task_started, weak=False, dispatch_uid="digest.metrics")
    signals.task_postrun.connect(_task_finished, weak=False, dispatch_uid="digest.metrics")
    app.user_options["worker"].add(
        click.Option(["--metrics-port"], type=int, default=0, help="Serve Prometheus metrics on this port.")
    )
    app.user_options["worker"].add(
        click.Option(["--metrics-host"], default="127.0.0.1", help="Address of the metrics port.")
    )
    app.steps["worker"].add(WorkerExporter)


def _task_started(task_id: str, **_: Any) -> None:
    _started[task_id] = time.perf_counter()


def _task_finished(task_id: str, task: Any, **_: Any) -> None:
    started = _started.pop(task_id, None)
    if started is not None:
        TASK_SECONDS.labels(task.name).observe(time.perf_counter() - started)
