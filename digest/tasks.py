"""Celery app and thin tasks: primitive arguments in, one orchestrator call, explicit retry policy.

Only tasks, views and commands read the clock. ``app`` is configured from the environment when this
module is imported, which is what ``celery -A digest.tasks`` and ``digest worker`` rely on.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from celery import Celery, Task
from kombu.entity import Queue
from sqlalchemy.exc import InterfaceError, OperationalError

from digest.config import Settings, load_settings, parse_mailbox
from digest.db import transaction
from digest.deliver import alerts, bounces, digests, outbox
from digest.errors import MailError
from digest.ingest import crawl, queries
from digest.ops import logs, metrics, retention
from digest.runtime import Runtime
from digest.site.figures import daily

# A queue per stage, each with its own consumers, so a stage that waits (a slow SMTP server, a feed that
# trickles) holds up only its own queue: sending never delays crawling or the dispatch tick.
QUEUES = ("crawl", "match", "digest", "mail")
ROUTES = {
    "digest.crawl_tick": {"queue": "crawl"},
    "digest.crawl_source": {"queue": "crawl"},
    "digest.match_items": {"queue": "match"},
    "digest.dispatch_tick": {"queue": "digest"},
    "digest.send_delivery": {"queue": "mail"},
    # Aggregates over tags, like tagging itself: kept off the queue that sends digests on time.
    "digest.refresh_figures": {"queue": "match"},
    "digest.alert_tick": {"queue": "digest"},
    "digest.send_alert": {"queue": "mail"},
    # Long but light, off the queues that send on time.
    "digest.prune": {"queue": "match"},
    "digest.read_bounces": {"queue": "digest"},
}
MAIL_RETRIES = 8
MATCH_BATCH = 500
# Send tasks a dispatch tick publishes to Redis in one pipeline.
PUBLISH_BATCH = 1000
# A task is killed past this (prefork pools enforce it; solo and threads cannot): no task outlives it.
TASK_TIME_LIMIT = timedelta(minutes=30)
# A lost database connection (a restart, a failover, pg_terminate_backend) is retried after 1, 2, 4 ... s,
# at most this long apart; the pool drops the dead connection and opens a fresh one. Every task is
# idempotent.
DB_RETRY_MAX = timedelta(minutes=1)
DB_RETRIES = 6
RETRY_ON_DB: dict[str, Any] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": int(DB_RETRY_MAX.total_seconds()),
    "retry_jitter": True,
}
# Redis hands an unacknowledged message to another worker after this. A task with a countdown is held,
# unacknowledged, by the worker that fetched it until it runs, so this must exceed the longest countdown
# plus the longest run, or a retry would run twice (tests/faults/test_queues.py checks the relation).
VISIBILITY_TIMEOUT = timedelta(hours=2)
# Brokers that kombu polls (its virtual transports) cannot wake a consumer: a worker sleeps
# ``polling_interval`` (kombu's default: 1 s) whenever its queues are empty *or* its prefetch is full.
# With two prefork children and one message each, the parent slept a second every time both were busy:
# 1.5-2 digests/s against 40/s for ``digest send-due`` on the embedded default (issue 18,
# bench/embedded.py). A short poll and a deeper prefetch keep the children fed: each holds more work than
# a poll lasts. What a killed worker held is enqueued again by a later dispatch (``outbox.requeue``) and
# still claimed once, so exactly-once does not depend on how much a worker holds.
POLLED_SCHEMES = ("filesystem", "sqla+sqlite")
POLL_INTERVAL = timedelta(milliseconds=100)
POLLED_PREFETCH = 8
# One message reserved per process on a broker that pushes (Redis): a long task never sits on messages
# another worker could run.
PUSHED_PREFETCH = 1


def broker_options(settings: Settings) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL and transport options for ``DIGEST_BROKER_URL``.

    ``filesystem://PATH`` is kombu's filesystem transport, a real broker that needs no server.
    """
    url = settings.broker_url
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss"):
        return url, {"visibility_timeout": int(VISIBILITY_TIMEOUT.total_seconds())}
    if parts.scheme not in POLLED_SCHEMES:
        return url, {}
    polling = {"polling_interval": POLL_INTERVAL.total_seconds()}
    if parts.scheme != "filesystem":
        return url, polling
    folder = Path(unquote(parts.netloc + parts.path) or settings.home / "broker")
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return "filesystem://", {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "store_processed": False,
        # Otherwise kombu creates ./control in whatever directory the process started in.
        "control_folder": str(folder / "control"),
        **polling,
    }


