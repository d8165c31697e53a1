"""The people's rights (issue 14; GDPR art. 15 and 17): export everything stored about an address, erase it.

Heavy imports (the runtime, SQLAlchemy, the deliver wing) happen inside the commands.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from digest.cli.app import subscribers_app
from digest.cli.common import JsonOption, clock, out, runtime

Address = Annotated[str, typer.Argument(help="The subscriber's email address.")]


@subscribers_app.command("export")
def export_command(email: Address, as_json: JsonOption = False) -> None:
    """Everything stored about an address: subscriber, subscriptions, alerts, deliveries with their items
    and events, audit entries naming it, its suppression entry (GDPR art. 15)."""
    from digest.db import transaction
    from digest.deliver import rights
    from digest.deliver.subscribers import normalise_email

    address = normalise_email(email)
    with runtime() as rt, transaction(rt.sessions) as session:
        data = rights.export(session, rt.settings.secret_key, address)
    if as_json:
        sys.stdout.write(rights.as_json(data))
        return
    person = data["subscriber"]
    out.print(f"{address}: {person['state'] if person else 'no subscriber row'}")
    for subscription in data["subscriptions"]:
        skills = ", ".join(subscription["skills"]) or "-"
        out.print(f"  {subscription['cadence']} digest ({subscription['state']}): {skills}")
    out.print(f"  {len(data['alerts'])} alerts, {len(data['deliveries'])} deliveries")
    entry = data["suppression"]
    if entry is not None:
        out.print(f"  suppressed: {entry['reason']} since {entry['since']:%Y-%m-%d}")
    out.print("  (--json prints everything)")


@subscribers_app.command("erase")
def erase_command(email: Address, as_json: JsonOption = False) -> None:
    """Erase an address's personal data (GDPR art. 17): only its keyed hash stays, on the suppression list,
    so it is not re-added by mistake; delivery rows stay anonymised for the figures (docs/design.md)."""
    from digest.cli.common import print_json
    from digest.db import transaction
    from digest.deliver import rights, suppression
    from digest.deliver.subscribers import normalise_email
    from digest.ops import audit

    address, actor, now = normalise_email(email), audit.cli_actor(), clock()
    with runtime() as rt, transaction(rt.sessions) as session:
        counts = rights.erase(session, rt.settings.secret_key, address, actor, now)
        key = suppression.address_hash(rt.settings.secret_key, address)
        audit.record(session, actor, "subscribers.erase", {"address_hash": key}, now, str(counts))
    if as_json:
        print_json({"erased": True, "address_hash": key} | counts)
    else:
        out.print(
            f"{address}: erased ({counts['subscriptions']} subscriptions, {counts['alerts']} alerts removed; "
            f"{counts['deliveries']} deliveries anonymised); only its keyed hash stays, suppressed"
        )
