"""Logs, metrics and ``digest status``: what ops see of a crawl, a dispatch, the queues and the workers."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from digest import db
from digest.cli import app as cli_app
from digest.config import Settings, load_settings, settings_env
from digest.deliver import digests
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.errors import MailError
from digest.ingest import crawl, taxonomy
from digest.models import Source
from digest.ops import processes
from digest.runtime import Runtime
from digest.tasks import QUEUES, create_celery
from digest.web import create_app
from tests.conftest import SMALL_TAXONOMY
from tests.support import Route, feed_server, free_port, rss
from tests.web_support import serve

NOW = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
DAILY = Schedule("daily", 8, 0, "UTC")
WAIT = 60.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(body: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def runtime_on(settings: Settings) -> Runtime:
    """A migrated database holding the small test taxonomy."""
    rt = Runtime(settings)
    db.upgrade(rt.engine)
    with db.transaction(rt.sessions) as session:
        taxonomy.load(session, taxonomy.read_taxonomy(SMALL_TAXONOMY), NOW)
    return rt


METRICS_TOKEN = "metrics-admin-token-0123456789abcdef"
# /metrics is behind the admin token (issue 14, finding 8), sent as Prometheus sends it.
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def sqlite_settings(tmp_path: Path, **overrides: object) -> Settings:
    # Test feeds are served on loopback, which the private-address guard would refuse.
    return load_settings(
        home=tmp_path / "home",
        secret_key="test-secret-key-0123456789abcdefghijkl",
        block_private_addresses=False,
        admin_token=METRICS_TOKEN,
        **overrides,
    )


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = runtime_on(sqlite_settings(tmp_path))
    yield runtime
    runtime.close()


@pytest.fixture
def web(rt: Runtime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings)) as client:
        yield client


@pytest.fixture
def use_settings(monkeypatch: pytest.MonkeyPatch) -> Callable[[Settings], None]:
    """Puts a runtime's settings in the environment, where the command line reads them."""

    def apply(settings: Settings) -> None:
        for name, text in settings_env(settings).items():
            monkeypatch.setenv(name, text)

    return apply


def add_source(rt: Runtime, url: str) -> int:
    with db.transaction(rt.sessions) as session:
        source = Source(url=url, name=url.rsplit("/", 1)[1], kind="news", next_fetch_at=NOW, created_at=NOW)
        session.add(source)
        session.flush()
        return source.id


def status_json(*args: str, exit_code: int = 0) -> dict[str, object]:
    result = CliRunner().invoke(cli_app, ["status", "--json", *args])
    assert result.exit_code == exit_code, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


class RefusingMailer:
    """An SMTP server that answers 550 to everything."""

    def send(self, message: object) -> None:
        raise MailError("550 mailbox unavailable", permanent=True, code=550)


def test_metrics_count_the_fetches_items_and_tags_of_a_loopback_crawl(rt: Runtime, web: httpx.Client) -> None:
    before = scrape(web.get("/metrics", headers=SCRAPER).text)
    with feed_server() as server:
        server.routes["/feed"] = Route(
            rss(("p1", "Python 3.14 released", "Free-threaded."), ("p2", "Kubernetes 1.35", "A scheduler."))
        )
        good = add_source(rt, server.url("/feed"))
        missing = add_source(rt, server.url("/gone"))
        outcome = crawl.refresh_source(rt.sessions, rt.fetcher, good, NOW, random.Random(1))
        tags = crawl.tag_items(rt.sessions, rt.matchers, outcome.changed)
        crawl.refresh_source(rt.sessions, rt.fetcher, missing, NOW, random.Random(1))

    response = web.get("/metrics", headers=SCRAPER)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = scrape(response.text)
    delta = {
        "ok": value(after, "digest_fetches_total", status="ok")
        - value(before, "digest_fetches_total", status="ok"),
        "error": value(after, "digest_fetches_total", status="error")
        - value(before, "digest_fetches_total", status="error"),
        "items": value(after, "digest_items_ingested_total") - value(before, "digest_items_ingested_total"),
        "tags": value(after, "digest_tags_written_total") - value(before, "digest_tags_written_total"),
    }
    assert tags >= 2
    assert delta == {"ok": 1, "error": 1, "items": 2, "tags": tags}
    # The embedded broker's queues are read from its folder at every scrape.
    assert value(after, "digest_queue_length", queue="crawl") == 0
    assert value(after, "digest_broker_up") == 1