def create_celery(settings: Settings) -> Celery:
    """The Celery app for these settings."""
    broker, transport_options = broker_options(settings)
    polled = urlsplit(settings.broker_url).scheme in POLLED_SCHEMES
    app = Celery("digest", broker=broker, set_as_current=True)
    app.conf.update(
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # Tasks are idempotent, so a task lost with its worker is run again rather than dropped.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=POLLED_PREFETCH if polled else PUSHED_PREFETCH,
        task_time_limit=int(TASK_TIME_LIMIT.total_seconds()),
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="digest",
        task_routes=ROUTES,
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
        # Beat reads the schedules table and re-reads it while running (run-time cadences, issue 7).
        beat_scheduler="digest.ops.beat:DatabaseScheduler",
    )
    return app


app = create_celery(load_settings())
# Connected here because every worker and beat imports this module before it starts.
logs.connect_celery()
metrics.connect_celery(app)
_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """This worker process's runtime, created after the fork on first use.

    Locked because a crawl worker runs tasks on threads (``--pool threads``) that share one runtime: one
    fetcher, so the per-host limit holds across them.
    """
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            # Tasks retry on a dropped database connection (``RETRY_ON_DB``): no pre-ping round trips.
            _runtime = Runtime(load_settings(), pre_ping=False)
        return _runtime


def _now() -> datetime:
    return datetime.now(UTC)


@app.task(name="digest.crawl_tick", max_retries=DB_RETRIES, **RETRY_ON_DB)
def crawl_tick() -> int:
    """Bring the query feeds in line with who follows what (issue 16), then claim every due source and
    enqueue one fetch per source."""
    rt, now = runtime(), _now()
    if rt.settings.skill_sources:
        with transaction(rt.sessions) as session:
            queries.reconcile(session, now, queries.bundled_templates(), queries.bundled_repositories())
    claimed = crawl.claim_due_sources(rt.sessions, now)
    for source_id in claimed:
        crawl_source.delay(source_id)
    return len(claimed)


@app.task(name="digest.crawl_source", max_retries=DB_RETRIES, **RETRY_ON_DB)
def crawl_source(source_id: int) -> dict[str, Any]:
    """Refresh one source (failures are recorded, not raised); its new items go to the matcher in batches."""
    rt = runtime()
    outcome = crawl.refresh_source(rt.sessions, rt.fetcher, source_id, _now(), rt.rng)
    for start in range(0, len(outcome.changed), MATCH_BATCH):
        match_items.delay(list(outcome.changed[start : start + MATCH_BATCH]))
    return {
        "source": outcome.source_id,
        "status": outcome.status,
        "new": outcome.new,
        "updated": outcome.updated,
    }


@app.task(name="digest.match_items", max_retries=DB_RETRIES, **RETRY_ON_DB)
def match_items(item_ids: list[int]) -> int:
    """Tag a batch of items with skills (never one task per item: a task costs about 1 ms of overhead)."""
    rt = runtime()
    return crawl.tag_items(rt.sessions, rt.matchers, item_ids)


