"""Skills and tagging."""

from __future__ import annotations

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
from digest.models import (
    Skill,
    SkillAlias,
    Tag,
)
from digest.subscribers import resolve_skill


@app.command("tag")
def tag_command(
    text: Annotated[str | None, typer.Option(help="Body text (default: read standard input).")] = None,
    title: Annotated[str, typer.Option(help="Title text (title matches weigh more).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Tag a text with skills from the taxonomy."""
    body = text if text is not None else ("" if sys.stdin.isatty() else sys.stdin.read())
    with runtime() as rt, transaction(rt.sessions) as session:
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
        print_json(rows)
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
    with runtime() as rt, transaction(rt.sessions) as session:
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
