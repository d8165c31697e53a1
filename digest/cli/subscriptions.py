"""Subscribers: subscribe an address, list subscriptions."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from digest.cli.app import app, subscribers_app
from digest.cli.common import JsonOption, clock, fit, iso, out, print_json, relative, runtime, table
from digest.errors import InvalidInputError
from digest.records import SubscriptionInfo
from digest.vocabulary import WEEKDAYS, limit_skills


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
    from digest.config import load_settings
    from digest.db import transaction
    from digest.deliver import subscribers, suppression
    from digest.deliver.cadence import Schedule, check_cadence
    from digest.deliver.signup import SignupRequest, resolve_skills
    from digest.deliver.subscribers import normalise_email, subscribe
    from digest.ingest import queries
    from digest.ingest.skills import unknown_skill
    from digest.ops import schedules

    check_cadence(cadence)
    limit_skills(skill)
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
        with transaction(rt.sessions) as session:
            # Suppression wins over every shortcut (issue 14): ops can neither re-import the address
            # (--confirmed) nor mail it a confirmation it did not ask for.
            suppression.refuse(session, rt.settings.secret_key, normalise_email(email))
            skills, unknown = resolve_skills(session, skill)
            if unknown:
                # Every unknown skill with its suggestions, as `skills stats` words it (issue 17).
                raise InvalidInputError("; ".join(unknown_skill(session, query) for query in unknown))
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
            address = normalise_email(email)
            request = SignupRequest(address, tuple(s.id for s in skills), schedule)
            if not rt.signups.request(request, clock()):
                raise InvalidInputError(f"{address} was sent 3 confirmation emails today already")
            with transaction(rt.sessions) as session:
                info = subscribers.pending_for(session, address, cadence)
        with transaction(rt.sessions) as session:
            person = suppression.person_states(session, [info.subscriber_id])[info.subscriber_id]
    row = _subscription_json(info, person)
    if as_json:
        print_json(row)
    elif info.state == "active":
        out.print(
            f"{info.email}: {info.cadence} digest of {', '.join(info.skills)}, next at {row['next_due_at']}"
        )
    else:
        out.print(f"{info.email}: confirmation email sent; nothing is delivered until the link is used")


def _subscription_json(info: SubscriptionInfo, person: str) -> dict[str, Any]:
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
        "subscriber_state": person,
    }


@subscribers_app.command("list")
def subscribers_list(
    state: Annotated[
        str | None, typer.Option(help="Only subscriptions in this state (active, pending, ...).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every subscription with its address, cadence, skills, state and next send time."""
    from digest.db import transaction
    from digest.deliver import subscribers, suppression

    with runtime() as rt, transaction(rt.sessions) as session:
        infos = [info for info in subscribers.list_all(session) if state is None or info.state == state]
        people = suppression.person_states(session)
    # The person's own state (issue 14): active, pending, bouncing, unsubscribed or suppressed.
    rows = [_subscription_json(info, people[info.subscriber_id]) for info in infos]
    if as_json:
        print_json(rows)
        return
    # One "schedule" column, and the person's state only where it differs: two columns fewer, for 80.
    grid = table("id", "email", "schedule", "skills", "state", "next", text=("schedule", "skills", "state"))
    now = clock()
    for row, info in zip(rows, infos, strict=True):
        when = f" {row['weekday'][:3]}" if row["cadence"] == "weekly" else ""
        when += f" {row['hour']:02d}:00" if row["cadence"] != "hourly" else ""
        person = row["subscriber_state"]
        grid.add_row(
            str(row["id"]),
            row["email"],
            f"{row['cadence']}{when} {row['timezone']}",
            ", ".join(row["skills"]),
            row["state"] if person == row["state"] else f"{row['state']} (person {person})",
            relative(info.next_due_at, now) if info.next_due_at else "-",
        )
    out.print(fit(grid))
