"""Skills and tagging."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
import time
from datetime import UTC, date
from typing import TYPE_CHECKING, Annotated, Any

import typer

from digest.cli.app import app, skills_app
from digest.cli.common import (
    JsonOption,
    clock,
    out,
    print_json,
    progress,
    runtime,
)
from digest.errors import DigestError, InvalidInputError, NotFoundError
from digest.records import TagMatch
from digest.site.figures.records import WINDOW_DAYS

if TYPE_CHECKING:
    from digest.ingest.match import Matcher

JSONL_BATCH = 500
# Under DIGEST_HOME: the compiled matcher of the loaded taxonomy (``digest.ingest.match.cache``).
MATCHER_CACHE = "cache/matcher.pickle"


def _tag_rows(tags: list[TagMatch]) -> list[dict[str, Any]]:
    return [
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


@app.command("tag")
def tag_command(
    text: Annotated[str | None, typer.Option(help="Body text (default: read standard input).")] = None,
    title: Annotated[str, typer.Option(help="Title text (title matches weigh more).")] = "",
    jsonl: Annotated[
        bool,
        typer.Option("--jsonl", help='Read one {"title", "text"} object per line; write one list per line.'),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Tag text with skills from the taxonomy."""
    from digest.db import transaction
    from digest.ingest.taxonomy import compile_matcher

    # One matcher for the life of the process, compiled here: the crawler's cache of it (``rt.matchers``)
    # would import the whole crawler, a second of start-up (issue 15 item 6). The compiled matcher is kept
    # in the home for the next run while the taxonomy stays the same.
    with runtime() as rt, transaction(rt.sessions) as session:
        matcher = compile_matcher(session, cache=rt.settings.home / MATCHER_CACHE)
    if jsonl:
        _tag_lines(matcher)
        return
    body = text if text is not None else ("" if sys.stdin.isatty() else sys.stdin.read())
    tags = matcher.tag(title, body)
    if as_json:
        print_json(_tag_rows(tags))
        return
    for tag in tags:
        out.print(f"{tag.name} ({tag.category}): {', '.join(tag.matched)} ×{tag.count} score {tag.score}")


def _tag_lines(matcher: Matcher) -> None:
    """Stream: one document in, one line out, in batches, so a million documents need one process and flat
    memory (and the matcher scans each batch once). Each batch's lines are written at once.
    """
    from digest.ingest.taxonomy import json_objects

    # ``json.dumps`` with an option builds an encoder per call; one encoder writes the same bytes.
    encode = json.JSONEncoder(ensure_ascii=False).encode
    documents = (
        (str(d.get("title") or ""), str(d.get("text") or "")) for _, d in json_objects(sys.stdin, "stdin")
    )
    write = sys.stdout.write
    while batch := list(itertools.islice(documents, JSONL_BATCH)):
        # Most items have no tag: their line is a constant.
        write("".join(encode(_tag_rows(tags)) + "\n" if tags else "[]\n" for tags in matcher.tag_many(batch)))


@skills_app.command("search")
def skills_search(
    query: Annotated[str, typer.Argument(help="Part of a skill's name or alias.")],
    limit: Annotated[int, typer.Option(help="At most this many.", min=1, max=100)] = 10,
    as_json: JsonOption = False,
) -> None:
    """The skills that best match a query (exact, then prefix, then substring, then close spellings)."""
    from digest.db import transaction
    from digest.ingest.skills import search_skills

    with runtime() as rt, transaction(rt.sessions) as session:
        hits = search_skills(session, query, limit)
    if as_json:
        print_json([dataclasses.asdict(hit) for hit in hits])
        return
    for hit in hits:
        via = "" if hit.matched == hit.name else f" (as {hit.matched!r})"
        out.print(f"{hit.name} [{hit.id}] {hit.category}{via}", highlight=False)


@skills_app.command("show")
def skills_show(
    names: Annotated[list[str], typer.Argument(help="Skill names, slugs, ids or aliases.")],
    as_json: JsonOption = False,
) -> None:
    """Resolve skills and show their ids, aliases and item counts. Exit 1 if any is unknown."""
    from sqlalchemy import func, select

    from digest.db import transaction
    from digest.ingest.skills import resolve_skill, search_skills
    from digest.models import SkillAlias, Tag

    rows: list[dict[str, Any]] = []
    with runtime() as rt, transaction(rt.sessions) as session:
        for query in names:
            try:
                skill = resolve_skill(session, query)
            except DigestError:
                suggestions = [hit.name for hit in search_skills(session, query, 5)]
                rows.append({"query": query, "id": None, "suggestions": suggestions})
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
        print_json(rows)
    else:
        for row in rows:
            if row["id"] is None:
                close = ", ".join(row["suggestions"])
                hint = f"did you mean {close}?" if close else "no skill has a close name"
                out.print(f"{row['query']}: unknown; {hint}", highlight=False)
            else:
                out.print(
                    f"{row['query']}: {row['name']} [{row['id']}] {row['category']}, {row['items']} items; "
                    f"aliases: {', '.join(row['aliases'])}"
                )
    if any(row["id"] is None for row in rows):
        raise typer.Exit(1)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"not a date: {text!r}; write it like 2026-11-29") from None


