"""The audit log: what admins and operators did (``digest audit list``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from digest.cli.app import app
from digest.cli.common import JsonOption, iso, out, parse_time, print_json, runtime
from digest.errors import InvalidInputError

if TYPE_CHECKING:
    from digest.models import AuditEntry

audit_app = typer.Typer(
    help="What admins and operators did: who, what, when, with what.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(help="At most this many entries, newest first.")] = 100,
    action: Annotated[
        str | None, typer.Option(help="Only this action, such as replay.copy, cadence.set or admin.login.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only entries at or after this ISO 8601 time (with its UTC offset).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List audit entries, newest first: when, who, what, with which arguments, and the result."""
    from digest.db import transaction
    from digest.ops import audit

    if limit < 1:
        raise InvalidInputError("--limit takes a number from 1")
    start = parse_time(since) if since else None
    with runtime() as rt, transaction(rt.sessions) as session:
        rows = [
            _entry_json(entry) for entry in audit.entries(session, limit=limit, action=action, since=start)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table()
    for column in ("id", "at", "actor", "action", "arguments", "result"):
        table.add_column(column, overflow="fold")
    for row in rows:
        arguments = json.dumps(row["arguments"], sort_keys=True, ensure_ascii=False)
        table.add_row(str(row["id"]), row["at"], row["actor"], row["action"], arguments, row["result"] or "")
    out.print(table)


def _entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "arguments": entry.arguments,
        "result": entry.result,
    }
