"""The data's lifecycle (issue 19): ``digest prune`` deletes what is past retention; ``digest bounces read``
reads the bounce mailbox.

Heavy imports happen inside the commands, so ``digest --help`` stays quick.
"""

from __future__ import annotations

from typing import Annotated

import typer

from digest.cli.app import app
from digest.cli.common import JsonOption, clock, out, print_json, progress, runtime


@app.command("prune")
def prune_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete items past DIGEST_ITEM_RETENTION and deliveries past DIGEST_DELIVERY_RETENTION, in short
    batches (the beat task does the same daily). Daily skill figures are kept."""
    from digest.db import transaction
    from digest.ops import retention

    now = clock()
    with runtime() as rt:
        with transaction(rt.sessions) as session:
            planned = retention.plan(session, rt.retention, now)
        if dry_run:
            result = planned
        elif as_json:
            result = retention.prune(rt.sessions, rt.retention, now)
        else:
            with progress() as bar:
                task = bar.add_task("pruning", total=planned.deliveries + planned.items)
                result = retention.prune(
                    rt.sessions, rt.retention, now, progress=lambda rows: bar.advance(task, rows)
                )
    if as_json:
        print_json(result.as_json())
        return
    verb = "would delete" if result.dry_run else "deleted"
    out.print(
        f"{verb} {result.deliveries} deliveries (window ended before {result.deliveries_before:%Y-%m-%d}) "
        f"with {result.delivery_items} manifest rows and {result.delivery_events} events; "
        f"{result.items} items (stored before {result.items_before:%Y-%m-%d}) with {result.tags} tags"
    )
