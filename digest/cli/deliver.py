"""Subscribers and digests: subscribe, send-due, deliveries, replay."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from digest import digests, subscribers
from digest.cadence import WEEKDAYS, Schedule, check_cadence
from digest.cli.app import app, deliveries_app, subscribers_app
from digest.cli.common import (
    JsonOption,
    clock,
    each,
    iso,
    out,
    parse_time,
    print_json,
    runtime,
)
from digest.config import load_settings
from digest.db import transaction
from digest.errors import InvalidInputError
from digest.models import (
    Delivery,
    DeliveryItem,
    Skill,
    Subscriber,
    Subscription,
)
from digest.signup import SignupRequest, resolve_skills
from digest.subscribers import normalise_email, subscribe


@app.command("subscribe")
def subscribe_command(
    email: Annotated[str, typer.Argument(help="The subscriber's email address.")],
    skill: Annotated[list[str], typer.Option("--skill", "-s", help="A skill to follow (repeatable).")],
    cadence: Annotated[str, typer.Option(help="hourly, daily or weekly.")] = "daily",
    timezone: Annotated[
        str | None, typer.Option(help="IANA timezone (default DIGEST_DEFAULT_TIMEZONE).")
    ] = None,
    hour: Annotated[int, typer.Option(help="Local hour of daily and weekly digests.")] = 8,
    weekday: Annotated[str, typer.Option(help="Day of weekly digests.")] = "monday",
    confirmed: Annotated[
        bool, typer.Option(help="The owner already agreed: skip the confirmation email and start at once.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Subscribe an address: send it a confirmation link, or with --confirmed start at once."""
    check_cadence(cadence)
    if weekday.lower() not in WEEKDAYS:
        raise InvalidInputError(f"unknown weekday {weekday!r}: use monday … sunday")
    settings = load_settings()
    schedule = Schedule(cadence, hour, WEEKDAYS.index(weekday.lower()), timezone or settings.default_timezone)
    with runtime() as rt:
        if confirmed:
            with transaction(rt.sessions) as session:
                info = subscribe(session, email, skill, schedule, clock(), confirmed=True)
        else:
            with transaction(rt.sessions) as session:
                skills, unknown = resolve_skills(session, skill)
            if unknown:
                raise InvalidInputError(f"unknown skill(s): {', '.join(unknown)}")
            address = normalise_email(email)
            request = SignupRequest(address, tuple(s.id for s in skills), schedule)
            if not rt.signups.request(request, clock()):
                raise InvalidInputError(f"{address} was sent 3 confirmation emails today already")
            with transaction(rt.sessions) as session:
                info = subscribers.pending_for(session, address, cadence)
    row = _subscription_json(info)
    if as_json:
        print_json(row)
    elif info.state == "active":
        out.print(
            f"{info.email}: {info.cadence} digest of {', '.join(info.skills)}, next at {row['next_due_at']}"
        )
    else:
        out.print(f"{info.email}: confirmation email sent; nothing is delivered until the link is used")


def _subscription_json(info: subscribers.SubscriptionInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "email": info.email,
        "cadence": info.cadence,
        "timezone": info.timezone,
        "hour": info.hour,
        "weekday": WEEKDAYS[info.weekday],
        "skills": list(info.skills),
        "state": info.state,
        "next_due_at": iso(info.next_due_at),
    }


