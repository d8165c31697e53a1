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
                total = planned.deliveries + planned.items + planned.idempotent_requests
                task = bar.add_task("pruning", total=total)
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
        f"{result.items} items (stored before {result.items_before:%Y-%m-%d}) with {result.tags} tags; "
        f"{result.idempotent_requests} API idempotency keys older than a day"
    )


bounces_app = typer.Typer(
    help="Bounces and complaints that arrive after sending (issue 19).", no_args_is_help=True
)
app.add_typer(bounces_app, name="bounces")


@bounces_app.command("read")
def bounces_read(as_json: JsonOption = False) -> None:
    """Read DIGEST_BOUNCE_MAILBOX once: each bounce or complaint report is recorded on the delivery it names,
    and hard bounces and complaints suppress the address (the beat task does this every 5 minutes)."""
    from digest.config import parse_mailbox
    from digest.deliver import bounces
    from digest.errors import ConfigError

    with runtime() as rt:
        if not rt.settings.bounce_mailbox:
            raise ConfigError(
                "DIGEST_BOUNCE_MAILBOX: not set; a maildir path or imaps://user:pass@host/INBOX"
            )
        box = parse_mailbox(rt.settings.bounce_mailbox)
        result = bounces.read_mailbox(rt.sessions, box, rt.settings.secret_key, clock())
    if as_json:
        print_json(result.as_json())
        return
    summary = result.as_json()
    out.print(
        f"read {summary['read']} messages: {summary['hard']} hard bounces, {summary['soft']} soft, "
        f"{summary['complaints']} complaints, {summary['ignored']} ignored"
    )
    for report in result.reports:
        where = f"delivery {report.delivery_id}" if report.delivery_id else "no delivery"
        out.print(f"  {report.kind} · {where} · {report.outcome} · {report.reason}")
