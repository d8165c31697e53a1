"""The skills rising most (issue 17): the home page's list, from the daily tables, kept per process.

    skill_daily (35 UTC days) ──weekly_counts──> {skill: (last 7 days, 28 days before)}
                              ──rank (pure)────> the skills whose week stands out most from their baseline
                              ──rising_skills──> Rise records, names from the taxonomy

A skill's week is compared with its weekly average over the 4 weeks before, as a 7-day trend alert compares
them (``deliver.alerts``), so what the home page calls rising is what an alert would say.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from digest.models import Skill, SkillDaily
from digest.site.figures.arithmetic import rise_between
from digest.site.figures.kept import KeptUntilRefresh
from digest.site.figures.records import BASELINE_DAYS, RECENT_DAYS, Rise

# How many rising skills the home page lists.
RISING_SHOWN = 10
# Fewer items than this in a week is noise, however it compares (alerts have their own --min-count).
MIN_RECENT = 3


def weekly_counts(session: Session, today: date) -> dict[str, tuple[int, int]]:
    """Per skill (by id; merged skills count towards their survivor), its items in the 7 UTC days ending
    ``today`` and in the 28 days before them, for skills with any; one ``GROUP BY`` over the daily table.
    """
    recent_start = today - timedelta(days=RECENT_DAYS - 1)
    first = recent_start - timedelta(days=BASELINE_DAYS)
    survivor = func.coalesce(Skill.merged_into, Skill.id)
    in_recent = SkillDaily.day >= recent_start
    rows = session.execute(
        select(
            survivor,
            func.sum(case((in_recent, SkillDaily.items), else_=0)),
            func.sum(case((in_recent, 0), else_=SkillDaily.items)),
        )
        .join(Skill, Skill.id == SkillDaily.skill_id)
        .where(SkillDaily.day.between(first, today))
        .group_by(survivor)
    ).tuples()
    return {skill_id: (int(recent), int(before)) for skill_id, recent, before in rows}


def rank(
    counts: Mapping[str, tuple[int, int]], limit: int = RISING_SHOWN, min_recent: int = MIN_RECENT
) -> list[tuple[str, int, float]]:
    """The ids of the skills rising most, with their last 7 days and weekly baseline, most first.

    A skill rises when its week is above its baseline and has at least ``min_recent`` items. They are
    ordered by how far the week is above the baseline in units of the baseline's Poisson spread,
    ``(recent - baseline) / sqrt(baseline + 1)``: going from 2 to 6 items a week (+200%) and from 200 to 260
    (+30%) both stand out, 1 to 2 (+100%) does not, and a big skill's ordinary week never leads. Ties go to
    the busier week, then the id, so the order is stable.
    """
    weeks = BASELINE_DAYS / RECENT_DAYS
    scored = []
    for skill_id, (recent, before) in counts.items():
        baseline = before / weeks
        if recent >= min_recent and recent > baseline:
            scored.append(((recent - baseline) / math.sqrt(baseline + 1), recent, skill_id, baseline))
    scored.sort(key=lambda row: (-row[0], -row[1], row[2]))
    return [(skill_id, recent, baseline) for _, recent, skill_id, baseline in scored[:limit]]


def rising_skills(session: Session, today: date, limit: int = RISING_SHOWN) -> tuple[Rise, ...]:
    """The skills rising most in the 7 days ending ``today`` (``rank``), with their names and words."""
    ranked = rank(weekly_counts(session, today), limit)
    names = {
        skill_id: (name, slug)
        for skill_id, name, slug in session.execute(
            select(Skill.id, Skill.name, Skill.slug).where(Skill.id.in_([row[0] for row in ranked]))
        ).tuples()
    }
    rises = []
    for skill_id, recent, baseline in ranked:
        name, slug = names[skill_id]
        percent, words = rise_between(recent, baseline)
        rises.append(Rise(skill_id, name, slug, recent, round(baseline, 1), percent, words))
    return tuple(rises)


class RisingCache:
    """``rising_skills``, kept per process until the next refresh, taxonomy edit or day."""

    def __init__(self) -> None:
        self._kept: KeptUntilRefresh[tuple[Rise, ...]] = KeptUntilRefresh()

    def rising(self, session: Session, today: date) -> tuple[Rise, ...]:
        """The rising skills for ``today``."""
        return self._kept.get(session, today, lambda: rising_skills(session, today))
