"""What one skill's page reads: its figures from the daily tables, and its latest items from the tags."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session, aliased

from digest.ingest.dedupe import clusters, fingerprint
from digest.models import Item, Skill, SkillDaily, SkillPairDaily, Source, Tag
from digest.records import OtherCopy
from digest.site.figures.arithmetic import summarise, why_matched
from digest.site.figures.daily import data_as_of
from digest.site.figures.records import (
    FOLD_DEPTH,
    LATEST_ITEMS,
    PERIOD_DAYS,
    TOP_PAIRS,
    WINDOW_DAYS,
    LatestItem,
    SkillFigures,
    SourceCount,
)


def skill_figures(
    session: Session, skill_id: str, today: date, window_days: int = WINDOW_DAYS
) -> SkillFigures:
    """The figures of one skill over the ``window_days`` UTC days ending ``today``, from the daily tables.

    Skills merged into this one count too: their rows stay until the days are rebuilt (the merge moved
    their tags here), so before ``refresh-figures`` an item tagged with both is counted twice.
    """
    skill = session.get(Skill, skill_id)
    if skill is None:
        raise ValueError(f"no skill with id {skill_id!r}")
    ids = [skill_id, *session.scalars(select(Skill.id).where(Skill.merged_into == skill_id))]
    window_start = today - timedelta(days=window_days - 1)
    # The change compares 8 weeks, which a short window does not cover.
    first = min(window_start, today - timedelta(days=2 * PERIOD_DAYS - 1))
    daily = {
        day: int(count)
        for day, count in session.execute(
            select(SkillDaily.day, func.sum(SkillDaily.items))
            .where(SkillDaily.skill_id.in_(ids), SkillDaily.day.between(first, today))
            .group_by(SkillDaily.day)
        ).tuples()
    }
    sources = [
        SourceCount(name, kind, int(count))
        for name, kind, count in session.execute(
            select(Source.name, Source.kind, func.sum(SkillDaily.items))
            .join(Source, Source.id == SkillDaily.source_id)
            .where(SkillDaily.skill_id.in_(ids), SkillDaily.day.between(window_start, today))
            .group_by(Source.id, Source.name, Source.kind)
        ).tuples()
    ]
    other = aliased(Skill)
    # A co-mentioned skill that was merged away is shown as the skill it was merged into.
    survivor = func.coalesce(other.merged_into, other.id)
    pair_counts = (
        select(survivor.label("id"), func.sum(SkillPairDaily.items).label("together"))
        .join(other, other.id == SkillPairDaily.other_id)
        .where(
            SkillPairDaily.skill_id.in_(ids),
            SkillPairDaily.day.between(window_start, today),
            survivor.not_in(ids),
        )
        .group_by(survivor)
        .order_by(func.sum(SkillPairDaily.items).desc(), survivor)
        .limit(TOP_PAIRS)
        .subquery()
    )
    pairs = [
        (name, slug, int(count))
        for name, slug, count in session.execute(
            select(Skill.name, Skill.slug, pair_counts.c.together).join(
                pair_counts, pair_counts.c.id == Skill.id
            )
        ).tuples()
    ]
    return summarise(
        (skill.id, skill.name, skill.slug),
        today,
        window_days,
        daily,
        sources,
        pairs,
        data_as_of(session),
    )


def page_json(session: Session, skill_id: str, today: date, window_days: int = WINDOW_DAYS) -> dict[str, Any]:
    """A skill page's figures and latest items as JSON: what ``digest skills stats --json`` prints and
    ``GET /api/v1/skills/{skill}`` answers (issue 19), one shape for both."""
    shown = skill_figures(session, skill_id, today, window_days)
    return {**shown.as_json(), "latest": [item.as_json() for item in latest_items(session, skill_id)]}


def latest_items(session: Session, skill_id: str, limit: int = LATEST_ITEMS) -> list[LatestItem]:
    """The skill's latest items by publication date (issue 16), each with why it matched; a story told by
    several feeds is listed once, newest copy first, with the others as "also in N sources" (as digests do,
    ``ingest.dedupe``; copies are looked for among the ``FOLD_DEPTH`` times ``limit`` latest items)."""
    rows = session.execute(
        select(
            Item.title,
            Item.url,
            Source.name,
            Source.kind,
            Item.published_at,
            Tag.ingested_at,
            Tag.matched,
            Tag.in_title,
            Tag.count.label("mentions"),  # not ``count``: a row is a tuple, whose count() that would hide
            Item.id,
            Item.story_key,
            Item.summary,
        )
        .select_from(Tag)
        .join(Item, Item.id == Tag.item_id)
        .join(Source, Source.id == Item.source_id)
        .where(Tag.skill_id == skill_id)
        .order_by(Item.published_at.desc(), Tag.item_id.desc())
        .limit(limit * FOLD_DEPTH)
    ).all()
    story_of = clusters(
        {row.story_key: fingerprint(row.title, row.summary, row.published_at) for row in rows}
    )
    stories: dict[str, list[Row[Any]]] = {}
    for row in rows:
        stories.setdefault(story_of[row.story_key], []).append(row)
    return [_latest(copies) for copies in list(stories.values())[:limit]]


def _latest(copies: list[Row[Any]]) -> LatestItem:
    """The newest copy of a story, with the first copy of each other source."""
    first, also = copies[0], {}
    for row in copies[1:]:
        if row.name != first.name and row.name not in also:
            also[row.name] = OtherCopy(row.id, row.name, row.url)
    return LatestItem(
        first.title,
        first.url,
        first.name,
        first.kind,
        first.published_at,
        first.ingested_at,
        why_matched(list(first.matched), first.in_title, first.mentions),
        tuple(also.values()),
    )
