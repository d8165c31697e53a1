"""The ``digest`` command: one small function per command, each calling an orchestrator.

Errors the user can act on print one line (``error: ...``) and exit 1; a bad setting exits 2.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from digest import crawl, digests, setup
from digest import sources as plan
from digest.cadence import WEEKDAYS, Schedule, check_cadence
from digest.config import Settings, load_settings
from digest.db import transaction
from digest.errors import ConfigError, DigestError, InvalidInputError
from digest.models import (
    Delivery,
    DeliveryItem,
    Item,
    Skill,
    SkillAlias,
    Source,
    Subscriber,
    Subscription,
    Tag,
)
from digest.runtime import Runtime
from digest.subscribers import resolve_skill, subscribe

app = typer.Typer(
    help="Email digests of the news, blog posts and papers that mention the skills you follow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema and bundled data.", no_args_is_help=True)
feeds_app = typer.Typer(help="The feeds we crawl.", no_args_is_help=True)
skills_app = typer.Typer(help="Look up skills in the taxonomy.", no_args_is_help=True)
deliveries_app = typer.Typer(help="Digests sent, skipped or failed.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(feeds_app, name="feeds")
app.add_typer(skills_app, name="skills")
app.add_typer(deliveries_app, name="deliveries")

out = Console()
err = Console(stderr=True)
T = TypeVar("T")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _runtime(*, schema: bool = True) -> Iterator[Runtime]:
    rt = Runtime(load_settings())
    try:
        if schema:
            rt.require_schema()
        yield rt
    finally:
        rt.close()


def _checked_settings() -> Settings:
    """Settings of a process that will open the database itself: refuse early if the schema is missing."""
    with _runtime() as rt:
        return rt.settings


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise InvalidInputError(f"{text!r} has no UTC offset; write it like 2026-11-29T08:00:00Z")
    return value.astimezone(UTC)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _each(items: Sequence[T], label: str, quiet: bool, work: Callable[[T], Any]) -> list[Any]:
    if quiet or len(items) < 2:
        return [work(item) for item in items]
    results = []
    with _progress() as progress:
        task = progress.add_task(label, total=len(items))
        for item in items:
            results.append(work(item))
            progress.advance(task)
    return results


# -- database --


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOption = False) -> None:
    """Apply schema migrations and load the bundled skill taxonomy (idempotent)."""
    with _runtime(schema=False) as rt:
        result = setup.upgrade_all(rt, _now())
    if as_json:
        _print_json(dataclasses.asdict(result))
        return
    loaded = (
        f"loaded ({result.entities} skills, {result.aliases} aliases)"
        if result.taxonomy_loaded
        else "up to date"
    )
    out.print(f"schema at revision {result.revision}; taxonomy {result.taxonomy_version} {loaded}")


# -- demo and processes --


@app.command()
def demo(as_json: JsonOption = False) -> None:
    """Run the whole pipeline on bundled feeds: crawl, tag, and email three demo subscribers."""
    from digest.demo import run_demo

    with _runtime(schema=False) as rt:
        if as_json:
            report = run_demo(rt, _now())
            _print_json(report.as_json())
            return
        with err.status("demo") as status:
            report = run_demo(rt, _now(), step=lambda text: status.update(f"demo: {text}"))
    feeds = Table(title="Feeds crawled from 127.0.0.1")
    for column in ("feed", "kind", "status", "new", "items"):
        feeds.add_column(column)
    for row in report.feeds:
        feeds.add_row(row.name, row.kind, row.status, str(row.new), str(row.items))
    out.print(feeds)
    out.print(f"{report.items} items, {report.tags} skill tags")
    emails = Table(title=f"Emails ({report.sent_now} sent by this run)")
    for column in ("id", "to", "cadence", "items", "subject"):
        emails.add_column(column)
    for email in report.emails:
        emails.add_row(str(email.delivery_id), email.to, email.cadence, str(email.items), email.subject)
    out.print(emails)
    out.print(f"outbox (Maildir): {report.outbox}")
    for email in report.emails:
        if email.path:
            out.print(f"  {email.path}")
    if report.preview:
        out.print(f"HTML preview: {report.preview}")


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address the web app listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8000,
) -> None:
    """Run the web app, a Celery worker and Celery beat together (embedded default). Ctrl-C stops all."""
    from digest import processes

    settings = load_settings()
    with _runtime(schema=False) as rt:
        setup.upgrade_all(rt, _now())
    children = [
        processes.start(processes.web_command(host, port), settings),
        processes.start(processes.worker_command(), settings),
        processes.start(processes.beat_command(), settings),
    ]
    err.print(f"web on http://{host}:{port}, worker and beat running; Ctrl-C stops all three")
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        err.print("[red]a process exited; stopping the others[/red]")
    except KeyboardInterrupt:
        err.print("stopping…")
    finally:
        processes.stop(children)


@app.command()
def web(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the web app (subscribe, manage, unsubscribe, skill pages)."""
    import uvicorn

    from digest.web import create_app

    settings = _checked_settings()
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = "crawl,match,digest",
    pool: Annotated[str, typer.Option(help="Celery pool: solo, prefork or threads.")] = "prefork",
    concurrency: Annotated[int, typer.Option(help="Processes or threads.")] = 2,
) -> None:
    """Run a Celery worker on the configured broker."""
    from digest import processes

    _checked_settings()
    command = processes.worker_command(queues.split(","), pool, concurrency)
    os.execv(command[0], command)  # noqa: S606 - replaces this process with the worker, argv is fixed


