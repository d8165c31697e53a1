"""``digest taxonomy ...``: load a taxonomy file, show its figures, add an alias, merge skills, re-tag."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from digest.cli.app import taxonomy_app
from digest.cli.common import JsonOption, clock, err, out, parse_time, print_json, progress, runtime

RETAG_BATCH = 500
SkillArgument = Annotated[str, typer.Argument(help="A skill's name, slug, id or alias.")]


@taxonomy_app.command("load")
def taxonomy_load(
    file: Annotated[Path, typer.Argument(help="A taxonomy in the shipped format (.jsonl) or YAML (.yaml).")],
    replace: Annotated[
        bool,
        typer.Option(help="The file is the whole taxonomy: skills it lacks redirect to their nearest skill."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Load a taxonomy file. Loading the version already loaded changes nothing; ids never change."""
    from digest.db import transaction
    from digest.ingest import taxonomy

    parsed = taxonomy.read_taxonomy(file)
    with runtime() as rt, transaction(rt.sessions) as session:
        result = taxonomy.load(session, parsed, clock(), replace=replace)
    if as_json:
        print_json(dataclasses.asdict(result))
    elif result.changed:
        out.print(f"loaded taxonomy {result.version}: {result.entities} skills, {result.aliases} aliases")
        if result.redirected or result.retired:
            out.print(
                f"{result.redirected} skills it no longer has now redirect to their nearest skill; "
                f"{result.retired} retired (they keep resolving but tag nothing)",
                highlight=False,
            )
        out.print("run `digest taxonomy retag` to tag stored items with it", highlight=False)
    else:
        out.print(f"taxonomy {result.version} is already loaded; nothing changed")


@taxonomy_app.command("stats")
def taxonomy_stats(as_json: JsonOption = False) -> None:
    """Version of the loaded taxonomy and how many skills, aliases and ambiguous aliases it has."""
    from digest.db import transaction
    from digest.ingest import taxonomy

    with runtime() as rt, transaction(rt.sessions) as session:
        figures = taxonomy.stats(session)
    if as_json:
        print_json(dataclasses.asdict(figures))
        return
    out.print(
        f"taxonomy {figures.version}: {figures.entities} skills, {figures.aliases} aliases "
        f"({figures.ambiguous} ambiguous)"
    )
    for source, counts in figures.by_source.items():
        kept, dropped = counts.get("kept", 0), counts.get("dropped", 0)
        out.print(f"  {source}: {kept} kept, {dropped} dropped", highlight=False)


@taxonomy_app.command("audit")
def taxonomy_audit(
    limit: Annotated[
        int, typer.Option(help="At most this many examples of each kind.", min=0, max=1000)
    ] = 20,
    as_json: JsonOption = False,
) -> None:
    """Risky aliases and skills: dictionary words without an evidence rule, aliases two skills share,
    skills with no tag in 90 days, skills whose tags come mostly from one source."""
    from digest.db import transaction
    from digest.ingest.taxonomy import audit

    with runtime() as rt, transaction(rt.sessions) as session:
        report = audit.audit(session, clock(), audit.read_words(), limit)
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    lines = [f"{report.words_without_rule} dictionary words without a rule"]
    lines += [f"  {r.alias!r} -> {r.skill} [{r.skill_id}]" for r in report.words_without_rule_examples]
    lines.append(f"{report.shared_aliases} aliases shared by two or more skills")
    lines += [f"  {shared.alias!r}: {', '.join(shared.skills)}" for shared in report.shared_alias_examples]
    lines.append(f"{report.silent_skills} skills with no tag in 90 days")
    if report.silent_skill_examples:
        lines.append("  " + ", ".join(report.silent_skill_examples))
    lines.append(f"{report.one_source_skills} skills whose tags come mostly from one source")
    lines += [
        f"  {row.skill}: {row.share:.0%} of {row.tags} tags from {row.source}"
        for row in report.one_source_examples
    ]
    for line in lines:
        out.print(line, highlight=False)


@taxonomy_app.command("alias")
def taxonomy_alias(
    skill: SkillArgument,
    alias: Annotated[str, typer.Argument(help="The new surface form.")],
    ambiguous: Annotated[bool, typer.Option(help="A common word: needs evidence to count.")] = False,
    case_sensitive: Annotated[bool, typer.Option(help="Counts only written exactly so.")] = False,
) -> None:
    """Add an alias to a skill (kept across taxonomy reloads)."""
    from digest.db import transaction
    from digest.ingest import taxonomy
    from digest.ingest.skills import resolve_skill

    with runtime() as rt, transaction(rt.sessions) as session:
        target = resolve_skill(session, skill)
        taxonomy.add_alias(
            session, target, alias, clock(), ambiguous=ambiguous, case_sensitive=case_sensitive
        )
    out.print(f"{target.name} [{target.id}] now also matches {alias!r}", highlight=False)


@taxonomy_app.command("merge")
def taxonomy_merge(
    merged: Annotated[str, typer.Argument(help="The skill that goes away (its id keeps resolving).")],
    into: Annotated[str, typer.Argument(help="The skill that stays.")],
) -> None:
    """Merge skill A into skill B: A's id redirects to B; its tags, subscriptions and aliases go to B."""
    from digest.db import transaction
    from digest.ingest import taxonomy
    from digest.ingest.skills import resolve_skill

    with runtime() as rt, transaction(rt.sessions) as session:
        source, target = resolve_skill(session, merged), resolve_skill(session, into)
        taxonomy.merge(session, source, target, clock())
    out.print(f"merged {source.name} [{source.id}] into {target.name} [{target.id}]", highlight=False)


@taxonomy_app.command("retag")
def taxonomy_retag(
    since: Annotated[str | None, typer.Option(help="Only items stored since this ISO 8601 time.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Tag stored items again with the taxonomy now loaded; batched, and resumable if interrupted."""
    from digest.ingest import crawl

    after: datetime | None = parse_time(since) if since else None
    with runtime() as rt:
        pending = crawl.stale_items(rt.sessions, rt.matchers, after)
        batches = [pending[start : start + RETAG_BATCH] for start in range(0, len(pending), RETAG_BATCH)]
        tags = 0
        with progress() as bar:
            task = bar.add_task("re-tagging", total=len(pending), visible=not as_json)
            for batch in batches:
                tags += crawl.tag_items(rt.sessions, rt.matchers, batch)
                bar.advance(task, len(batch))
    if as_json:
        print_json({"items": len(pending), "tags": tags})
    else:
        err.print(f"re-tagged {len(pending)} items: {tags} tags")
