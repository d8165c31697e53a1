"""``digest demo``: the whole pipeline on the embedded default, with bundled feeds on loopback.

    upgrade schema + taxonomy -> serve demo feeds on 127.0.0.1 -> crawl them (real fetch and parse)
    -> tag -> daily skill figures -> pause the demo feeds (their server stops with the demo)
    -> demo subscribers -> dispatch through a real Celery worker -> emails in the outbox
    -> the figures it counted and the next steps (``demo_report``)

The demo runs on a clock that starts eight days back, so every cadence has a full window of items by
"now" without inventing items: crawling happens at the start of that clock, digests at its end. Run
twice, it finds the same items, the same subscribers and the windows already sent, and sends nothing new.

Digests carry only fresh items (issue 16), and the bundled feeds were written once, on fixed dates: the
first run copies them into DIGEST_HOME with the dates of the self-written feeds moved by whole days so
their newest post is from the day the demo's clock starts. The arXiv answers keep their real (old) dates:
they show on skill pages, never in a digest. Later runs serve the same copies, so they are not modified.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from digest import PACKAGE_DIR
from digest.cli import bootstrap as setup
from digest.cli.demo_report import DemoReport, report
from digest.db import transaction
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.ingest import catalog, crawl
from digest.ingest.fetch import Fetcher
from digest.models import Delivery, Source, Subscription
from digest.ops import processes
from digest.records import FINAL, DeliveryStatus
from digest.runtime import Runtime
from digest.site.figures import daily

FEEDS = PACKAGE_DIR / "demo_data" / "feeds"
CLOCK_BACK = timedelta(days=8)
WAIT_FOR_WORKER = 90.0


@dataclass(frozen=True, slots=True)
class DemoSubscriber:
    """One of the demo's subscribers."""

    email: str
    cadence: str
    timezone: str
    skills: tuple[str, ...]
    hour: int = 8
    weekday: int = 0


SUBSCRIBERS = (
    DemoSubscriber(
        "hourly.reader@example.com", "hourly", "Europe/London", ("large language models", "Python")
    ),
    DemoSubscriber(
        "daily.reader@example.net", "daily", "America/New_York", ("Kubernetes", "distributed systems", "Go")
    ),
    DemoSubscriber(
        "weekly.reader@example.org",
        "weekly",
        "Asia/Tokyo",
        ("Rust", "PostgreSQL", "machine learning", "deep learning"),
    ),
)


class _QuietFeedHandler(SimpleHTTPRequestHandler):
    # Without it every keep-alive response waits ~21 ms for Nagle (FIELD-NOTES).
    disable_nagle_algorithm = True
    extensions_map = {  # noqa: RUF012 - the base class declares it as a plain class attribute
        **SimpleHTTPRequestHandler.extensions_map,
        ".rss": "application/rss+xml",
        ".atom": "application/atom+xml",
        ".xml": "application/atom+xml",
        ".json": "application/feed+json",
    }

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (an ephemeral port) and yield its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFeedHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_demo(rt: Runtime, now: datetime, step: Callable[[str], None] = lambda _: None) -> DemoReport:
    """Run the whole pipeline once; safe to repeat."""
    step("database and taxonomy")
    setup.upgrade_all(rt, now)
    start = now - CLOCK_BACK
    # The demo's own feeds are on loopback, which the private-address guard of a distributed set-up refuses.
    with (
        serve_directory(dated_feeds(rt.settings.home / "demo-feeds", start)) as base_url,
        Fetcher(replace(rt.fetch_config, block_private=False)) as fetcher,
    ):
        step("crawling demo feeds on " + base_url)
        ids = _register_sources(rt, base_url, start)
        outcomes = {
            source_id: crawl.refresh_and_tag(
                rt.sessions, fetcher, rt.matchers, source_id, start, random.Random(source_id)
            )
            for source_id in ids
        }
        step("skill figures")
        _refresh_figures(rt, now)
        # Issue 17: a loopback feed left active would fail forever once this server is gone.
        _pause_sources(rt, ids, now)
    step("demo subscribers")
    subscription_ids = _subscribe_all(rt, start)
    step("digests through a Celery worker")
    sent_now = _dispatch_with_worker(rt, subscription_ids, now)
    step("summary")
    return report(rt, ids, outcomes, subscription_ids, sent_now)


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_RFC822_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")


