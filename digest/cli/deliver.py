"""Subscribers and digests: subscribe, send-due, deliveries, replay."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

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
from digest.deliver import digests, replay, subscribers
from digest.deliver.cadence import Schedule, check_cadence
from digest.deliver.signup import SignupRequest, resolve_skills
from digest.deliver.subscribers import normalise_email, subscribe
from digest.errors import InvalidInputError, NotFoundError
from digest.ingest import queries
from digest.models import (
    Delivery,
    DeliveryEvent,
    DeliveryItem,
    Item,
    Replay,
    Skill,
    Subscriber,
    Subscription,
)
from digest.ops import audit, schedules
from digest.vocabulary import WEEKDAYS


@app.command("subscribe")
def subscribe_command(
    email: Annotated[str, typer.Argument(help="The subscriber's email address.")],
    skill: Annotated[list[str], typer.Option("--skill", "-s", help="A skill to follow (repeatable).")],
    cadence: Annotated[str, typer.Option(help="hourly, daily or weekly.")] = "daily",
    timezone: Annotated[
        str | None, typer.Option(help="IANA timezone (default DIGEST_DEFAULT_TIMEZONE).")
    ] = None,
    hour: Annotated[
        int | None, typer.Option(help="Local hour of daily and weekly digests (default: ops' default-hour).")
    ] = None,
    weekday: Annotated[
        str | None, typer.Option(help="Day of weekly digests (default: ops' default-weekday).")
    ] = None,
    confirmed: Annotated[
        bool, typer.Option(help="The owner already agreed: skip the confirmation email and start at once.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Subscribe an address: send it a confirmation link, or with --confirmed start at once."""
    check_cadence(cadence)
    if weekday is not None and weekday.lower() not in WEEKDAYS:
        raise InvalidInputError(f"unknown weekday {weekday!r}: use monday … sunday")
    settings = load_settings()
    with runtime() as rt:
        with transaction(rt.sessions) as session:
            default_hour, default_weekday = schedules.subscription_defaults(session)
        day = default_weekday if weekday is None else WEEKDAYS.index(weekday.lower())
        schedule = Schedule(
            cadence, default_hour if hour is None else hour, day, timezone or settings.default_timezone
        )
        if confirmed:
            with transaction(rt.sessions) as session:
                info = subscribe(session, email, skill, schedule, clock(), confirmed=True)
                if rt.settings.skill_sources:
                    # A skill's first confirmed subscriber adds its query feeds at once (issue 16); the
                    # crawl tick does the same for confirmations through the web.
                    queries.reconcile(
                        session, clock(), queries.bundled_templates(), queries.bundled_repositories()
                    )
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
def replay_command(
    delivery_id: Annotated[int | None, typer.Argument(help="The delivery to replay.")] = None,
    preview: Annotated[
        Path | None,
        typer.Option(help="Re-render into this file (.html or .eml) and compare with what was sent."),
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Send a copy to this address (an admin).")] = None,
    resend: Annotated[
        bool, typer.Option("--resend", help="Send it to its subscriber again, marked as a replay.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Resend even if it was resent before.")] = False,
    status: Annotated[
        str | None, typer.Option(help="Bulk: resend every delivery with this status (failed).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Bulk: failed at or after this ISO 8601 time.")] = None,
    until: Annotated[str | None, typer.Option(help="Bulk: failed before this ISO 8601 time.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Replay a past digest exactly as it was sent: re-render it, send a copy, resend it, or resend every
    failed delivery of an outage (idempotent when run again)."""
    if status is not None:
        if delivery_id is not None or preview or to or resend:
            raise InvalidInputError(
                "--status replays in bulk: give no DELIVERY_ID, --preview, --to or --resend"
            )
        _replay_bulk(status, since, until, as_json)
        return
    if delivery_id is None:
        raise InvalidInputError("name a DELIVERY_ID, or replay in bulk with --status failed --since T")
    if sum((preview is not None, to is not None, resend)) != 1:
        raise InvalidInputError("choose one of --preview FILE, --to ADDRESS or --resend")
    if preview is not None:
        _replay_preview(delivery_id, preview, as_json)
        return
    with runtime() as rt:
        if to is not None:
            outcome = replay.send_copy(rt, delivery_id, to, audit.cli_actor(), clock())
        else:
            outcome = replay.resend(rt, delivery_id, audit.cli_actor(), clock(), force=force)
    row = _replay_json(outcome)
    if as_json:
        print_json(row)
    else:
        verb = "sent" if outcome.status == "sent" else f"FAILED ({outcome.error})"
        out.print(f"delivery {delivery_id}: {outcome.kind} to {outcome.address} {verb}, {outcome.message_id}")
    if outcome.status != "sent":
        raise typer.Exit(1)


def _replay_preview(delivery_id: int, preview: Path, as_json: bool) -> None:
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


def _replay_bulk(status: str, since: str | None, until: str | None, as_json: bool) -> None:
    if status != "failed":
        raise InvalidInputError("--status takes failed: only failed deliveries are resent in bulk")
    if since is None:
        raise InvalidInputError("--status failed needs --since T (the start of the outage)")
    with runtime() as rt:
        outcomes, skipped = replay.resend_failed(
            rt,
            parse_time(since),
            parse_time(until) if until else None,
            audit.cli_actor(),
            clock(),
            lambda todo, work: each(todo, "resending", as_json, work),
        )
    sent = sum(outcome.status == "sent" for outcome in outcomes)
    if as_json:
        print_json(
            {
                "resent": sent,
                "failed": len(outcomes) - sent,
                "already_resent": skipped,
                "replays": [_replay_json(outcome) for outcome in outcomes],
            }
        )
    else:
        out.print(f"{sent} resent, {len(outcomes) - sent} failed again, {skipped} already resent before")
    if sent != len(outcomes):
        raise typer.Exit(1)


def _replay_json(outcome: replay.ReplayOutcome) -> dict[str, Any]:
    return {
        "delivery": outcome.delivery_id,
        "replay": outcome.replay_id,
        "kind": outcome.kind,
        "to": outcome.address,
        "message_id": outcome.message_id,
        "status": outcome.status,
        "error": outcome.error,
    }


@deliveries_app.command("show")
def deliveries_show(
    delivery_id: Annotated[int, typer.Argument(help="The delivery.")],
    as_json: JsonOption = False,
) -> None:
    """One delivery: subscriber, window, the items with why each was chosen, status history and replays."""
    with runtime() as rt, transaction(rt.sessions) as session:
        found = session.execute(
            select(Delivery, Subscriber.email, Subscription.cadence, Subscription.timezone)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Delivery.id == delivery_id)
        ).one_or_none()
        if found is None:
            raise NotFoundError(f"no delivery with id {delivery_id}")
        delivery, email, cadence, timezone = found
        items = session.execute(
            select(DeliveryItem, Item.title, Item.url, Skill.name)
            .join(Item, Item.id == DeliveryItem.item_id)
            .join(Skill, Skill.id == DeliveryItem.skill_id)
            .where(DeliveryItem.delivery_id == delivery_id)
            .order_by(DeliveryItem.position)
        ).all()
        history = session.scalars(
            select(DeliveryEvent).where(DeliveryEvent.delivery_id == delivery_id).order_by(DeliveryEvent.id)
        ).all()
        replays = session.scalars(
            select(Replay).where(Replay.delivery_id == delivery_id).order_by(Replay.id)
        ).all()
        row = {
            "id": delivery.id,
            "subscriber": email,
            "cadence": cadence,
            "timezone": timezone,
            "window_start": iso(delivery.window_start),
            "window_end": iso(delivery.window_end),
            "status": "pending" if delivery.status == "sending" else delivery.status,
            "error": delivery.error,
            "attempts": delivery.attempts,
            "subject": delivery.subject,
            "message_id": delivery.message_id,
            "template_version": delivery.template_version,
            "more": delivery.more,
            "items": [
                {
                    "position": entry.position,
                    "item": entry.item_id,
                    "title": title,
                    "url": url,
                    "skill": skill,
                    "matched": list(entry.matched),
                    "in_title": entry.in_title,
                    "score": entry.score,
                }
                for entry, title, url, skill in items
            ],
            "history": [{"at": iso(e.at), "event": e.event, "detail": e.detail} for e in history],
            "replays": [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "to": r.address,
                    "message_id": r.message_id,
                    "status": r.status,
                    "error": r.error,
                    "by": r.actor,
                    "at": iso(r.created_at),
                }
                for r in replays
            ],
        }
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
