"""Deliveries: send what is due in the foreground, list deliveries a page at a time, show one.

``list`` and ``show`` read ``digest.deliver.history``, the read model the admin pages use too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from digest.cli.app import app, deliveries_app
from digest.cli.common import (
    JsonOption,
    clock,
    each,
    fit,
    iso,
    out,
    parse_time,
    print_json,
    relative,
    runtime,
    table,
)
from digest.errors import InvalidInputError, MailError, PrunedError
from digest.records import HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT, DeliveryOutcome, DeliveryStatus

if TYPE_CHECKING:
    from digest.deliver import history

Status = DeliveryStatus
# What send-due counts; "pending" is a temporary refusal the next run retries.
SEND_COUNTS = (Status.SENT, Status.SKIPPED, Status.PENDING, Status.FAILED)
# What --status takes; "pending" includes deliveries being sent right now ("sending" as stored).
LISTED_STATUSES = {
    Status.PENDING: (Status.PENDING, Status.SENDING),
    Status.SENT: (Status.SENT,),
    Status.SKIPPED: (Status.SKIPPED,),
    Status.FAILED: (Status.FAILED,),
}


def shown_status(status: str) -> str:
    """A stored status as the commands print it: a delivery being sent is still pending."""
    return Status.PENDING if status == Status.SENDING else status


@app.command("send-due")
def send_due(
    now: Annotated[
        str | None, typer.Option("--now", help="Dispatch as if it were this ISO 8601 time.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run one dispatch and send its digests in the foreground (what beat and the worker do).

    Prints what became of every delivery; a temporary refusal leaves it pending for the next run. Exits 1
    only when a delivery failed for good.
    """
    from digest.deliver import digests

    at = parse_time(now) if now else clock()
    with runtime() as rt:
        delivery_ids = [did for batch in digests.dispatch_due(rt.sessions, at) for did in batch]

        def send(delivery_id: int) -> DeliveryOutcome:
            try:
                return digests.send_delivery(
                    rt.sessions,
                    delivery_id,
                    mailer=rt.mailer,
                    composer=rt.composer,
                    config=rt.delivery,
                    now=clock(),
                    cache=rt.windows,
                )
            except MailError as exc:
                # Temporary (SMTP 4xx, a dropped connection): the outbox put it back to pending with a
                # retry time; the others are still sent (issue 17).
                return DeliveryOutcome(delivery_id, DeliveryStatus.PENDING, 0, None, str(exc))

        outcomes = sorted(each(delivery_ids, "sending", as_json, send), key=lambda o: o.delivery_id)
    counts = {status: sum(o.status == status for o in outcomes) for status in SEND_COUNTS}
    unsent = {
        status: [{"id": o.delivery_id, "reason": o.error} for o in outcomes if o.status == status]
        for status in (Status.PENDING, Status.FAILED)
    }
    if as_json:
        print_json(
            {
                **counts,
                "deliveries": [o.delivery_id for o in outcomes],
                "pending_deliveries": unsent[Status.PENDING],
                "failed_deliveries": unsent[Status.FAILED],
            }
        )
    else:
        out.print(
            f"{counts[Status.SENT]} sent, {counts[Status.SKIPPED]} skipped, "
            f"{counts[Status.PENDING]} pending for a retry, {counts[Status.FAILED]} failed"
        )
        for status, rows in unsent.items():
            for row in rows:
                out.print(f"  delivery {row['id']} {status}: {row['reason']}", highlight=False)
    if counts[Status.FAILED]:
        raise typer.Exit(1)