@skills_app.command("stats")
def skills_stats(
    name: Annotated[str, typer.Argument(help="A skill's name, slug, id or alias.")],
    today: Annotated[
        str | None, typer.Option(help="Last UTC day of the window, YYYY-MM-DD (default: today).")
    ] = None,
    window: Annotated[int, typer.Option(help="Window in days.", min=7, max=3660)] = WINDOW_DAYS,
    as_json: JsonOption = False,
) -> None:
    """A skill's figures, as its page shows them: items in the window, last 4 weeks against the 4 before,
    weekly counts, kinds, top sources, skills mentioned with it and the latest items.
    """
    from digest.db import transaction
    from digest.ingest.skills import resolve_skill, unknown_skill
    from digest.site.figures import read

    last_day = _day(today) if today else clock().date()
    with runtime() as rt, transaction(rt.sessions) as session:
        try:
            skill = resolve_skill(session, name)
        except NotFoundError:
            raise NotFoundError(unknown_skill(session, name)) from None
        if as_json:
            print_json(read.page_json(session, skill.id, last_day, window))
            return
        shown = read.skill_figures(session, skill.id, last_day, window)
        latest = read.latest_items(session, skill.id)
    as_of = shown.as_of.strftime("%Y-%m-%d %H:%M UTC") if shown.as_of else "never refreshed"
    out.print(
        f"{shown.name} [{shown.skill_id}]: {shown.total} items in {shown.window_days} days", highlight=False
    )
    out.print(
        f"last 4 weeks {shown.change.last}, prior 4 weeks {shown.change.prior}: {shown.change.words}",
        highlight=False,
    )
    out.print("weekly: " + " ".join(str(week.items) for week in shown.weeks), highlight=False)
    out.print("kinds: " + ", ".join(f"{kind.kind} {kind.items}" for kind in shown.kinds), highlight=False)
    out.print(
        "top sources: " + (", ".join(f"{s.name} {s.items}" for s in shown.top_sources) or "none"),
        highlight=False,
    )
    out.print(
        "mentioned with: "
        + (", ".join(f"{o.name} {o.items} ({o.share:.0%})" for o in shown.co_skills) or "none"),
        highlight=False,
    )
    for item in latest:
        out.print(
            f"  {item.published_at:%Y-%m-%d %H:%M} {item.title} ({item.source}; {item.why})", highlight=False
        )
    out.print(f"data as of {as_of}", highlight=False)


@skills_app.command("refresh-figures")
def skills_refresh_figures(
    since: Annotated[
        str | None,
        typer.Option(help="First UTC day to rebuild, YYYY-MM-DD (default: the first one figures reach)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Rebuild the daily skill figures from SINCE to today in one transaction (pages keep showing the old
    ones until it commits). Run it after `taxonomy retag` or `taxonomy merge`, which change past days.
    """
    from digest.db import transaction
    from digest.site.figures import daily

    now, started = clock(), time.perf_counter()
    today = now.astimezone(UTC).date()
    with runtime() as rt, transaction(rt.sessions) as session:
        first = _day(since) if since else daily.first_day(session, today) or today
        if first > today:
            raise InvalidInputError(f"--since {first} is after today ({today})")
        days = (today - first).days + 1
        if quiet or as_json or days < 2:
            result = daily.refresh(session, first, today, now=now)
        else:
            with progress() as bar:
                task = bar.add_task("refreshing days", total=days)
                result = daily.refresh(session, first, today, now=now, on_day=lambda _: bar.advance(task))
    if as_json:
        print_json(
            {
                "since": result.since_day.isoformat(),
                "until": result.until_day.isoformat(),
                "days": result.days,
                "daily_rows": result.daily_rows,
                "pair_rows": result.pair_rows,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
        return
    out.print(
        f"refreshed {result.days} day{'' if result.days == 1 else 's'} "
        f"({result.since_day} to {result.until_day}): "
        f"{result.daily_rows} daily rows, {result.pair_rows} pair rows",
        highlight=False,
    )