def test_metrics_count_digests_sent_skipped_and_failed(rt: Runtime, web: httpx.Client) -> None:
    with feed_server() as server:
        server.routes["/feed"] = Route(rss(("p1", "Python 3.14 released", "Free-threaded.")))
        crawl.refresh_and_tag(
            rt.sessions,
            rt.fetcher,
            rt.matchers,
            add_source(rt, server.url("/feed")),
            NOW - timedelta(days=1),
            random.Random(1),
        )
    with db.transaction(rt.sessions) as session:
        for email, skill in (("one@example.com", "Python"), ("two@example.com", "Kubernetes")):
            subscribe(session, email, [skill], DAILY, NOW - timedelta(days=2), confirmed=True)
        subscribe(session, "three@example.com", ["Python"], DAILY, NOW - timedelta(days=2), confirmed=True)
    before = scrape(web.get("/metrics", headers=SCRAPER).text)
    opened = [delivery for batch in digests.dispatch_due(rt.sessions, NOW) for delivery in batch]
    statuses = []
    for number, delivery_id in enumerate(opened):
        mailer = RefusingMailer() if number == len(opened) - 1 else rt.mailer
        outcome = digests.send_delivery(
            rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=NOW
        )
        statuses.append(outcome.status)

    after = scrape(web.get("/metrics", headers=SCRAPER).text)

    assert sorted(statuses) == ["failed", "sent", "skipped"]
    assert {
        status: value(after, "digest_digests_total", status=status)
        - value(before, "digest_digests_total", status=status)
        for status in ("sent", "skipped", "failed")
    } == {"sent": 1, "skipped": 1, "failed": 1}


def test_the_queue_length_gauge_reads_redis(tmp_path: Path, redis_url: str) -> None:
    settings = sqlite_settings(tmp_path, broker_url=redis_url)
    rt = runtime_on(settings)
    celery = create_celery(settings)
    for source_id in (1, 2, 3):
        celery.send_task("digest.crawl_source", args=[source_id])
    celery.send_task("digest.match_items", args=[[1, 2]])

    with serve(create_app(settings)) as web:
        samples = scrape(web.get("/metrics", headers=SCRAPER).text)

    depths = {queue: value(samples, "digest_queue_length", queue=queue) for queue in QUEUES}
    assert depths == {**dict.fromkeys(QUEUES, 0), "crawl": 3, "match": 1}
    assert value(samples, "digest_broker_up") == 1
    rt.close()