@deliveries_app.command("list")
def deliveries_list(
    subscriber: Annotated[str | None, typer.Option(help="Only this address.")] = None,
    status: Annotated[str | None, typer.Option(help="sent, skipped, failed or pending.")] = None,
    limit: Annotated[
        int, typer.Option(help=f"At most this many, newest first (1 to {HISTORY_MAX_LIMIT}).")
    ] = HISTORY_DEFAULT_LIMIT,
    before: Annotated[
        int | None,
        typer.Option("--before", metavar="ID", help="Only deliveries older than this id: the next page."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List deliveries, newest first, a page at a time: pass the last id shown as --before for the next."""
    from digest.db import transaction
    from digest.deliver import history

    if status is not None and status not in LISTED_STATUSES:
        raise InvalidInputError(f"--status takes one of {', '.join(LISTED_STATUSES)}, not {status!r}")
    if not 1 <= limit <= history.MAX_LIMIT:
        raise InvalidInputError(f"--limit takes a number from 1 to {history.MAX_LIMIT}, not {limit}")
    query = history.DeliveryQuery(
        statuses=LISTED_STATUSES[Status(status)] if status else (),
        address=subscriber.strip().lower() if subscriber else "",
        before=before,
        limit=limit,
    )
    with runtime() as rt, transaction(rt.sessions) as session:
        found = history.page(session, query)
    rows = [_row_json(row) for row in found.rows]
    if as_json:
        print_json(rows)
        return
    grid = table("id", "subscriber", "cadence", "window end", "status", "items", right=("id", "items"))
    now = clock()
    for row in found.rows:
        grid.add_row(
            str(row.id),
            row.subscriber,
            row.cadence,
            relative(row.window_end, now),
            shown_status(row.status),
            str(row.item_count),
        )
    out.print(fit(grid))
    if found.next_before is not None:
        out.print(f"older deliveries: the same command with --before {found.next_before}", highlight=False)


def _row_json(row: history.DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "subscriber": row.subscriber,
        "cadence": row.cadence,
        "skills": list(row.skills),
        "window_start": iso(row.window_start),
        "window_end": iso(row.window_end),
        "status": shown_status(row.status),
        "items": list(row.item_ids),
        "message_id": row.message_id,
    }


@deliveries_app.command("show")
def deliveries_show(
    delivery_id: Annotated[int, typer.Argument(help="The delivery.")],
    as_json: JsonOption = False,
) -> None:
    """One delivery: subscriber, window, the items with why each was chosen, status history and replays."""
    from digest.db import transaction
    from digest.deliver import history

    try:
        with runtime() as rt, transaction(rt.sessions) as session:
            found = history.view(session, delivery_id)
    except PrunedError as exc:
        # Issue 19: retention deleted it; a status, not a failure.
        if as_json:
            print_json({"id": delivery_id, "status": "pruned", "detail": str(exc)})
        else:
            out.print(str(exc))
        return
    row = _view_json(found)
    if as_json:
        print_json(row)
        return
    out.print(
        f"delivery {row['id']} · {row['subscriber']} · {row['cadence']} · {row['status']}"
        f"\nwindow {row['window_start']} – {row['window_end']}\nsubject {row['subject'] or '-'}"
    )
    for entry in row["items"]:
        where = "title" if entry["in_title"] else "text"
        why = ", ".join(entry["matched"])
        out.print(f"  {entry['position'] + 1:2}. {entry['title']}  [{entry['skill']}: {why} in the {where}]")
    for event in row["history"]:
        out.print(f"  {event['at']}  {event['event']}{': ' + event['detail'] if event['detail'] else ''}")
    for each_replay in row["replays"]:
        out.print(
            f"  replay {each_replay['id']}: {each_replay['kind']} to {each_replay['to']} "
            f"{each_replay['status']} ({each_replay['at']}, {each_replay['by']})"
        )


def _view_json(view: history.DeliveryView) -> dict[str, Any]:
    return {
        "id": view.id,
        "subscriber": view.subscriber,
        "cadence": view.cadence,
        "timezone": view.timezone,
        "window_start": iso(view.window_start),
        "window_end": iso(view.window_end),
        "status": shown_status(view.status),
        "error": view.error,
        "attempts": view.attempts,
        "subject": view.subject,
        "message_id": view.message_id,
        "template_version": view.template_version,
        "more": view.more,
        "items": [
            {
                "position": item.position,
                "item": item.item_id,
                "title": item.title,
                "url": item.url,
                "skill": item.skill,
                "matched": list(item.matched),
                "in_title": item.in_title,
                "score": item.score,
            }
            for item in view.items
        ],
        "history": [{"at": iso(e.at), "event": e.event, "detail": e.detail} for e in view.events],
        "replays": [
            {
                "id": r.id,
                "kind": r.kind,
                "to": r.address,
                "message_id": r.message_id,
                "status": r.status,
                "error": r.error,
                "by": r.actor,
                "at": iso(r.at),
            }
            for r in view.replays
        ],
    }
