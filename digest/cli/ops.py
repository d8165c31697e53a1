"""Ops at run time: cadences, bulk cadence changes of subscriptions, pausing and resuming sending."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from digest.cli.app import app
from digest.cli.common import JsonOption, clock, iso, out, print_json, runtime

cadence_app = typer.Typer(
    help="Periodic schedules and default intervals, changed without a restart.", no_args_is_help=True
)
subscriptions_app = typer.Typer(help="Bulk changes to subscriptions.", no_args_is_help=True)
sending_app = typer.Typer(help="Pause and resume sending digests.", no_args_is_help=True)
app.add_typer(cadence_app, name="cadence")
app.add_typer(subscriptions_app, name="subscriptions")
app.add_typer(sending_app, name="sending")


@cadence_app.command("show")
def cadence_show(as_json: JsonOption = False) -> None:
    """Every schedule and cadence setting: name, value, kind, on or off, last change."""
    from digest.db import transaction
    from digest.ops import schedules

    with runtime() as rt, transaction(rt.sessions) as session:
        infos = schedules.list_schedules(session)
    if as_json:
        print_json([info.as_json() for info in infos])
        return
    table = Table()
    for column in ("name", "value", "kind", "on", "updated"):
        table.add_column(column)
    for info in infos:
        updated = iso(info.updated_at) or "default"
        table.add_row(info.name, info.value, info.kind, "yes" if info.enabled else "no", updated)
    out.print(table)


@cadence_app.command("set")
def cadence_set(
    name: Annotated[str, typer.Argument(help="A name from `digest cadence show`.")],
    value: Annotated[
        str,
        typer.Argument(
            help="Schedules: a duration (30s, 15m, 1h, 1d), a 5-field cron expression in UTC ('0 8 * * *'), "
            "on or off. feed-interval.*: a duration from 1m to 1d. default-hour: 0-23. "
            "default-weekday: monday … sunday."
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Change a schedule or setting; beat applies schedule changes within 30 seconds, without a restart."""
    from digest.db import transaction
    from digest.ops import audit, schedules

    with runtime() as rt, transaction(rt.sessions) as session:
        info = schedules.set_schedule(session, name, value, audit.cli_actor(), clock())
    if as_json:
        print_json(info.as_json())
        return
    out.print(f"{info.name} = {info.value}" + ("" if info.enabled else " (off)"))


@subscriptions_app.command("set-cadence")
def subscriptions_set_cadence(
    skill: Annotated[
        str, typer.Option(help="Only subscriptions following this skill (name, slug or alias).")
    ],
    from_cadence: Annotated[
        str, typer.Option("--from", help="The cadence to move from: hourly, daily, weekly.")
    ],
    to_cadence: Annotated[str, typer.Option("--to", help="The cadence to move to.")],
    dry_run: Annotated[bool, typer.Option(help="Count what would change; change nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Move every subscription at one cadence that follows a skill to another; nothing lost or repeated."""
    from digest.db import transaction
    from digest.deliver import subscribers
    from digest.ops import audit

    now = clock()
    with runtime() as rt, transaction(rt.sessions) as session:
        result = subscribers.set_cadence(session, skill, from_cadence, to_cadence, now, dry_run=dry_run)
        if not dry_run:
            arguments = {"skill": skill, "from": from_cadence, "to": to_cadence}
            audit.record(
                session,
                audit.cli_actor(),
                "subscriptions.set-cadence",
                arguments,
                now,
                f"{result.changed} changed",
            )
    if as_json:
        print_json({"matched": result.matched, "changed": result.changed, "dry_run": result.dry_run})
        return
    verb = "would move" if dry_run else "moved"
    out.print(
        f"{result.matched} {from_cadence} subscription(s) follow {skill}; "
        f"{verb} to {to_cadence}: {result.changed}"
    )


def _sending(paused: bool | None, as_json: bool) -> None:
    from digest.db import transaction
    from digest.ops import audit, sending

    with runtime() as rt, transaction(rt.sessions) as session:
        if paused is None:
            state = sending.state(session)
        else:
            state = sending.set_paused(session, paused=paused, actor=audit.cli_actor(), now=clock())
    if as_json:
        print_json(state.as_json())
        return
    since = f" since {iso(state.updated_at)}" if state.updated_at else ""
    out.print(("paused: due digests wait" if state.paused else "sending") + since)


@sending_app.command("pause")
def sending_pause(as_json: JsonOption = False) -> None:
    """Stop opening digests; due ones wait, and each subscriber gets one covering the pause on resume."""
    _sending(True, as_json)


@sending_app.command("resume")
def sending_resume(as_json: JsonOption = False) -> None:
    """Send again: the next dispatch sends every waiting digest, one per subscription."""
    _sending(False, as_json)


@sending_app.command("status")
def sending_status(as_json: JsonOption = False) -> None:
    """Whether digests are being sent or paused, and since when."""
    _sending(None, as_json)
