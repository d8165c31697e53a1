"""Trend alerts: add, list, turn off, check now, replay."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from digest.cli.app import app
from digest.cli.common import JsonOption, clock, iso, out, parse_time, print_json, runtime
from digest.errors import InvalidInputError, MailError, NotFoundError
from digest.records import AlertOutcome, DeliveryStatus

if TYPE_CHECKING:
    from digest.models import Alert

ALERT_COUNTS = (DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED, DeliveryStatus.PENDING)

alerts_app = typer.Typer(
    help="Trend alerts: mail when a skill's mentions rise or fall.", no_args_is_help=True
)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("add")
def add_command(
    email: Annotated[str, typer.Argument(help="The subscriber's address (subscribed and confirmed).")],
    skill: Annotated[str, typer.Argument(help="Skill name, id, slug or alias.")],
    period: Annotated[
        str, typer.Option(help="24h or 7d: the recent span compared with 4 weeks before.")
    ] = "24h",
    threshold: Annotated[int, typer.Option(help="Percent change, up or down, that alerts.")] = 50,
    min_count: Annotated[int, typer.Option(help="Fewest mentions in either span that may alert.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Add (or change) a subscriber's alert on a skill."""
    from sqlalchemy import select

    from digest.db import transaction
    from digest.deliver import alerts, suppression
    from digest.deliver.subscribers import normalise_email
    from digest.ingest.skills import resolve_skill
    from digest.models import Subscriber
    from digest.ops import audit

    address = normalise_email(email)
    with runtime() as rt, transaction(rt.sessions) as session:
        subscriber = session.scalars(select(Subscriber).where(Subscriber.email == address)).first()
        if subscriber is None:
            raise NotFoundError(f"{address} is not subscribed: subscribe first")
        suppression.refuse(session, rt.settings.secret_key, address)
        found = resolve_skill(session, skill)
        alert = alerts.add(session, subscriber.id, found, period, threshold, min_count, clock())
        arguments = {"email": address, "skill": found.id, "period": period, "threshold": threshold}
        audit.record(session, audit.cli_actor(), "alerts.add", arguments | {"min_count": min_count}, clock())
        row = _row(alert, address, found.name)
    if as_json:
        print_json(row)
    else:
        out.print(f"alert {row['id']}: {found.name}, {period}, ±{threshold}% (at least {min_count} mentions)")


@alerts_app.command("list")
def list_command(
    email: Annotated[str | None, typer.Option(help="Only this subscriber's alerts.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List alerts."""
    from sqlalchemy import select

    from digest.db import transaction
    from digest.deliver.subscribers import normalise_email
    from digest.models import Alert, Skill, Subscriber

    with runtime() as rt, transaction(rt.sessions) as session:
        query = (
            select(Alert, Subscriber.email, Skill.name)
            .join(Subscriber, Subscriber.id == Alert.subscriber_id)
            .join(Skill, Skill.id == Alert.skill_id)
            .order_by(Alert.id)
        )
        if email:
            query = query.where(Subscriber.email == normalise_email(email))
        rows = [_row(alert, address, name) for alert, address, name in session.execute(query).all()]
    if as_json:
        print_json(rows)
        return
    table = Table()
    for column in ("id", "subscriber", "skill", "period", "threshold", "min", "state"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["subscriber"],
            row["skill"],
            row["period"],
            f"{row['threshold']}%",
            str(row["min_count"]),
            row["state"],
        )
    out.print(table)


@alerts_app.command("remove")
def remove_command(alert_id: Annotated[int, typer.Argument(help="The alert to turn off.")]) -> None:
    """Turn an alert off (its past emails stay replayable)."""
    from digest.db import transaction
    from digest.deliver import alerts
    from digest.ops import audit

    with runtime() as rt, transaction(rt.sessions) as session:
        alerts.remove(session, alert_id)
        audit.record(session, audit.cli_actor(), "alerts.remove", {"alert": alert_id}, clock())
    out.print(f"alert {alert_id} is off")


@alerts_app.command("check")
def check_command(
    now: Annotated[str | None, typer.Option(help="Check as if it were this ISO 8601 time.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run one alert check and send what fires, in the foreground (what beat and the worker do)."""
    from digest.deliver import alerts

    at = parse_time(now) if now else clock()
    outcomes = []
    with runtime() as rt:
        for delivery_id in alerts.check(rt.sessions, at):
            try:
                outcome = alerts.send(
                    rt.sessions,
                    delivery_id,
                    mailer=rt.mailer,
                    composer=rt.composer,
                    config=rt.delivery,
                    now=at,
                )
            except MailError as exc:
                outcome = AlertOutcome(delivery_id, DeliveryStatus.PENDING, None, str(exc))
            outcomes.append(outcome)
    counts = {status.value: sum(o.status == status for o in outcomes) for status in ALERT_COUNTS}
    if as_json:
        print_json({**counts, "deliveries": [o.delivery_id for o in outcomes]})
    else:
        out.print(
            f"{counts['sent']} sent, {counts['skipped']} skipped, {counts['failed']} failed, "
            f"{counts['pending']} to retry"
        )


@alerts_app.command("replay")
def replay_command(
    delivery_id: Annotated[int, typer.Argument(help="The alert delivery to re-render.")],
    preview: Annotated[Path, typer.Option(help="Write the re-rendered email here (.html or .eml).")],
    as_json: JsonOption = False,
) -> None:
    """Re-render a past alert from its stored figures and items; say whether it is identical."""
    from digest.deliver import alerts

    if preview.suffix not in (".html", ".eml"):
        raise InvalidInputError("--preview takes a file ending in .html or .eml")
    with runtime() as rt:
        rendered = alerts.render(rt.sessions, delivery_id, rt.composer, rt.delivery)
    if preview.suffix == ".eml":
        preview.write_bytes(rendered.message.as_bytes())
    else:
        preview.write_text(rendered.email.html, encoding="utf-8")
    row = {
        "delivery": delivery_id,
        "hash_stored": rendered.hash_stored,
        "hash_now": rendered.email.body_hash,
        "identical": rendered.hash_stored == rendered.email.body_hash,
        "out": str(preview),
    }
    if as_json:
        print_json(row)
    else:
        verdict = "identical to what was sent" if row["identical"] else "DIFFERENT from what was sent"
        out.print(f"alert delivery {delivery_id} re-rendered to {preview}: {verdict}")


def _row(alert: Alert, email: str, skill: str) -> dict[str, Any]:
    return {
        "id": alert.id,
        "subscriber": email,
        "skill": skill,
        "skill_id": alert.skill_id,
        "period": alert.period,
        "threshold": alert.threshold,
        "min_count": alert.min_count,
        "state": alert.state,
        "created_at": iso(alert.created_at),
    }
