"""What the service watches for each skill, and how well it covers them (issue 16):
``digest skills sources`` and ``digest skills coverage``."""

from __future__ import annotations

from typing import Annotated

import typer

from digest.cli.app import skills_app
from digest.cli.common import JsonOption, clock, fit, out, print_json, relative, runtime, table


@skills_app.command("sources")
def skills_sources(
    skill: Annotated[str, typer.Argument(help="A skill's name, id, slug or alias.")],
    add: Annotated[bool, typer.Option("--add", help="Add them as feeds (known URLs are shared).")] = False,
    points: Annotated[
        int | None, typer.Option(min=1, help="Hacker News: only stories with at least this many points.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The query feeds the service would watch for a skill (arXiv, Hacker News, tag feeds, releases)."""
    from digest.db import transaction
    from digest.ingest import queries
    from digest.ingest.skills import resolve_skill

    with runtime() as rt, transaction(rt.sessions) as session:
        found = resolve_skill(session, skill)
        terms = queries.skill_terms(session, found, queries.bundled_repositories())
        sources = queries.sources_for(terms, queries.bundled_templates(), points=points)
        if add:
            queries.add_sources(session, found.id, sources, clock())
    if as_json:
        print_json([source.as_json() for source in sources])
        return
    verb = "watching" if add else "would watch"
    out.print(f"{found.name}: {verb} {len(sources)} feeds")
    for source in sources:
        out.print(f"  [{source.kind}] {source.url}\n      {source.reason}", highlight=False)


@skills_app.command("coverage")
def skills_coverage(as_json: JsonOption = False) -> None:
    """Every skill with subscribers, worst covered first: sources and items found for it lately."""
    from digest.db import transaction
    from digest.ingest import coverage

    with runtime() as rt, transaction(rt.sessions) as session:
        rows = coverage.coverage(session, clock())
    if as_json:
        print_json([row.as_json() for row in rows])
        return
    counts = ("subscribers", "sources 30d", "items 7d", "items 30d", "watched")
    grid = table("skill", *counts[:4], "last item", counts[4], text=("skill",), right=counts)
    now = clock()
    for row in rows:
        grid.add_row(
            row.name,
            str(row.subscribers),
            str(row.sources_30d),
            str(row.items_7d),
            str(row.items_30d),
            relative(row.last_published, now),
            str(row.watched),
        )
    out.print(fit(grid))