@subscribers_app.command("list")
def subscribers_list(
    state: Annotated[
        str | None, typer.Option(help="Only subscriptions in this state (active, pending, ...).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every subscription with its address, cadence, skills, state and next send time."""
    with runtime() as rt, transaction(rt.sessions) as session:
        infos = [info for info in subscribers.list_all(session) if state is None or info.state == state]
    rows = [_subscription_json(info) for info in infos]
    if as_json:
        print_json(rows)
        return
    table = Table()
    for column in ("id", "email", "cadence", "when", "skills", "state", "next"):
        table.add_column(column, overflow="fold")
    for row in rows:
        when = f"{row['weekday'][:3]} " if row["cadence"] == "weekly" else ""
        when += f"{row['hour']:02d}:00 {row['timezone']}" if row["cadence"] != "hourly" else row["timezone"]
        table.add_row(
            str(row["id"]),
            row["email"],
            row["cadence"],
            when,
            ", ".join(row["skills"]),
            row["state"],
            row["next_due_at"] or "-",
        )
    out.print(table)


@app.command("send-due")
def send_due(
    now: Annotated[
        str | None, typer.Option("--now", help="Dispatch as if it were this ISO 8601 time.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run one dispatch and send its digests in the foreground (what beat and the worker do)."""
    at = parse_time(now) if now else clock()
    with runtime() as rt:
        delivery_ids = [did for batch in digests.dispatch_due(rt.sessions, at) for did in batch]
        outcomes = each(
            delivery_ids,
            "sending",
            as_json,
            lambda did: digests.send_delivery(
                rt.sessions,
                did,
                mailer=rt.mailer,
                composer=rt.composer,
                config=rt.delivery,
                now=clock(),
                cache=rt.windows,
            ),
        )
    counts = {status: sum(o.status == status for o in outcomes) for status in ("sent", "skipped", "failed")}
    if as_json:
        print_json({**counts, "deliveries": [o.delivery_id for o in outcomes]})
    else:
        out.print(f"{counts['sent']} sent, {counts['skipped']} skipped, {counts['failed']} failed")


@deliveries_app.command("list")
def deliveries_list(
    subscriber: Annotated[str | None, typer.Option(help="Only this address.")] = None,
    status: Annotated[str | None, typer.Option(help="sent, skipped, failed or pending.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List deliveries, newest first."""
    with runtime() as rt, transaction(rt.sessions) as session:
        query = (
            select(Delivery, Subscriber.email, Subscription.cadence)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .order_by(Delivery.id.desc())
        )
        if subscriber:
            query = query.where(Subscriber.email == subscriber.strip().lower())
        if status:
            query = query.where(
                Delivery.status.in_(("pending", "sending") if status == "pending" else (status,))
            )
        rows = []
        for delivery, email, cadence in session.execute(query).all():
            items = session.scalars(
                select(DeliveryItem.item_id)
                .where(DeliveryItem.delivery_id == delivery.id)
                .order_by(DeliveryItem.position)
            ).all()
            skills = session.scalars(
                select(Skill.name)
                .join(DeliveryItem, DeliveryItem.skill_id == Skill.id)
                .where(DeliveryItem.delivery_id == delivery.id)
                .distinct()
            ).all()
            rows.append(
                {
                    "id": delivery.id,
                    "subscriber": email,
                    "cadence": cadence,
                    "skills": sorted(skills),
                    "window_start": iso(delivery.window_start),
                    "window_end": iso(delivery.window_end),
                    "status": "pending" if delivery.status == "sending" else delivery.status,
                    "items": list(items),
                    "message_id": delivery.message_id,
                }
            )
    if as_json:
        print_json(rows)
        return
    table = Table()
    for column in ("id", "subscriber", "cadence", "window end", "status", "items"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["subscriber"],
            row["cadence"],
            row["window_end"],
            row["status"],
            str(len(row["items"])),
        )
    out.print(table)


@app.command("replay")
def replay(
    delivery_id: Annotated[int, typer.Argument(help="The delivery to re-render.")],
    preview: Annotated[Path, typer.Option(help="Write the re-rendered email here (.html or .eml).")],
    as_json: JsonOption = False,
) -> None:
    """Re-render a past delivery from its stored manifest and check it is identical to what was sent."""
    if preview.suffix not in (".html", ".eml"):
        raise InvalidInputError("--preview takes a file ending in .html or .eml")
    with runtime() as rt:
        rendered = digests.render_delivery(rt.sessions, delivery_id, rt.composer, rt.delivery)
    if preview.suffix == ".eml":
        preview.write_bytes(rendered.message.as_bytes())
    else:
        preview.write_text(rendered.email.html, encoding="utf-8")
    stored, email = rendered.hash_stored, rendered.email
    row = {
        "delivery": delivery_id,
        "hash_stored": stored,
        "hash_now": email.body_hash,
        "identical": stored == email.body_hash,
        "out": str(preview),
    }
    if as_json:
        print_json(row)
    else:
        verdict = "identical to what was sent" if row["identical"] else "DIFFERENT from what was sent"
        out.print(f"delivery {delivery_id} re-rendered to {preview}: {verdict}")
