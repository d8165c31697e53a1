"""Feeds and crawling: ``digest feeds ...`` and ``digest crawl``."""

from __future__ import annotations

import dataclasses
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from digest.cli.app import app, feeds_app
from digest.cli.common import (
    JsonOption,
    clock,
    fit,
    iso,
    out,
    print_json,
    progress,
    read_input,
    relative,
    runtime,
    table,
)
from digest.errors import InvalidInputError
from digest.records import CrawlOutcome
from digest.vocabulary import parse_duration

if TYPE_CHECKING:
    from digest.ingest import catalog

PARSERS = os.cpu_count() or 2
POOL_FROM = 8
FeedId = Annotated[int, typer.Argument(help="The feed's id (see `digest feeds list`).")]


def _feed_json(info: catalog.FeedInfo) -> dict[str, Any]:
    row = dataclasses.asdict(info)
    row["next_fetch"], row["last_fetched"] = iso(info.next_fetch), iso(info.last_fetched)
    return row


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="The feed's http(s) URL, or a web page that links to its feed.")],
    kind: Annotated[str, typer.Option(help="news, blog or paper.")] = "news",
    every: Annotated[
        str | None, typer.Option(help="Fetch interval such as 15m or 1h (default per kind).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Display name (default: the feed's title or host).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a feed to crawl. A web page is answered by the feed it links to (autodiscovery)."""
    from digest.db import transaction
    from digest.ingest import catalog, discover
    from digest.ingest import sources as plan

    interval = parse_duration(every) if every else None
    with runtime() as rt:
        found = discover.find_feed(rt.fetcher, plan.check_feed_url(url))
        with transaction(rt.sessions) as session:
            info = catalog.add_feed(
                session, found.url, kind, clock(), interval=interval, name=name or found.title
            )
    if as_json:
        print_json(_feed_json(info))
        return
    via = f" (found on {url})" if found.url != url.strip() else ""
    out.print(f"added feed {info.id}: {info.url}{via} — {info.kind}, every {info.interval}s")


@feeds_app.command("list")
def feeds_list(as_json: JsonOption = False) -> None:
    """List feeds: kind, interval, last status and error, failures in a row, next fetch, items."""
    from digest.db import transaction
    from digest.ingest import catalog

    with runtime() as rt, transaction(rt.sessions) as session:
        feeds = catalog.list_feeds(session)
    if as_json:
        print_json([_feed_json(info) for info in feeds])
        return
    # The state when not active, else how the last fetch went: one column where two did not fit in 80.
    grid = table(
        "id",
        "name",
        "kind",
        "every",
        "status",
        "fails",
        "next",
        "items",
        "error",
        text=("name", "error"),
        right=("id", "fails", "items"),
    )
    now = clock()
    for info in feeds:
        grid.add_row(
            str(info.id),
            info.name,
            info.kind,
            f"{info.interval // 60}m",
            info.state if info.state != "active" else info.last_status or "-",
            str(info.consecutive_failures),
            relative(info.next_fetch, now, due=True) if info.state == "active" else "-",
            str(info.items),
            info.disabled_reason or info.last_error or info.last_warning or "",
        )
    out.print(fit(grid))


@feeds_app.command("import")
def feeds_import(
    file: Annotated[
        Path | None,
        typer.Argument(help="An OPML file (subscription list).", exists=True, dir_okay=False),
    ] = None,
    kind: Annotated[str, typer.Option(help="Kind of feeds whose outline names none.")] = "blog",
    starter: Annotated[
        bool, typer.Option("--starter", help="Import the curated starter catalogue shipped with digest.")
    ] = False,
    only: Annotated[
        str | None, typer.Option(help="With --starter: only this kind (news, blog or paper).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add every feed of an OPML file, or of the starter catalogue; feeds already known are left alone."""
    from digest.db import transaction
    from digest.ingest import catalog
    from digest.ingest.opml import parse_opml

    if (file is None) == (not starter):
        raise InvalidInputError("give an OPML file or --starter (not both)")
    if only is not None and not starter:
        raise InvalidInputError("--only goes with --starter")
    opml = catalog.starter_catalogue(only) if file is None else parse_opml(read_input(file))
    with runtime() as rt, transaction(rt.sessions) as session:
        result = catalog.import_feeds(session, opml, kind, clock())
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    out.print(f"{len(result.added)} added, {len(result.known)} already known, {len(result.skipped)} skipped")
    for line in (*result.skipped, *result.warnings):
        out.print(f"  {line}", highlight=False)


@feeds_app.command("export")
def feeds_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write every feed as OPML 2.0 (kinds and intervals kept in attributes)."""
    from digest.db import transaction
    from digest.ingest import catalog
    from digest.ingest.opml import write_opml

    with runtime() as rt, transaction(rt.sessions) as session:
        feeds = catalog.export_feeds(session)
    document = write_opml(feeds, title="digest feeds", created=clock())
    if output is None:
        sys.stdout.buffer.write(document)
    else:
        output.write_bytes(document)


def _change(source_id: int, action: str, as_json: bool) -> None:
    from digest.db import transaction
    from digest.ingest import catalog

    with runtime() as rt, transaction(rt.sessions) as session:
        if action == "remove":
            info = catalog.remove_feed(session, source_id)
        else:
            info = catalog.set_state(session, source_id, action, clock())
    if as_json:
        print_json(_feed_json(info))
    else:
        verb = {"pause": "paused", "resume": "resumed", "remove": "removed"}[action]
        out.print(f"{verb} feed {info.id}: {info.url}")


@feeds_app.command("pause")
def feeds_pause(source_id: FeedId, as_json: JsonOption = False) -> None:
    """Stop fetching a feed until it is resumed; its items stay."""
    _change(source_id, "pause", as_json)


@feeds_app.command("resume")
def feeds_resume(source_id: FeedId, as_json: JsonOption = False) -> None:
    """Fetch a paused or disabled feed again, starting now."""
    _change(source_id, "resume", as_json)


@feeds_app.command("remove")
def feeds_remove(source_id: FeedId, as_json: JsonOption = False) -> None:
    """Delete a feed and its items."""
    _change(source_id, "remove", as_json)


def _outcome_json(outcome: CrawlOutcome) -> dict[str, Any]:
    return {
        "id": outcome.source_id,
        "url": outcome.url,
        "status": outcome.status,
        "http_status": outcome.http_status,
        "new": outcome.new,
        "updated": outcome.updated,
        "error": outcome.error,
    }


@app.command("crawl")
def crawl_command(
    everything: Annotated[bool, typer.Option("--all", help="Fetch every active feed, due or not.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Fetch every due feed now, in the foreground, through the same code the tasks use, and wait.

    Exits 1 when any feed failed.
    """
    from digest.ingest import crawl, rounds
    from digest.ingest.parse import parse_feed

    now = clock()
    with runtime() as rt, ExitStack() as stack:
        claimed = crawl.claim_due_sources(rt.sessions, now, everything=everything)
        # Starting parser processes costs about a second: worth it only for more than a handful of feeds.
        parse = stack.enter_context(crawl.ParserPool(PARSERS)) if len(claimed) >= POOL_FROM else parse_feed
        bar = stack.enter_context(progress()) if not as_json and len(claimed) > 1 else None
        task = bar.add_task("crawling", total=len(claimed)) if bar is not None else None

        def done(outcome: CrawlOutcome) -> None:
            if bar is not None and task is not None:
                bar.advance(task)

        outcomes: list[CrawlOutcome] = rounds.crawl_round(
            rt.sessions,
            rt.fetcher,
            claimed,
            now,
            rt.rng,
            parse,
            threads=rt.settings.crawl_threads,
            matchers=rt.matchers,
            done=done,
        )
    rows = [_outcome_json(outcome) for outcome in sorted(outcomes, key=lambda o: o.source_id)]
    totals = {
        "feeds": len(rows),
        "ok": sum(r["status"] == "ok" for r in rows),
        "not_modified": sum(r["status"] == "not-modified" for r in rows),
        "errors": sum(r["status"] == "error" for r in rows),
        "new": sum(r["new"] for r in rows),
        "updated": sum(r["updated"] for r in rows),
    }
    if as_json:
        print_json({"feeds": rows, "totals": totals})
    else:
        _print_crawl(rows, totals)
    if totals["errors"]:
        raise typer.Exit(1)


def _print_crawl(rows: list[dict[str, Any]], totals: dict[str, int]) -> None:
    for row in rows:
        code = row["http_status"] or "-"
        line = f"{row['id']:>4} {row['status']:<12} {code:>4} +{row['new']} ~{row['updated']} {row['url']}"
        error = ("  " + row["error"], "red") if row["error"] else ""
        out.print(Text.assemble(line, error), highlight=False)
    out.print(
        f"{totals['feeds']} feeds: {totals['ok']} ok, {totals['not_modified']} not modified, "
        f"{totals['errors']} errors; {totals['new']} new, {totals['updated']} updated items"
    )