def dated_feeds(directory: Path, start: datetime) -> Path:
    """The demo feeds in ``directory``, written on the first run with the self-written ones moved to
    ``start`` (see the module docstring); kept as they are on later runs."""
    if directory.is_dir():
        return directory
    building = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(building, ignore_errors=True)
    shutil.copytree(FEEDS, building)
    for entry in json.loads((FEEDS / "sources.json").read_text()):
        if entry["self_written"]:
            path = building / entry["file"]
            path.write_text(shift_dates(path.read_text(encoding="utf-8"), start), encoding="utf-8")
    building.rename(directory)
    return directory


def shift_dates(text: str, start: datetime) -> str:
    """``text`` with every ISO 8601 (Atom, JSON Feed) and RFC 822 (RSS) date moved by the same whole number
    of days, so the newest lands on the day of ``start`` but not after it."""
    iso = [datetime.fromisoformat(found.replace("Z", "+00:00")) for found in _ISO_DATE.findall(text)]
    rfc = [parsedate_to_datetime(found) for found in _RFC822_DATE.findall(text)]
    newest = max([*iso, *rfc])
    shift = timedelta(days=(start - newest).days)
    text = _ISO_DATE.sub(
        lambda m: (datetime.fromisoformat(m[0].replace("Z", "+00:00")) + shift).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        text,
    )
    return _RFC822_DATE.sub(
        lambda m: format_datetime((parsedate_to_datetime(m[0]) + shift).astimezone(UTC), usegmt=True), text
    )


def _register_sources(rt: Runtime, base_url: str, now: datetime) -> dict[int, str]:
    """Add the demo feeds, or point the existing ones at this run's port and resume them."""
    catalogue = json.loads((FEEDS / "sources.json").read_text())
    ids: dict[int, str] = {}
    with transaction(rt.sessions) as session:
        for entry in catalogue:
            url = f"{base_url}/{entry['file']}"
            source = session.scalars(select(Source).where(Source.name == entry["name"])).first()
            if source is None:
                source = Source(
                    url=url, name=entry["name"], kind=entry["kind"], next_fetch_at=now, created_at=now
                )
                session.add(source)
                session.flush()
            source.url = url
            catalog.set_state(session, source.id, "resume", now)
            ids[source.id] = entry["name"]
    return ids


def _refresh_figures(rt: Runtime, now: datetime) -> None:
    """Compute the daily skill figures, as the periodic task would, so ``digest web`` shows the counts of
    what the demo crawled at once rather than "Figures not computed yet" (issue 17)."""
    today = now.astimezone(UTC).date()
    with transaction(rt.sessions) as session:
        daily.refresh(session, daily.first_day(session, today) or today, today, now=now)


def _pause_sources(rt: Runtime, ids: dict[int, str], now: datetime) -> None:
    with transaction(rt.sessions) as session:
        for source_id in ids:
            catalog.set_state(session, source_id, "pause", now, reason=catalog.DEMO_PAUSED)


def _subscribe_all(rt: Runtime, now: datetime) -> list[int]:
    with transaction(rt.sessions) as session:
        return [
            subscribe(
                session,
                person.email,
                person.skills,
                Schedule(person.cadence, person.hour, person.weekday, person.timezone),
                now,
                confirmed=True,
            ).id
            for person in SUBSCRIBERS
        ]


def _dispatch_with_worker(rt: Runtime, subscription_ids: list[int], now: datetime) -> int:
    """Send the dispatch tick through the broker and wait until the worker finished every delivery."""
    from digest import tasks

    before = _sent_count(rt, subscription_ids)
    worker = processes.start(processes.worker_command(), rt.settings, quiet=True)
    try:
        tasks.dispatch_tick.delay(now.isoformat())
        deadline = time.monotonic() + WAIT_FOR_WORKER
        while not _settled(rt, subscription_ids, now):
            if worker.poll() is not None:
                raise RuntimeError(f"the Celery worker exited with code {worker.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("the Celery worker did not finish the demo digests in time")
            time.sleep(0.2)
    finally:
        processes.stop([worker])
    return _sent_count(rt, subscription_ids) - before


def _settled(rt: Runtime, subscription_ids: list[int], now: datetime) -> bool:
    with transaction(rt.sessions) as session:
        due = session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.id.in_(subscription_ids), Subscription.next_due_at <= now)
        )
        open_ = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.subscription_id.in_(subscription_ids), Delivery.status.not_in(FINAL))
        )
    return due == 0 and open_ == 0


def _sent_count(rt: Runtime, subscription_ids: list[int]) -> int:
    with transaction(rt.sessions) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.subscription_id.in_(subscription_ids), Delivery.status == DeliveryStatus.SENT)
            )
            or 0
        )
