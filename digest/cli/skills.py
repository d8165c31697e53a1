"""Skills and tagging."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from digest.cli.app import app, skills_app
from digest.cli.common import (
    JsonOption,
    out,
    print_json,
    runtime,
)
from digest.db import transaction
from digest.errors import DigestError
from digest.match import Matcher
from digest.models import (
    SkillAlias,
    Tag,
)
from digest.records import TagMatch
from digest.skills import resolve_skill, search_skills
from digest.taxonomy import json_objects

JSONL_BATCH = 500


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
    with runtime() as rt, transaction(rt.sessions) as session:
        matcher = rt.matchers.get(session)
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
    memory (and the matcher scans each batch once).
    """
    documents = (
        (str(d.get("title") or ""), str(d.get("text") or "")) for _, d in json_objects(sys.stdin, "stdin")
    )
    while batch := list(itertools.islice(documents, JSONL_BATCH)):
        for tags in matcher.tag_many(batch):
            sys.stdout.write(json.dumps(_tag_rows(tags), ensure_ascii=False) + "\n")


@skills_app.command("search")
def skills_search(
    query: Annotated[str, typer.Argument(help="Part of a skill's name or alias.")],
    limit: Annotated[int, typer.Option(help="At most this many.", min=1, max=100)] = 10,
    as_json: JsonOption = False,
) -> None:
    """The skills that best match a query (exact, then prefix, then substring, then close spellings)."""
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
                hint = ", ".join(row["suggestions"]) or "nothing close"
                out.print(f"{row['query']}: unknown; did you mean {hint}?")
            else:
                out.print(
                    f"{row['query']}: {row['name']} [{row['id']}] {row['category']}, {row['items']} items; "
                    f"aliases: {', '.join(row['aliases'])}"
                )
    if any(row["id"] is None for row in rows):
        raise typer.Exit(1)
