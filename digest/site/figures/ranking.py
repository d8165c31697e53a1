"""Skills by volume over the window: the ranking behind ``/skills`` and the home page, cached per process."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from digest.models import Skill, SkillAlias, SkillDaily
from digest.site.figures.daily import data_as_of
from digest.site.figures.kept import KeptUntilRefresh
from digest.site.figures.records import INDEX_PAGE_SIZE, WINDOW_DAYS, SkillIndexPage, SkillVolume

# The home page lists this many skills, most items first.
HOME_SKILLS = 40


def skill_volumes(session: Session, today: date, window_days: int = WINDOW_DAYS) -> dict[str, int]:
    """Items per skill (by id) over the window, for skills that have any. Skills merged away count
    towards the skill they were merged into until their days are rebuilt.
    """
    window_start = today - timedelta(days=window_days - 1)
    survivor = func.coalesce(Skill.merged_into, Skill.id)
    rows = session.execute(
        select(survivor, func.sum(SkillDaily.items))
        .join(Skill, Skill.id == SkillDaily.skill_id)
        .where(SkillDaily.day.between(window_start, today))
        .group_by(survivor)
    ).tuples()
    return {skill_id: int(count) for skill_id, count in rows}


class IndexCache:
    """The skill index's ranking (``ranked_skills`` over ``skill_volumes``), kept per process until the
    next refresh, taxonomy edit or day (``kept.KeptUntilRefresh``): computed per request, the ranking builds
    an object per skill, whose garbage collections cost a tenth of requests 50 ms or more
    (docs/performance.md).
    """

    def __init__(self) -> None:
        self._kept: KeptUntilRefresh[tuple[SkillVolume, ...]] = KeptUntilRefresh()

    def ranked(
        self, session: Session, today: date, window_days: int = WINDOW_DAYS
    ) -> tuple[SkillVolume, ...]:
        """Every skill by items over the window ending ``today``, computed again after a change."""
        return self._kept.get(
            session,
            today,
            lambda: ranked_skills(session, skill_volumes(session, today, window_days)),
            window_days,
        )


def ranked_skills(session: Session, volumes: Mapping[str, int]) -> tuple[SkillVolume, ...]:
    """Every skill not merged away, by ``volumes`` (items in the window, most first), then popularity
    (most first: among skills without items, the ones people know lead), then name."""
    rows = session.execute(
        select(Skill.id, Skill.name, Skill.slug, Skill.popularity).where(Skill.merged_into.is_(None))
    ).tuples()
    ranked = sorted(
        (
            (SkillVolume(skill_id, name, slug, volumes.get(skill_id, 0)), popularity)
            for skill_id, name, slug, popularity in rows
        ),
        key=lambda row: (-row[0].items, -row[1], row[0].name.casefold(), row[0].slug),
    )
    return tuple(skill for skill, _ in ranked)


def skill_index(
    session: Session,
    ranked: Sequence[SkillVolume],
    query: str = "",
    page: int = 1,
    page_size: int = INDEX_PAGE_SIZE,
    window_days: int = WINDOW_DAYS,
) -> SkillIndexPage:
    """One page of ``ranked`` (from ``ranked_skills``); with ``query``, only the skills whose name or an
    alias contains it (case-insensitive).
    """
    folded = " ".join(query.casefold().split())[:100]
    skills = ranked
    if folded:
        pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        aliases = select(SkillAlias.skill_id).where(SkillAlias.folded.like(pattern, escape="\\"))
        found = set(
            session.scalars(
                select(Skill.id).where(
                    or_(func.lower(Skill.name).like(pattern, escape="\\"), Skill.id.in_(aliases))
                )
            )
        )
        skills = [skill for skill in ranked if skill.skill_id in found]
    pages = max(1, math.ceil(len(skills) / page_size))
    page = min(max(1, page), pages)
    shown = tuple(skills[(page - 1) * page_size : page * page_size])
    return SkillIndexPage(shown, query.strip(), page, pages, len(skills), window_days, data_as_of(session))


def top_skills(ranked: Sequence[SkillVolume], limit: int = HOME_SKILLS) -> tuple[SkillVolume, ...]:
    """The first ``limit`` of ``ranked`` that have items in the window: the home page's list."""
    return tuple(skill for skill in ranked[:limit] if skill.items)