@app.command()
def beat() -> None:
    """Run Celery beat with the periodic schedules stored in the database (crawl and dispatch ticks)."""
    from celery.apps.beat import Beat

    from digest import tasks

    with _runtime() as rt:
        schedule = tasks.schedule_from_database(rt.sessions)
    tasks.app.conf.beat_schedule = schedule
    Beat(app=tasks.app, schedule=str(rt.settings.home / "celerybeat-schedule"), loglevel="WARNING").run()


# -- feeds and crawling --


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="The feed's http(s) URL.")],
    kind: Annotated[str, typer.Option(help="news, blog or paper.")] = "news",
    every: Annotated[
        str | None, typer.Option(help="Fetch interval such as 15m or 1h (default per kind).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name (default: the URL's host).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a feed to crawl."""
    from urllib.parse import urlsplit

    clean = plan.check_feed_url(url)
    plan.check_kind(kind)
    interval = plan.parse_duration(every) if every else None
    now = _now()
    with _runtime() as rt, transaction(rt.sessions) as session:
        if session.scalar(select(Source.id).where(Source.url == clean)) is not None:
            raise InvalidInputError(f"{clean} is already a feed")
        source = Source(
            url=clean,
            name=name or urlsplit(clean).hostname or clean,
            kind=kind,
            interval_seconds=interval,
            next_fetch_at=now,
            created_at=now,
        )
        session.add(source)
        session.flush()
        row = _feed_json(session, source)
    if as_json:
        _print_json(row)
    else:
        out.print(f"added feed {row['id']}: {row['url']} ({kind}, every {row['interval']}s)")


def _feed_json(session: Any, source: Source) -> dict[str, Any]:
    items = session.scalar(select(func.count()).select_from(Item).where(Item.source_id == source.id)) or 0
    return {
        "id": source.id,
        "url": source.url,
        "name": source.name,
        "kind": source.kind,
        "interval": plan.interval_for(source.kind, source.interval_seconds),
        "state": source.state,
        "last_status": source.last_status,
        "last_error": source.last_error,
        "consecutive_failures": source.consecutive_failures,
        "next_fetch": _iso(source.next_fetch_at),
        "items": items,
    }


@feeds_app.command("list")
def feeds_list(as_json: JsonOption = False) -> None:
    """List feeds with their status, failures, next fetch and item count."""
    with _runtime() as rt, transaction(rt.sessions) as session:
        rows = [_feed_json(session, source) for source in session.scalars(select(Source).order_by(Source.id))]
    if as_json:
        _print_json(rows)
        return
    table = Table()
    for column in ("id", "name", "kind", "state", "status", "failures", "next fetch", "items", "error"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["name"],
            row["kind"],
            row["state"],
            row["last_status"] or "-",
            str(row["consecutive_failures"]),
            row["next_fetch"] or "-",
            str(row["items"]),
            row["last_error"] or "",
        )
    out.print(table)


@app.command("crawl")
def crawl_command(
    everything: Annotated[bool, typer.Option("--all", help="Fetch every active feed, due or not.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Fetch every due feed now, in the foreground, through the same code the tasks use."""
    now = _now()
    with _runtime() as rt:
        claimed = crawl.claim_due_sources(rt.sessions, now, everything=everything)
        outcomes = _each(
            claimed,
            "crawling",
            as_json,
            lambda sid: crawl.refresh_and_tag(rt.sessions, rt.fetcher, rt.matchers, sid, now, rt.rng),
        )
    rows = [
        {
            "id": o.source_id,
            "url": o.url,
            "status": o.status,
            "http_status": o.http_status,
            "new": o.new,
            "updated": o.updated,
            "error": o.error,
        }
        for o in outcomes
    ]
    totals = {
        "feeds": len(rows),
        "ok": sum(r["status"] == "ok" for r in rows),
        "not_modified": sum(r["status"] == "not-modified" for r in rows),
        "errors": sum(r["status"] == "error" for r in rows),
        "new": sum(r["new"] for r in rows),
        "updated": sum(r["updated"] for r in rows),
    }
    if as_json:
        _print_json({"feeds": rows, "totals": totals})
        return
    for row in rows:
        code = row["http_status"] or "-"
        line = f"{row['id']:>4} {row['status']:<12} {code:>4} +{row['new']} ~{row['updated']} {row['url']}"
        out.print(line + (f"  [red]{row['error']}[/red]" if row["error"] else ""), highlight=False)
    out.print(
        f"{totals['feeds']} feeds: {totals['ok']} ok, {totals['not_modified']} not modified, "
        f"{totals['errors']} errors; {totals['new']} new, {totals['updated']} updated items"
    )


# -- skills and tagging --


@app.command("tag")
def tag_command(
    text: Annotated[str | None, typer.Option(help="Body text (default: read standard input).")] = None,
    title: Annotated[str, typer.Option(help="Title text (title matches weigh more).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Tag a text with skills from the taxonomy."""
    body = text if text is not None else ("" if sys.stdin.isatty() else sys.stdin.read())
    with _runtime() as rt, transaction(rt.sessions) as session:
        matcher = rt.matchers.get(session)
    tags = matcher.tag(title, body)
    rows = [
        {
            "id": t.skill_id,
            "name": t.name,
            "category": t.category,
            "matched": list(t.matched),
            "in_title": t.in_title,
            "count": t.count,
            "score": t.score,
        }
        for t in tags
    ]
    if as_json:
        _print_json(rows)
        return
    for tag in tags:
        out.print(f"{tag.name} ({tag.category}): {', '.join(tag.matched)} ×{tag.count} score {tag.score}")


@skills_app.command("show")
def skills_show(
    names: Annotated[list[str], typer.Argument(help="Skill names, slugs, ids or aliases.")],
    as_json: JsonOption = False,
) -> None:
    """Resolve skills and show their ids, aliases and item counts. Exit 1 if any is unknown."""
    rows: list[dict[str, Any]] = []
    with _runtime() as rt, transaction(rt.sessions) as session:
        for query in names:
            try:
                skill = resolve_skill(session, query)
            except DigestError:
                rows.append({"query": query, "id": None, "suggestions": _suggest(session, query)})
                continue
            aliases = session.scalars(select(SkillAlias.text).where(SkillAlias.skill_id == skill.id)).all()
            items = session.scalar(select(func.count()).select_from(Tag).where(Tag.skill_id == skill.id)) or 0
            rows.append(
                {
                    "query": query,
                    "id": skill.id,
                    "name": skill.name,
                    "slug": skill.slug,
                    "category": skill.category,
                    "aliases": list(aliases),
                    "items": items,
                }
            )
    if as_json:
        _print_json(rows)
    else:
        for row in rows:
            if row["id"] is None:
                hint = ", ".join(row["suggestions"]) or "nothing close"
                out.print(f"{row['query']}: unknown; did you mean {hint}?")
            else:
                out.print(
                    f"{row['query']}: {row['name']} [{row['id']}] {row['category']}, {row['items']} items; "
                    f"aliases: {', '.join(row['aliases'])}"
                )
    if any(row["id"] is None for row in rows):
        raise typer.Exit(1)


def _suggest(session: Any, query: str) -> list[str]:
    pattern = f"%{query.strip().casefold()[:40]}%"
    return list(
        session.scalars(
            select(Skill.name)
            .where(func.lower(Skill.name).like(pattern))
            .order_by(func.length(Skill.name))
            .limit(5)
        )
    )


# -- subscribers and digests --


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
    as_json: JsonOption = False,
) -> None:
    """Subscribe an address (added by an operator, so confirmed at once)."""
    check_cadence(cadence)
    if weekday.lower() not in WEEKDAYS:
        raise InvalidInputError(f"unknown weekday {weekday!r}: use monday … sunday")
    settings = load_settings()
    schedule = Schedule(cadence, hour, WEEKDAYS.index(weekday.lower()), timezone or settings.default_timezone)
    with _runtime() as rt, transaction(rt.sessions) as session:
        info = subscribe(session, email, skill, schedule, _now(), confirmed=True)
    row = {
        "id": info.id,
        "email": info.email,
        "cadence": info.cadence,
        "timezone": info.timezone,
        "skills": list(info.skills),
        "state": info.state,
        "next_due_at": _iso(info.next_due_at),
    }
    if as_json:
        _print_json(row)
    else:
        out.print(
            f"{info.email}: {info.cadence} digest of {', '.join(info.skills)}, next at {row['next_due_at']}"
        )


@app.command("send-due")
def send_due(
    now: Annotated[
        str | None, typer.Option("--now", help="Dispatch as if it were this ISO 8601 time.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run one dispatch and send its digests in the foreground (what beat and the worker do)."""
    at = _parse_time(now) if now else _now()
    with _runtime() as rt:
        delivery_ids = digests.dispatch_due(rt.sessions, at)
        outcomes = _each(
            delivery_ids,
            "sending",
            as_json,
            lambda did: digests.send_delivery(
                rt.sessions, did, mailer=rt.mailer, composer=rt.composer, config=rt.delivery, now=_now()
            ),
        )
    counts = {status: sum(o.status == status for o in outcomes) for status in ("sent", "skipped", "failed")}
    if as_json:
        _print_json({**counts, "deliveries": [o.delivery_id for o in outcomes]})
    else:
        out.print(f"{counts['sent']} sent, {counts['skipped']} skipped, {counts['failed']} failed")


@deliveries_app.command("list")
def deliveries_list(
    subscriber: Annotated[str | None, typer.Option(help="Only this address.")] = None,
    status: Annotated[str | None, typer.Option(help="sent, skipped, failed or pending.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List deliveries, newest first."""
    with _runtime() as rt, transaction(rt.sessions) as session:
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
                    "window_start": _iso(delivery.window_start),
                    "window_end": _iso(delivery.window_end),
                    "status": "pending" if delivery.status == "sending" else delivery.status,
                    "items": list(items),
                    "message_id": delivery.message_id,
                }
            )
    if as_json:
        _print_json(rows)
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
    with _runtime() as rt:
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
        _print_json(row)
    else:
        verdict = "identical to what was sent" if row["identical"] else "DIFFERENT from what was sent"
        out.print(f"delivery {delivery_id} re-rendered to {preview}: {verdict}")


def main() -> None:
    """Entry point: run the CLI, turning our errors into one readable line."""
    try:
        app()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except DigestError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
