"""The health of a deployment, read for ``digest status`` and the admin's banner (issue 17).

Each part is read with a short timeout and says "not available" rather than wait: the filesystem broker has
no workers to ping, a broker that is down is reported, and beat is seen through the schedule file it
touches every 30 seconds (``digest.ops.beat``), which only a process sharing ``DIGEST_HOME`` can see.

``problems`` make ``digest status`` exit 1 (issue 17: a dead beat, waiting messages with no worker, sending
paused); ``warnings`` are what the person on call should look at without the service being down: feeds
overdue by more than twice their interval and deliveries that failed for good in the last hour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from redis.exceptions import RedisError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.ingest import catalog
from digest.models import Delivery, Source
from digest.ops import metrics, schedules, sending
from digest.ops.beat import REFRESH
from digest.records import FINAL, DeliveryStatus, iso, relative
from digest.tasks import QUEUES, broker_options, create_celery
from digest.vocabulary import interval_for

PING_TIMEOUT = 1.0
FAILING_FEEDS = 10
RECENT = timedelta(hours=1)
# Brokers whose workers answer a broadcast ping; kombu's filesystem transport has no reply channel.
PINGABLE = ("redis", "rediss")
WAITING = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


@dataclass(frozen=True, slots=True)
class FailingFeed:
    """A feed whose last fetch failed, that is no longer crawled, or that is overdue."""

    id: int
    name: str
    url: str
    state: str
    failures: int
    error: str


@dataclass(frozen=True, slots=True)
class Status:
    """What ``digest status`` and the admin banner show; ``None`` or a note where a part cannot be read."""

    at: datetime
    broker: str
    queues: dict[str, int] | None
    queues_note: str | None
    workers: list[str] | None
    workers_note: str | None
    beat_last_tick: datetime | None
    beat_alive: bool
    sending_paused: bool
    failing_feeds: list[FailingFeed]
    overdue_feeds: list[FailingFeed]
    deliveries_last_hour: dict[str, int]
    deliveries_waiting: dict[str, int]

    @property
    def problems(self) -> list[str]:
        """Why ops must look now; none when healthy. Parts that cannot be read here are not problems."""
        found = []
        if not self.beat_alive:
            found.append("beat: no tick in two periods")
        waiting = [name for name, depth in (self.queues or {}).items() if depth]
        if self.workers == [] and waiting:
            found.append(f"no worker for the waiting messages in {', '.join(waiting)}")
        if self.sending_paused:
            found.append("sending is paused")
        return found

    @property
    def warnings(self) -> list[str]:
        """What to look at soon: overdue feeds, deliveries failed for good in the last hour."""
        found = []
        if self.overdue_feeds:
            count = len(self.overdue_feeds)
            found.append(f"{count} feed{'s' * (count != 1)} overdue by more than twice the interval")
        failed = self.deliveries_last_hour.get(DeliveryStatus.FAILED, 0)
        if failed:
            found.append(f"{failed} deliver{'ies' if failed != 1 else 'y'} failed in the last hour")
        return found

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types, times in UTC ISO 8601."""
        data = asdict(self)
        data["at"] = iso(self.at)
        data["beat_last_tick"] = iso(self.beat_last_tick)
        data["problems"] = self.problems
        data["warnings"] = self.warnings
        data["healthy"] = not self.problems
        return data


def gather(settings: Settings, session: Session, now: datetime) -> Status:
    """Read every part of the status at ``now`` (a worker ping waits up to ``PING_TIMEOUT``)."""
    broker, options = broker_options(settings)
    scheme = urlsplit(settings.broker_url).scheme
    queues: dict[str, int] | None = None
    queues_note: str | None = None
    try:
        queues = metrics.queue_depths(broker, options, QUEUES)
        if queues is None:
            queues_note = f"not available on the {scheme} broker"
    except (OSError, RedisError) as exc:
        queues_note = f"broker not answering: {exc}"
    workers: list[str] | None = None
    workers_note: str | None = None
    if scheme not in PINGABLE:
        workers_note = f"not available on the {scheme} broker (no broadcast replies)"
    elif queues is None:
        workers_note = "not asked: the broker is not answering"
    else:
        replies = create_celery(settings).control.ping(timeout=PING_TIMEOUT)
        workers = sorted(name for reply in replies for name in reply)
    tick = beat_tick(settings.home)
    return Status(
        at=now,
        broker=scheme,
        queues=queues,
        queues_note=queues_note,
        workers=workers,
        workers_note=workers_note,
        beat_last_tick=tick,
        # Beat touches its file at every re-read of the schedules table (REFRESH); two periods without a
        # tick is a dead beat (issue 17).
        beat_alive=tick is not None and now - tick < 2 * REFRESH,
        sending_paused=sending.paused(session),
        failing_feeds=failing_feeds(session),
        overdue_feeds=overdue_feeds(session, now),
        deliveries_last_hour=_counts(session, FINAL, Delivery.finished_at >= now - RECENT),
        deliveries_waiting=_counts(session, WAITING),
    )


def failing_feeds(session: Session, limit: int = FAILING_FEEDS) -> list[FailingFeed]:
    """Feeds failing now or no longer crawled, most failures in a row first."""
    ids = session.scalars(
        select(Source.id)
        .where(or_(Source.consecutive_failures > 0, Source.state == "disabled"))
        .order_by(Source.consecutive_failures.desc(), Source.id)
        .limit(limit)
    ).all()
    found = {info.id: info for info in catalog.list_feeds(session, ids)}
    return [_feed(found[i], catalog.in_words(found[i]) or "the last fetch failed") for i in ids]


def overdue_feeds(session: Session, now: datetime, limit: int = FAILING_FEEDS) -> list[FailingFeed]:
    """Active feeds not fetched for more than twice their interval, the longest overdue first.

    A feed that is due and not fetched means the crawl is not running for it (beat or the worker is down,
    or its host gate is stuck): a feed 8 days late is not "fine" (issue 17).
    """
    defaults = schedules.feed_intervals(session)
    late: list[tuple[timedelta, int]] = []
    columns = (Source.id, Source.kind, Source.interval_seconds, Source.last_fetched_at, Source.created_at)
    rows = session.execute(select(*columns).where(Source.state == "active"))
    for row in rows:
        interval = timedelta(seconds=interval_for(row.kind, row.interval_seconds, defaults))
        since = now - (row.last_fetched_at or row.created_at)
        if since > 2 * interval:
            late.append((since - interval, row.id))
    late.sort(key=lambda pair: (-pair[0], pair[1]))
    found = {info.id: info for info in catalog.list_feeds(session, [i for _, i in late[:limit]])}
    return [_feed(found[i], relative(now - delay, now, due=True)) for delay, i in late[:limit]]


def beat_tick(home: Path) -> datetime | None:
    """When beat last touched its schedule file in ``home`` (None if it never ran here)."""
    ticks = [path.stat().st_mtime for path in home.glob("celerybeat-schedule*")]
    return datetime.fromtimestamp(max(ticks), UTC) if ticks else None


def _feed(info: catalog.FeedInfo, trouble: str) -> FailingFeed:
    return FailingFeed(info.id, info.name, info.url, info.state, info.consecutive_failures, trouble)


def _counts(session: Session, statuses: tuple[str, ...], *conditions: Any) -> dict[str, int]:
    """Deliveries by status among ``statuses``, zeros included."""
    rows = dict(
        session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.status.in_(statuses), *conditions)
            .group_by(Delivery.status)
        )
        .tuples()
        .all()
    )
    return {name: rows.get(name, 0) for name in statuses}
