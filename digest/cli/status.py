"""``digest status``: one screen for ops: queues, workers, beat, failing and overdue feeds, the last hour's
deliveries. The read model is ``digest.health``, which the admin's banner shows too (issue 17).
"""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from digest.cli.app import app
from digest.cli.common import JsonOption, clock, iso, out, print_json, runtime
from digest.db import transaction
from digest.health import FAILING_FEEDS, Status, gather


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Queue depths, workers alive, beat's last tick, failing feeds and the last hour's deliveries.

    Exits 1 when unhealthy (no beat tick in two periods, no worker for waiting messages, sending paused),
    so it serves as a health check.
    """
    now = clock()
    with runtime() as rt, transaction(rt.sessions) as session:
        report = gather(rt.settings, session, now)
    if as_json:
        print_json(report.as_json())
    else:
        _print(report)
    if report.problems:
        raise typer.Exit(1)


def _print(report: Status) -> None:
    out.print(f"broker: {report.broker}")
    queues = Table(title="Queues")
    queues.add_column("queue")
    queues.add_column("waiting", justify="right")
    for name, depth in (report.queues or {}).items():
        queues.add_row(name, str(depth))
    out.print(queues if report.queues is not None else f"queues: {report.queues_note}")
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
    feeds = Table(title=f"Failing feeds (top {FAILING_FEEDS})")
    for column in ("id", "name", "failures", "error"):
        feeds.add_column(column, overflow="fold")
    for feed in report.failing_feeds:
        feeds.add_row(str(feed.id), feed.name, str(feed.failures), feed.error)
    out.print(feeds if report.failing_feeds else "failing feeds: none")
    overdue = ", ".join(f"{feed.name} ({feed.error})" for feed in report.overdue_feeds)
    out.print(f"overdue feeds: {overdue}" if overdue else "overdue feeds: none", markup=False)
    deliveries = Table(title="Deliveries")
    for column in ("status", "last hour", "waiting now"):
        deliveries.add_column(column)
    for name, done in report.deliveries_last_hour.items():
        deliveries.add_row(name, str(done), "")
    for name, waiting in report.deliveries_waiting.items():
        deliveries.add_row(name, "", str(waiting))
    out.print(deliveries)
    for problem in report.problems:
        out.print(Text.assemble(("unhealthy: ", "red"), problem))
    for warning in report.warnings:
        out.print(Text.assemble(("warning: ", "yellow"), warning))
