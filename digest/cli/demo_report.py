"""What ``digest demo`` tells when it is done: the figures it counted from the database (feeds, items crawled,
skills tagged, digests sent, where the Maildir is) and the commands to try next (issue 17)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.db import transaction
from digest.deliver.digests import render_delivery
from digest.deliver.mail import MaildirMailer
from digest.models import Delivery, DeliveryItem, Item, Skill, Source, Subscriber, Subscription, Tag
from digest.records import CrawlOutcome, DeliveryStatus
from digest.runtime import Runtime


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A demo feed in the summary."""

    name: str
    kind: str
    status: str
    new: int
    items: int


@dataclass(frozen=True, slots=True)
class EmailRow:
    """A demo email in the summary."""

    delivery_id: int
    to: str
    cadence: str
    status: str
    items: int
    subject: str
    path: str | None


@dataclass(frozen=True, slots=True)
class SkillRow:
    """The skill the demo's items mention most: where a first visit to the site should start."""

    name: str
    slug: str
    items: int
    url: str


@dataclass(frozen=True, slots=True)
class NextStep:
    """A command to try after the demo, and what it shows (issue 17: the demo ends with what to do next)."""

    command: str
    why: str


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What the demo did, in figures it counted from the database."""

    feeds: tuple[FeedRow, ...]
    items: int
    tags: int
    emails: tuple[EmailRow, ...]
    outbox: str
    preview: str | None
    sent_now: int
    # How many distinct skills the demo's items mention, and the one they mention most.
    skills: int = 0
    busiest: SkillRow | None = None
    next_steps: tuple[NextStep, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "feeds": [_row(row) for row in self.feeds],
            "items": self.items,
            "tags": self.tags,
            "skills": self.skills,
            "busiest_skill": _row(self.busiest) if self.busiest else None,
            "emails": [_row(row) for row in self.emails],
            "digests_sent": len(self.emails),
            "outbox": self.outbox,
            "preview": self.preview,
            "sent_now": self.sent_now,
            "next_steps": [_row(step) for step in self.next_steps],
        }


def _row(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__}


def report(
    rt: Runtime,
    ids: dict[int, str],
    outcomes: dict[int, CrawlOutcome],
    subscription_ids: list[int],
    sent_now: int,
) -> DemoReport:
    mailer = rt.mailer
    with transaction(rt.sessions) as session:
        feeds = []
        for source in session.scalars(select(Source).where(Source.id.in_(list(ids))).order_by(Source.id)):
            count = (
                session.scalar(select(func.count()).select_from(Item).where(Item.source_id == source.id)) or 0
            )
            outcome = outcomes.get(source.id)
            feeds.append(
                FeedRow(
                    source.name, source.kind, source.last_status or "-", outcome.new if outcome else 0, count
                )
            )
        item_ids = select(Item.id).where(Item.source_id.in_(list(ids)))
        items = (
            session.scalar(select(func.count()).select_from(Item).where(Item.source_id.in_(list(ids)))) or 0
        )
        tags = session.scalar(select(func.count()).select_from(Tag).where(Tag.item_id.in_(item_ids))) or 0
        rows = session.execute(
            select(Delivery, Subscriber.email, Subscription.cadence)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Delivery.subscription_id.in_(subscription_ids), Delivery.status == DeliveryStatus.SENT)
            .order_by(Delivery.id)
        ).all()
        emails = []
        for delivery, email, cadence in rows:
            path = (
                mailer.find(delivery.message_id)
                if isinstance(mailer, MaildirMailer) and delivery.message_id
                else None
            )
            count = _item_count(session, delivery.id)
            emails.append(
                EmailRow(
                    delivery.id,
                    email,
                    cadence,
                    delivery.status,
                    count,
                    delivery.subject or "",
                    str(path) if path else None,
                )
            )
    preview = None
    if emails:
        rendered = render_delivery(rt.sessions, emails[0].delivery_id, rt.composer, rt.delivery)
        preview_path = rt.settings.home / "preview.html"
        preview_path.write_text(rendered.email.html, encoding="utf-8")
        preview = str(preview_path)
    outbox = str(mailer.path) if isinstance(mailer, MaildirMailer) else rt.settings.mail_url
    skills, busiest = _skills(rt, list(ids))
    return DemoReport(
        tuple(feeds),
        items,
        tags,
        tuple(emails),
        outbox,
        preview,
        sent_now,
        skills,
        busiest,
        next_steps(rt.settings.base_url, busiest),
    )


def _skills(rt: Runtime, source_ids: list[int]) -> tuple[int, SkillRow | None]:
    """How many skills the demo's items mention, and the most mentioned (by items; ties by name)."""
    items = func.count(Tag.item_id)
    with transaction(rt.sessions) as session:
        rows = session.execute(
            select(Skill.name, Skill.slug, items)
            .join(Tag, Tag.skill_id == Skill.id)
            .join(Item, Item.id == Tag.item_id)
            .where(Item.source_id.in_(source_ids))
            .group_by(Skill.id, Skill.name, Skill.slug)
            .order_by(items.desc(), Skill.name)
        ).all()
    if not rows:
        return 0, None
    name, slug, count = rows[0]
    return len(rows), SkillRow(name, slug, count, f"{rt.settings.base_url}/skills/{quote(slug)}")


def next_steps(base_url: str, busiest: SkillRow | None) -> tuple[NextStep, ...]:
    """What to try after the demo, with this run's own URL."""
    site = (
        f"then open {busiest.url} ({busiest.name}: the skill the demo's items mention most)"
        if busiest
        else f"then open {base_url}/"
    )
    return (
        NextStep("digest web", site),
        NextStep(
            "digest feeds list",
            "the feeds and how each fetch went; the demo's rest paused until the next demo",
        ),
        NextStep("digest feeds import --starter", "real feeds to crawl: the curated starter catalogue"),
        NextStep("digest up", "the web app, workers and beat together: digests go out on schedule"),
    )


def _item_count(session: Session, delivery_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(DeliveryItem).where(DeliveryItem.delivery_id == delivery_id)
        )
        or 0
    )
