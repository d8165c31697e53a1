"""Notices for subscribers whose followed skill a taxonomy change merged or dropped (issue 15, item 7).

A merge or a reload that redirects a skill moves its subscriptions to the surviving skill, and a reload
that retires one leaves them on a skill that tags nothing; either way the reader would not know. Each
subscription that followed the skill gets one notice row, told in its next digest
(``digest.deliver.digests``). The row holds what the notice says (names and slugs as they are now), so a
replay of that digest renders the same bytes whatever the taxonomy becomes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from digest.models import Skill, SkillAlias, SkillNotice, SubscriptionSkill

# Skills offered in place of the one that went: its parents and related skills that still tag.
OFFERS = 3


def record(session: Session, skill: Skill, into: Skill | None, now: datetime) -> int:
    """A notice for each subscription following ``skill``, merged into ``into`` or dropped (None); call it
    before the subscriptions move. A subscription told about this skill before is not told again."""
    following = session.scalars(
        select(SubscriptionSkill.subscription_id).where(SubscriptionSkill.skill_id == skill.id)
    ).all()
    if not following:
        return 0
    told = set(
        session.scalars(
            select(SkillNotice.subscription_id).where(
                SkillNotice.skill_id == skill.id, SkillNotice.subscription_id.in_(following)
            )
        )
    )
    fresh = [subscription_id for subscription_id in following if subscription_id not in told]
    if not fresh:
        return 0
    body = {
        "skill": skill.name,
        "into": _link(into) if into is not None else None,
        "offers": [_link(offered) for offered in nearest(session, skill, into)],
    }
    session.execute(
        insert(SkillNotice),
        [
            {"subscription_id": subscription_id, "skill_id": skill.id, "body": body, "created_at": now}
            for subscription_id in fresh
        ],
    )
    return len(fresh)


def nearest(session: Session, skill: Skill, into: Skill | None) -> list[Skill]:
    """Up to ``OFFERS`` live skills near ``skill`` (its parents first, then related, the most popular
    first within each), not counting ``into``, which the notice names on its own."""
    wanted = [
        skill_id for skill_id in (*skill.parents, *skill.related) if skill_id != getattr(into, "id", None)
    ]
    if not wanted:
        return []
    found = session.scalars(
        select(Skill).where(
            Skill.id.in_(wanted),
            Skill.merged_into.is_(None),
            Skill.id.in_(select(SkillAlias.skill_id)),
        )
    ).all()
    parents = set(skill.parents)
    found = sorted(found, key=lambda near: (near.id not in parents, -near.popularity, near.name))
    return list(found[: OFFERS - (into is not None)])


def _link(skill: Skill) -> dict[str, Any]:
    return {"name": skill.name, "slug": skill.slug}
