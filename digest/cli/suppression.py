"""The suppression list (issue 14): addresses that get no email of any kind. List, add, remove (audited).

Heavy imports (the runtime, SQLAlchemy, the deliver wing) happen inside the commands, so ``digest --help``
stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from digest.cli.app import app
from digest.cli.common import JsonOption, clock, iso, out, print_json, runtime

if TYPE_CHECKING:
    from digest.deliver.suppression import SuppressionInfo

suppression_app = typer.Typer(
    help="Addresses that get no email of any kind (unsubscribed, bounced, complained, erased).",
    no_args_is_help=True,
)
app.add_typer(suppression_app, name="suppression")

Address = Annotated[str, typer.Argument(help="The email address.")]


def _row(entry: SuppressionInfo) -> dict[str, Any]:
    return {
        "id": entry.id,
        "email": entry.email,
        "address_hash": entry.address_hash,
        "reason": entry.reason,
        "source": entry.source,
        "since": iso(entry.since),
    }


@suppression_app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """Every suppressed address, newest first (an erased one shows only its keyed hash)."""
    from rich.table import Table

    from digest.db import transaction
    from digest.deliver import suppression

    with runtime() as rt, transaction(rt.sessions) as session:
        rows = [_row(entry) for entry in suppression.entries(session)]
    if as_json:
        print_json(rows)
        return
    table = Table()
    for column in ("email", "reason", "since", "source"):
        table.add_column(column, overflow="fold")
    for row in rows:
        email = row["email"] or f"(erased) {row['address_hash'][:16]}…"
        table.add_row(email, row["reason"], row["since"], row["source"])
    out.print(table)


@suppression_app.command("add")
def add_command(
    address: Address,
    reason: Annotated[
        str, typer.Option(help="complaint, bounce, unsubscribed or manual (why no email may go there).")
    ] = "complaint",
    as_json: JsonOption = False,
) -> None:
    """Suppress an address: no digest, alert or confirmation is mailed to it until it is removed."""
    from digest.db import transaction
    from digest.deliver import suppression
    from digest.deliver.subscribers import normalise_email
    from digest.errors import InvalidInputError
    from digest.ops import audit

    if reason not in suppression.ADDABLE:
        raise InvalidInputError(f"unknown reason {reason!r}: use {', '.join(suppression.ADDABLE)}")
    email, actor, now = normalise_email(address), audit.cli_actor(), clock()
    with runtime() as rt, transaction(rt.sessions) as session:
        entry = suppression.suppress(session, rt.settings.secret_key, email, reason, actor, now)
        audit.record(session, actor, "suppression.add", {"email": email, "reason": reason}, now, entry.reason)
    if as_json:
        print_json(_row(entry))
    else:
        out.print(f"{entry.describe(email)}: suppressed")


@suppression_app.command("remove")
def remove_command(address: Address, as_json: JsonOption = False) -> None:
    """Lift an address's suppression (written to the audit log). Its subscriptions stay as they are."""
    from digest.db import transaction
    from digest.deliver import suppression
    from digest.deliver.subscribers import normalise_email
    from digest.errors import NotFoundError
    from digest.ops import audit

    email, actor, now = normalise_email(address), audit.cli_actor(), clock()
    with runtime() as rt, transaction(rt.sessions) as session:
        entry = suppression.lift(session, rt.settings.secret_key, email)
        if entry is None:
            raise NotFoundError(f"{email} is not suppressed")
        arguments = {"email": email, "reason": entry.reason, "since": iso(entry.since)}
        audit.record(session, actor, "suppression.remove", arguments, now, "lifted")
    if as_json:
        print_json(_row(entry) | {"removed": True})
    else:
        out.print(f"{email}: suppression lifted (it was: {entry.describe(email)})")
