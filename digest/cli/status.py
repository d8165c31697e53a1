"""``digest status``: one screen for ops: queues, workers, beat, failing feeds, the last hour's deliveries.

Each part is read with a short timeout and says "not available" rather than wait: the filesystem broker has
no workers to ping, a broker that is down is reported, and beat is seen through the schedule file it
touches every 30 seconds (``digest.beat``), which only a process sharing ``DIGEST_HOME`` can see.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer
from rich.text import Text

from digest.cli.app import app
from digest.cli.common import JsonOption, clock, fit, iso, out, print_json, runtime, table
from digest.records import FINAL, DeliveryStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from digest.config import Settings
    from digest.models import Source

PING_TIMEOUT = 1.0
FAILING_FEEDS = 10
RECENT = timedelta(hours=1)
# Brokers whose workers answer a broadcast ping; kombu's filesystem transport has no reply channel.
PINGABLE = ("redis", "rediss")
FINISHED = FINAL
WAITING = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


@dataclass(frozen=True, slots=True)
class FailingFeed:
    """A feed whose last fetch failed, or that is no longer crawled."""

    id: int
    name: str
    url: str
    state: str
    failures: int
    error: str


@dataclass(frozen=True, slots=True)
class Status:
    """What ``digest status`` shows; ``None`` or a note where a part cannot be read here."""

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

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types, times in UTC ISO 8601."""
        data = asdict(self)
        data["at"] = iso(self.at)
        data["beat_last_tick"] = iso(self.beat_last_tick)
        data["problems"] = self.problems
        data["healthy"] = not self.problems
        return data


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Queue depths, workers alive, beat's last tick, failing feeds and the last hour's deliveries.

    Exits 1 when unhealthy (no beat tick in two periods, no worker for waiting messages, sending paused),
    so it serves as a health check.
    """
    from digest.db import transaction

    now = clock()
    with runtime() as rt, transaction(rt.sessions) as session:
        report = gather(rt.settings, session, now)
    if as_json:
        print_json(report.as_json())
    else:
        _print(report)
    if report.problems:
        raise typer.Exit(1)


def gather(settings: Settings, session: Session, now: datetime) -> Status:
    """Read every part of the status at ``now``."""
    from redis.exceptions import RedisError

    from digest.models import Delivery
    from digest.ops import metrics, sending
    from digest.ops.beat import REFRESH
    from digest.tasks import QUEUES, broker_options, create_celery

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
    tick = _beat_tick(settings.home)
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
        deliveries_last_hour=_counts(session, FINISHED, Delivery.finished_at >= now - RECENT),
        deliveries_waiting=_counts(session, WAITING),
    )


def failing_feeds(session: Session, limit: int = FAILING_FEEDS) -> list[FailingFeed]:
    """Feeds failing now or no longer crawled, most failures in a row first."""
    from sqlalchemy import or_, select

    from digest.models import Source

    rows = session.scalars(
        select(Source)
        .where(or_(Source.consecutive_failures > 0, Source.state == "disabled"))
        .order_by(Source.consecutive_failures.desc(), Source.id)
        .limit(limit)
    )
    return [
        FailingFeed(row.id, row.name, row.url, row.state, row.consecutive_failures, _in_words(row))
        for row in rows
    ]


def _in_words(source: Source) -> str:
    """The error as a sentence: the HTTP status by name, then what the fetcher said."""
    if source.state == "disabled":
        return f"no longer crawled: {source.disabled_reason or source.last_error or 'no reason recorded'}"
    parts = []
    if source.last_http_status:
        try:
            parts.append(f"HTTP {source.last_http_status} {HTTPStatus(source.last_http_status).phrase}")
        except ValueError:
            parts.append(f"HTTP {source.last_http_status}")
    if source.last_error:
        parts.append(source.last_error)
    return " — ".join(parts) or "the last fetch failed"


def _counts(session: Session, statuses: tuple[str, ...], *conditions: Any) -> dict[str, int]:
    """Deliveries by status among ``statuses``, zeros included."""
    from sqlalchemy import func, select

    from digest.models import Delivery

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


def _beat_tick(home: Path) -> datetime | None:
    ticks = [path.stat().st_mtime for path in home.glob("celerybeat-schedule*")]
    return datetime.fromtimestamp(max(ticks), UTC) if ticks else None


def _print(report: Status) -> None:
    out.print(f"broker: {report.broker}")
    queues = table("queue", "waiting", right=("waiting",), title="Queues")
    for name, depth in (report.queues or {}).items():
        queues.add_row(name, str(depth))
    out.print(fit(queues) if report.queues is not None else f"queues: {report.queues_note}")
    if report.workers is None:
        out.print(f"workers: {report.workers_note}")
    else:
        names = f" ({', '.join(report.workers)})" if report.workers else ""
        out.print(f"workers alive: {len(report.workers)}{names}")
    if report.beat_last_tick is None:
        out.print("beat: no tick seen (no schedule file in DIGEST_HOME)")
    else:
        ago = int((report.at - report.beat_last_tick).total_seconds())
        tick = f"beat: last tick {iso(report.beat_last_tick)} ({ago}s ago, "
        out.print(f"{tick}alive)" if report.beat_alive else Text.assemble(tick, ("stale", "red"), ")"))
    out.print(Text.assemble("sending: ", ("paused", "red")) if report.sending_paused else "sending: on")
    feeds = table(
        "id",
        "name",
        "failures",
        "error",
        text=("name", "error"),
        right=("id", "failures"),
        title=f"Failing feeds (top {FAILING_FEEDS})",
    )
    for feed in report.failing_feeds:
        feeds.add_row(str(feed.id), feed.name, str(feed.failures), feed.error)
    out.print(fit(feeds) if report.failing_feeds else "failing feeds: none")
    deliveries = table(
        "status", "last hour", "waiting now", right=("last hour", "waiting now"), title="Deliveries"
    )
    for name, done in report.deliveries_last_hour.items():
        deliveries.add_row(name, str(done), "")
    for name, waiting in report.deliveries_waiting.items():
        deliveries.add_row(name, "", str(waiting))
    out.print(fit(deliveries))
    for problem in report.problems:
        out.print(Text.assemble(("unhealthy: ", "red"), problem))
