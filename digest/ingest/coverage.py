"""Coverage you can see (issue 16): for each skill people follow, is the service finding content for it?

    followed skills -> subscribers, sources that produced its tags (30 days), items published in 7 and 30
    days, last publication, query feeds watched -> worst covered first

Items count by publication date, as digests do: a backlog found today is not coverage of this week.
A handful of grouped queries whatever the number of skills.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from digest.ingest.queries import followed_skills
from digest.models import Item, Skill, SkillSource, Subscriber, Subscription, SubscriptionSkill, Tag

RECENT = timedelta(days=7)
SPAN = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class SkillCoverage:
    """How well one followed skill is covered."""

    skill_id: str
    name: str
    slug: str
    subscribers: int
    sources_30d: int
    items_7d: int
    items_30d: int
    last_published: datetime | None
    watched: int

    def as_json(self) -> dict[str, Any]:
        """JSON-ready, the date as ISO 8601."""
        row = asdict(self)
        row["last_published"] = self.last_published.isoformat() if self.last_published else None
        return row


def coverage(session: Session, now: datetime) -> list[SkillCoverage]:
    """Every skill with subscribers, worst covered first: fewest items this week, then this month, then
    fewest sources; more subscribers first among equals (they are the most people let down)."""
    skill_ids = sorted(followed_skills(session))
    if not skill_ids:
        return []
    subscribers = dict(
        session.execute(
            select(SubscriptionSkill.skill_id, func.count(func.distinct(Subscription.subscriber_id)))
            .join(Subscription, Subscription.id == SubscriptionSkill.subscription_id)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(
                SubscriptionSkill.skill_id.in_(skill_ids),
                Subscription.state == "active",
                Subscriber.state == "active",
            )
            .group_by(SubscriptionSkill.skill_id)
        )
        .tuples()
        .all()
    )
    tagged = (
        select(Tag.skill_id)
        .join(Item, Item.id == Tag.item_id)
        .where(Tag.skill_id.in_(skill_ids))
        .group_by(Tag.skill_id)
    )
    month = now - SPAN
    in_month = Item.published_at >= month
    sources = dict(
        session.execute(
            tagged.add_columns(func.count(func.distinct(Item.source_id))).where(Tag.ingested_at >= month)
        )
        .tuples()
        .all()
    )
    counts = {
        skill_id: (int(week or 0), int(total or 0))
        for skill_id, week, total in session.execute(
            tagged.add_columns(
                func.sum(case((Item.published_at >= now - RECENT, 1), else_=0)),
                func.count(),
            ).where(in_month)
        ).tuples()
    }
    last = dict(session.execute(tagged.add_columns(func.max(Item.published_at))).tuples().all())
    watched = dict(
        session.execute(
            select(SkillSource.skill_id, func.count())
            .where(SkillSource.skill_id.in_(skill_ids))
            .group_by(SkillSource.skill_id)
        )
        .tuples()
        .all()
    )
    rows = [
        SkillCoverage(
            skill_id=skill.id,
            name=skill.name,
            slug=skill.slug,
            subscribers=int(subscribers.get(skill.id, 0)),
            sources_30d=int(sources.get(skill.id, 0)),
            items_7d=counts.get(skill.id, (0, 0))[0],
            items_30d=counts.get(skill.id, (0, 0))[1],
            last_published=last.get(skill.id),
            watched=int(watched.get(skill.id, 0)),
        )
        for skill in session.scalars(select(Skill).where(Skill.id.in_(skill_ids)))
    ]
    return sorted(rows, key=lambda r: (r.items_7d, r.items_30d, r.sources_30d, -r.subscribers, r.name))
