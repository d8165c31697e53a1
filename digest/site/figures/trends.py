"""The skills moving most: items in the last ``days`` UTC days against the ``days`` before, from the daily
tables (issue 19's ``GET /api/v1/trends``).

A skill with a percent ranks by it (up: the largest rise first; down: the largest fall first), then by its
count; going up, the skills with nothing in the prior period ("new", no percent of nothing) follow, by
count. Skills merged into another count as it, as on the skill pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from digest.models import Skill, SkillDaily
from digest.site.figures.arithmetic import change_between

UP, DOWN = "up", "down"
PERIODS = {"7d": 7, "28d": 28}


@dataclass(frozen=True, slots=True)
class Mover:
    """One skill's count in the last period and the prior one; ``percent`` None when the prior was 0."""

    skill_id: str
    name: str
    slug: str
    count: int
    prior: int
    percent: int | None

    @property
    def new(self) -> bool:
        """Nothing in the prior period: there is no percent of nothing."""
        return self.prior == 0


def span(today: date, days: int) -> tuple[date, date]:
    """The first UTC day of the last ``days`` ending ``today``, and the first of the ``days`` before."""
    start = today - timedelta(days=days - 1)
    return start, start - timedelta(days=days)


def movers(session: Session, today: date, days: int, direction: str, limit: int) -> list[Mover]:
    """The ``limit`` skills moving most in ``direction`` over the ``days`` UTC days ending ``today``."""
    start, prior_start = span(today, days)
    merged = aliased(Skill)
    survivor = func.coalesce(merged.merged_into, merged.id)
    recent = func.sum(case((SkillDaily.day >= start, SkillDaily.items), else_=0))
    before = func.sum(case((SkillDaily.day < start, SkillDaily.items), else_=0))
    counts = (
        select(survivor.label("id"), recent.label("count"), before.label("prior"))
        .join(merged, merged.id == SkillDaily.skill_id)
        .where(SkillDaily.day.between(prior_start, today))
        .group_by(survivor)
        .subquery()
    )
    rows = session.execute(
        select(Skill.id, Skill.name, Skill.slug, counts.c.count, counts.c.prior).join(
            counts, counts.c.id == Skill.id
        )
    ).tuples()
    found = [
        Mover(skill_id, name, slug, int(count), int(prior), change_between(int(count), int(prior)).percent)
        for skill_id, name, slug, count, prior in rows
    ]
    return rank(found, direction)[:limit]


def rank(found: list[Mover], direction: str) -> list[Mover]:
    """The movers in ``direction``, in the order the module docstring gives. Pure."""
    sign = 1 if direction == UP else -1
    with_percent = [m for m in found if m.percent is not None and m.percent * sign > 0]
    with_percent.sort(key=lambda m: (-(m.percent or 0) * sign, -m.count, m.name))
    new = sorted((m for m in found if m.new and m.count), key=lambda m: (-m.count, m.name))
    return with_percent + (new if direction == UP else [])
