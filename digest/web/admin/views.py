"""What the admin pages show, read in one transaction each and handed to templates as rows, never ORM
objects: the deliveries filter, one delivery with its history, feeds in words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from digest.errors import InvalidInputError, NotFoundError
from digest.ingest import catalog
from digest.ingest.skills import resolve_skill
from digest.models import (
    Delivery,
    DeliveryEvent,
    DeliveryItem,
    Item,
    Replay,
    Skill,
    Source,
    Subscriber,
    Subscription,
    SubscriptionSkill,
)
from digest.web.forms import MAX_ID, whole_number

PAGE_SIZE = 50
STATUSES = ("pending", "sending", "sent", "skipped", "failed")
# What an HTTP status means for a feed, said the way an admin would say it.
HTTP_WORDS = {
    401: "the feed asks for a login",
    403: "the server refuses us",
    404: "the feed's address no longer exists",
    410: "the feed was removed for good",
    429: "the server says we ask too often",
    500: "the server failed",
    502: "the server's gateway failed",
    503: "the server is unavailable",
    504: "the server's gateway timed out",
}


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """The filters of the deliveries page, as read from its query string."""

    status: str = ""
    email: str = ""
    skill: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1

    @classmethod
    def read(cls, query: Mapping[str, str]) -> DeliveryFilter:
        """Parse the query string; ``InvalidInputError`` names the field that is wrong."""
        status = query.get("status", "").strip()
        if status and status not in STATUSES:
            raise InvalidInputError(f"status: choose one of {', '.join(STATUSES)}")
        page = query.get("page", "1").strip() or "1"
        if whole_number(page, 1, MAX_ID) is None:
            raise InvalidInputError("page: a number from 1")
        return cls(
            status,
            query.get("email", "").strip().lower(),
            query.get("skill", "").strip(),
            _day(query.get("from", ""), "from"),
            _day(query.get("to", ""), "to"),
            int(page),
        )

    def link(self, page: int) -> str:
        """The deliveries page with these filters at ``page``."""
        fields = {"status": self.status, "email": self.email, "skill": self.skill}
        fields |= {"from": str(self.since or ""), "to": str(self.until or ""), "page": str(page)}
        return "/admin/deliveries?" + urlencode({k: v for k, v in fields.items() if v})


def _day(text: str, field: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(f"{field}: write a date like 2026-11-29") from None


def when(value: datetime | None) -> str:
    """A time as the pages show it, in UTC; a dash for none."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def count_by(column: Any) -> Any:
    """Rows of (value, how many) of one column."""
    return select(column, func.count()).group_by(column)


def audit_row(entry: Any) -> dict[str, Any]:
    """An audit entry as a plain mapping."""
    return {name: getattr(entry, name) for name in ("id", "at", "actor", "action", "arguments", "result")}


def deliveries(session: Session, wanted: DeliveryFilter) -> list[Any]:
    """One page of deliveries (and one more row, to know whether there is a next page), newest first."""
    query = (
        select(
            Delivery.id,
            Delivery.status,
            Delivery.window_start,
            Delivery.window_end,
            Delivery.attempts,
            Delivery.subject,
            Delivery.error,
            Subscriber.email,
            Subscription.cadence,
        )
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .order_by(Delivery.id.desc())
        .offset((wanted.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    )
    if wanted.status:
        query = query.where(Delivery.status == wanted.status)
    if wanted.email:
        query = query.where(Subscriber.email.contains(wanted.email, autoescape=True))
    if wanted.skill:
        skill_id = resolve_skill(session, wanted.skill).id
        # Carried in the manifest, or followed by the subscription: skipped and failed digests have no items.
        query = query.where(
            or_(
                exists().where(DeliveryItem.delivery_id == Delivery.id, DeliveryItem.skill_id == skill_id),
                exists().where(
                    SubscriptionSkill.subscription_id == Delivery.subscription_id,
                    SubscriptionSkill.skill_id == skill_id,
                ),
            )
        )
    if wanted.since:
        query = query.where(Delivery.window_end >= datetime.combine(wanted.since, time(), UTC))
    if wanted.until:
        query = query.where(Delivery.window_end < datetime.combine(wanted.until + timedelta(1), time(), UTC))
    return list(session.execute(query).all())


def delivery(session: Session, delivery_id: int) -> dict[str, Any]:
    """Everything the delivery page shows, as rows (never ORM objects)."""
    delivery = session.execute(
        select(
            *Delivery.__table__.columns,
            Subscriber.email,
            Subscription.subscriber_id,
            Subscription.cadence,
            Subscription.timezone,
        )
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(Delivery.id == delivery_id)
    ).one_or_none()
    if delivery is None:
        raise NotFoundError(f"no delivery with id {delivery_id}")
    events = session.execute(
        select(DeliveryEvent.at, DeliveryEvent.event, DeliveryEvent.detail)
        .where(DeliveryEvent.delivery_id == delivery_id)
        .order_by(DeliveryEvent.at, DeliveryEvent.id)
    ).all()
    items = session.execute(
        select(
            DeliveryItem.position,
            Skill.name.label("skill"),
            DeliveryItem.matched,
            DeliveryItem.in_title,
            DeliveryItem.score,
            Item.title,
            Item.url,
            Source.name.label("source"),
        )
        .join(Skill, Skill.id == DeliveryItem.skill_id)
        .join(Item, Item.id == DeliveryItem.item_id)
        .join(Source, Source.id == Item.source_id)
        .where(DeliveryItem.delivery_id == delivery_id)
        .order_by(DeliveryItem.position)
    ).all()
    replays = session.execute(
        select(
            Replay.id,
            Replay.created_at,
            Replay.kind,
            Replay.address,
            Replay.message_id,
            Replay.status,
            Replay.error,
            Replay.actor,
        )
        .where(Replay.delivery_id == delivery_id)
        .order_by(Replay.id.desc())
    ).all()
    return {"delivery": delivery, "events": events, "items": items, "replays": replays}


def failing(info: catalog.FeedInfo) -> bool:
    """A feed that failed its last fetch or is not being crawled."""
    return info.consecutive_failures > 0 or info.state != "active"


def in_words(info: catalog.FeedInfo) -> str:
    """Why a feed is not being read, in a sentence; empty for a healthy feed."""
    if info.state != "active":
        reason = info.disabled_reason or info.last_error
        return f"{info.state}" + (f": {reason}" if reason else "")
    if not info.consecutive_failures:
        return info.last_warning or ""
    meaning = HTTP_WORDS.get(info.last_http_status or 0, "")
    if not meaning and info.last_http_status and info.last_http_status >= 500:
        meaning = "the server failed"
    parts = [part for part in (meaning, info.last_error) if part]
    return " — ".join(parts) or "the last fetch failed"