def test_a_broker_that_does_not_answer_is_a_zero_not_a_failed_scrape(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    rt = runtime_on(settings)

    with serve(create_app(settings)) as web:
        response = web.get("/metrics", headers=SCRAPER)

    assert response.status_code == 200
    samples = scrape(response.text)
    assert value(samples, "digest_broker_up") == 0
    assert ("digest_fetches_total", (("status", "ok"),)) in samples
    rt.close()


def test_status_on_sqlite_says_workers_are_not_available_and_answers_quickly(
    rt: Runtime, use_settings: Callable[[Settings], None]
) -> None:
    use_settings(rt.settings)
    create_celery(rt.settings).send_task("digest.crawl_source", args=[1])
    (rt.settings.home / "celerybeat-schedule").touch()
    with feed_server() as server:
        failing = add_source(rt, server.url("/gone"))
        for _ in range(2):
            crawl.refresh_source(rt.sessions, rt.fetcher, failing, NOW, random.Random(1))

    started = time.monotonic()
    data = status_json()

    assert time.monotonic() - started < 5
    assert data["broker"] == "filesystem"
    assert data["queues"] == {**dict.fromkeys(QUEUES, 0), "crawl": 1}
    assert data["workers"] is None and "not available" in str(data["workers_note"])
    assert data["beat_alive"] is True and data["beat_last_tick"]
    [feed] = data["failing_feeds"]  # type: ignore[misc]
    assert feed["id"] == failing and feed["failures"] == 2
    # In the admin's words (digest.ingest.catalog.in_words), then what the fetcher said.
    assert feed["error"].startswith("the feed's address no longer exists — HTTP 404 Not Found")
    # Fetched at the pinned NOW, long before the real clock `status` reads: overdue, a warning only.
    overdue = data["overdue_feeds"]
    assert isinstance(overdue, list) and [late["id"] for late in overdue] == [failing]
    assert data["warnings"] == ["1 feed overdue by more than twice the interval"]
    assert data["deliveries_last_hour"] == {"sent": 0, "skipped": 0, "failed": 0}
    assert data["deliveries_waiting"] == {"pending": 0, "sending": 0}


def test_status_on_redis_reads_the_queues_and_finds_no_worker(
    tmp_path: Path, redis_url: str, use_settings: Callable[[Settings], None]
) -> None:
    settings = sqlite_settings(tmp_path, broker_url=redis_url)
    rt = runtime_on(settings)
    use_settings(settings)
    create_celery(settings).send_task("digest.dispatch_tick")

    data = status_json(exit_code=1)

    assert data["broker"] == "redis"
    assert data["queues"] == {**dict.fromkeys(QUEUES, 0), "digest": 1}
    assert data["workers"] == []
    assert data["beat_last_tick"] is None and data["beat_alive"] is False
    rt.close()


def test_status_says_so_in_one_line_when_the_broker_is_down(
    tmp_path: Path, use_settings: Callable[[Settings], None]
) -> None:
    settings = sqlite_settings(tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    rt = runtime_on(settings)
    use_settings(settings)

    data = status_json(exit_code=1)

    assert data["queues"] is None and str(data["queues_note"]).startswith("broker not answering")
    assert data["workers"] is None and "not asked" in str(data["workers_note"])
    rt.close()


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def worker_metrics(port: int) -> Samples:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return scrape(response.read().decode())
    except OSError:
        return {}


@pytest.mark.slow
def test_a_prefork_worker_logs_json_lines_with_bound_ids_and_serves_its_childrens_counts(
    tmp_path: Path, redis_url: str, use_settings: Callable[[Settings], None]
) -> None:
    settings = sqlite_settings(tmp_path, broker_url=redis_url)
    rt = runtime_on(settings)
    use_settings(settings)
    port = free_port()
    stderr = tmp_path / "worker.log"
    command = [sys.executable, "-m", "digest.cli", "worker", "--queues", "crawl,match", "--concurrency", "1"]
    command += ["--metrics-port", str(port)]
    with feed_server() as server, stderr.open("wb") as log:
        server.routes["/feed"] = Route(rss(("p1", "Python 3.14 released", "Free-threaded.")))
        source_id = add_source(rt, server.url("/feed"))
        worker = subprocess.Popen(command, env=os.environ.copy(), stdout=log, stderr=log)
        try:
            task_id = create_celery(settings).send_task("digest.crawl_source", args=[source_id]).id
            wait_for(
                lambda: value(worker_metrics(port), "digest_tags_written_total") >= 1,
                "the worker's metrics to count the crawl and its tags",
            )
            samples = worker_metrics(port)
            alive = status_json(exit_code=1)["workers"]  # no beat runs here
        finally:
            processes.stop([worker])
    rt.close()

    # Counted in the pool's child process, served by the node's main process (multiprocess mode).
    assert value(samples, "digest_fetches_total", status="ok") == 1
    assert value(samples, "digest_items_ingested_total") == 1
    assert value(samples, "digest_task_duration_seconds_count", task="digest.crawl_source") == 1
    assert alive and len(alive) == 1  # type: ignore[arg-type]
    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.startswith("{")]
    [done] = [line for line in lines if line.get("task_id") == task_id and line["event"] == "task done"]
    assert done["task"] == "digest.crawl_source" and done["source_id"] == source_id
    assert done["level"] == "info" and done["state"] == "SUCCESS" and done["result"]["new"] == 1
    assert done["timestamp"].endswith("Z") and done["duration_ms"] >= 0
    matched = [
        line for line in lines if line.get("task") == "digest.match_items" and line["event"] == "task done"
    ]
    assert matched and "source_id" not in matched[0]


def test_logs_are_json_lines_off_a_terminal_and_carry_the_bound_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io
    import logging

    import structlog

    from digest.ops import logs

    stream = io.StringIO()
    logs.configure("INFO", stream=stream)
    try:
        structlog.contextvars.bind_contextvars(task_id="t-1", delivery_id=7)
        logging.getLogger("celery.worker").warning("lost connection to %s", "redis")
        structlog.get_logger("digest").info("sent", items=3)
    finally:
        structlog.contextvars.clear_contextvars()
        logging.getLogger().handlers.clear()

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "lost connection to redis" and first["logger"] == "celery.worker"
    assert first["task_id"] == "t-1" and first["delivery_id"] == 7 and first["level"] == "warning"
    assert second == {**second, "event": "sent", "items": 3, "task_id": "t-1", "delivery_id": 7}


def test_the_ids_bound_to_a_task_come_from_its_arguments_by_name() -> None:
    from digest import tasks
    from digest.ops import logs

    assert logs.bound_ids(tasks.crawl_source.run, [5], {}) == {"source_id": 5}
    assert logs.bound_ids(tasks.send_delivery.run, [], {"delivery_id": 9}) == {"delivery_id": 9}
    assert logs.bound_ids(tasks.match_items.run, [[1, 2]], {}) == {}
