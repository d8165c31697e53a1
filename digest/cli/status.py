"""``digest status``: one screen for ops: queues, workers, beat, failing and overdue feeds, the last hour's
deliveries. The read model is ``digest.health``, which the admin's banner shows too (issue 17).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.text import Text

from digest.cli.app import app
from digest.cli.common import JsonOption, clock, fit, iso, out, print_json, runtime, table

if TYPE_CHECKING:
    from digest.health import Status


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Queue depths, workers alive, beat's last tick, failing and overdue feeds and the last hour's
    deliveries.

    Exits 1 when unhealthy (no beat tick in two periods, no worker for waiting messages, sending paused),
    so it serves as a health check; overdue feeds and failed deliveries are warnings.
    """
    from digest.db import transaction
    from digest.health import gather

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
    from digest.health import FAILING_FEEDS

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
    for title, feeds in (("Failing", report.failing_feeds), ("Overdue", report.overdue_feeds)):
        grid = table(
            "id",
            "name",
            "failures",
            "error",
            text=("name", "error"),
            right=("id", "failures"),
            title=f"{title} feeds (top {FAILING_FEEDS})",
        )
        for feed in feeds:
            grid.add_row(str(feed.id), feed.name, str(feed.failures), feed.error)
        out.print(fit(grid) if feeds else f"{title.lower()} feeds: none")
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
    for warning in report.warnings:
        out.print(Text.assemble(("warning: ", "yellow"), warning))