@app.task(name="digest.dispatch_tick", max_retries=DB_RETRIES, **RETRY_ON_DB)
def dispatch_tick(now: str | None = None) -> int:
    """Open the window of every due subscription and enqueue its delivery."""
    at = datetime.fromisoformat(now) if now else _now()
    enqueued = 0
    # Batch by batch, so the first digests go out while a large dispatch is still opening windows.
    for batch in digests.dispatch_due(runtime().sessions, at):
        # One producer per batch, its publishes sent to Redis in pipelines of PUBLISH_BATCH (kombu's
        # Producer.batch; the filesystem broker publishes each at once): publishing a task at a time, a
        # round trip each, is most of a large tick's time (bench/dispatch.py). If the tick fails midway,
        # the deliveries whose tasks were not sent are pending, and a later tick enqueues them again.
        with app.producer_or_acquire() as producer, producer.batch(max_size=PUBLISH_BATCH):
            for delivery_id in batch:
                send_delivery.apply_async((delivery_id,), producer=producer)
        enqueued += len(batch)
    return enqueued


@app.task(name="digest.send_delivery", bind=True, max_retries=MAIL_RETRIES, **RETRY_ON_DB)
def send_delivery(self: Task, delivery_id: int) -> str:
    """Send one digest; temporary mail failures retry with exponential back-off."""
    rt = runtime()
    try:
        outcome = digests.send_delivery(
            rt.sessions,
            delivery_id,
            mailer=rt.mailer,
            composer=rt.composer,
            config=rt.delivery,
            now=_now(),
            cache=rt.windows,
        )
    except MailError as exc:
        delay = outbox.retry_delay(self.request.retries + 1)
        raise self.retry(exc=exc, countdown=delay.total_seconds()) from None
    return outcome.status


@app.task(name="digest.refresh_figures", max_retries=DB_RETRIES, **RETRY_ON_DB)
def refresh_figures() -> int:
    """Rebuild the daily skill figures that skill pages read (yesterday, today and the publication days of
    the items stored since the last refresh); the rows written."""
    now = _now()
    with transaction(runtime().sessions) as session:
        result = daily.refresh_days(session, daily.periodic_days(session, now), now=now)
    return result.daily_rows + result.pair_rows


@app.task(name="digest.prune", max_retries=DB_RETRIES, **RETRY_ON_DB)
def prune() -> int:
    """Delete what is past retention (issue 19), a batch a transaction; the rows deleted."""
    rt = runtime()
    result = retention.prune(rt.sessions, rt.retention, _now())
    return result.deliveries + result.items


@app.task(name="digest.read_bounces", max_retries=DB_RETRIES, **RETRY_ON_DB)
def read_bounces() -> int:
    """Read the bounce mailbox (issue 19), if one is set; the messages read."""
    rt = runtime()
    if not rt.settings.bounce_mailbox:
        return 0
    box = parse_mailbox(rt.settings.bounce_mailbox)
    return bounces.read_mailbox(rt.sessions, box, rt.settings.secret_key, _now()).read


@app.task(name="digest.alert_tick", max_retries=DB_RETRIES, **RETRY_ON_DB)
def alert_tick(now: str | None = None) -> int:
    """Open today's email of every trend alert that fires, and enqueue each (with those whose task may be
    lost; not those waiting out a retry's back-off)."""
    at = datetime.fromisoformat(now) if now else _now()
    delivery_ids = alerts.check(runtime().sessions, at)
    for delivery_id in delivery_ids:
        send_alert.delay(delivery_id)
    return len(delivery_ids)


@app.task(name="digest.send_alert", bind=True, max_retries=MAIL_RETRIES, **RETRY_ON_DB)
def send_alert(self: Task, delivery_id: int) -> str:
    """Send one trend alert email; temporary mail failures retry with exponential back-off."""
    rt = runtime()
    try:
        outcome = alerts.send(
            rt.sessions, delivery_id, mailer=rt.mailer, composer=rt.composer, config=rt.delivery, now=_now()
        )
    except MailError as exc:
        delay = outbox.retry_delay(self.request.retries + 1)
        raise self.retry(exc=exc, countdown=delay.total_seconds()) from None
    return outcome.status
