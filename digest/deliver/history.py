"""The read model of deliveries (issue 13): a page of them for lists, and everything about one, as frozen
records for ``digest deliveries list``, ``digest deliveries show`` and the admin pages.

    deliveries ⋈ subscriptions ⋈ subscribers ──page(query)──> DeliveryPage of DeliveryRow   2 statements
        + delivery_items ⋈ skills of the page's ids, in one statement
    one delivery ──view(id)──> DeliveryView: header, ChosenItem…, Event…, ReplayRow…       4 statements

Pages are keyset pages: newest first by id, the next one starting ``before`` the last id shown, so the
thousandth page costs what the first does (no OFFSET walking the rows before it), and a page costs the
same number of statements whatever its rows (no query per delivery). Statuses are read as stored
(``pending``, ``sending``, ``sent``, ``skipped``, ``failed``); callers decide how to show them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import Session

from digest.deliver.selection import manifest_select
from digest.errors import InvalidInputError, NotFoundError
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
from digest.records import HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT, DeliveryStatus

DEFAULT_LIMIT = HISTORY_DEFAULT_LIMIT
MAX_LIMIT = HISTORY_MAX_LIMIT
# No id is larger; a larger number would not even bind in SQLite (a 64-bit INTEGER).
_LARGEST_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """Which deliveries a list shows; every field set narrows it. ``before`` asks for the page of ids
    below it (what ``DeliveryPage.next_before`` gave)."""

    statuses: tuple[str, ...] = ()
    # The subscriber's address exactly, or any address containing this text (both lower case).
    address: str = ""
    address_contains: str = ""
    # Carried in the manifest, or followed by the subscription: skipped and failed digests have no items.
    skill_id: str = ""
    ends_from: datetime | None = None
    ends_before: datetime | None = None
    before: int | None = None
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One delivery in a list."""

    id: int
    subscriber: str
    cadence: str
    window_start: datetime
    window_end: datetime
    status: str
    attempts: int
    # The last SMTP reply or reason of a failure or retry.
    error: str | None
    subject: str | None
    message_id: str | None
    sent_at: datetime | None
    # The skills and items of its manifest, in the digest's order.
    skills: tuple[str, ...]
    item_ids: tuple[int, ...]

    @property
    def item_count(self) -> int:
        """How many items it carried."""
        return len(self.item_ids)


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    """Deliveries newest first; ``next_before`` is the ``before`` of the next, older page (None: the end)."""

    rows: tuple[DeliveryRow, ...]
    next_before: int | None


@dataclass(frozen=True, slots=True)
class ChosenItem:
    """An item a digest carried, and why it was chosen."""

    position: int
    item_id: int
    title: str
    url: str | None
    source: str
    skill: str
    matched: tuple[str, ...]
    in_title: bool
    score: float


@dataclass(frozen=True, slots=True)
class Event:
    """A step of the delivery's history, with the SMTP reply of a failure in ``detail``."""

    at: datetime
    event: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """A copy or resend an admin made of the delivery."""

    id: int
    at: datetime
    kind: str
    address: str
    message_id: str
    status: str
    error: str | None
    actor: str


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """Everything about one delivery: who, which window, what it carried and why, what happened to it."""

    id: int
    subscriber: str
    subscriber_id: int
    cadence: str
    timezone: str
    window_start: datetime
    window_end: datetime
    status: str
    attempts: int
    error: str | None
    subject: str | None
    message_id: str | None
    template_version: str | None
    body_hash: str | None
    # Items left out by the cap.
    more: int
    created_at: datetime
    claimed_at: datetime | None
    finished_at: datetime | None
    items: tuple[ChosenItem, ...]
    events: tuple[Event, ...]
    # Oldest first.
    replays: tuple[ReplayRow, ...]


def page(session: Session, query: DeliveryQuery) -> DeliveryPage:
    """One page of the deliveries ``query`` selects, newest first, in two statements whatever its size."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit: a number from 1 to {MAX_LIMIT}")
    if query.before is not None and not 1 <= query.before <= _LARGEST_ID:
        raise InvalidInputError(f"before: a delivery id, not {query.before}")
    found = session.execute(_selected(query).limit(query.limit + 1)).all()
    shown = found[: query.limit]
    manifests = _manifests(session, [row.id for row in shown])
    rows = tuple(
        DeliveryRow(
            id=row.id,
            subscriber=row.email,
            cadence=row.cadence,
            window_start=row.window_start,
            window_end=row.window_end,
            status=row.status,
            attempts=row.attempts,
            error=row.error,
            subject=row.subject,
            message_id=row.message_id,
            sent_at=row.finished_at if row.status == DeliveryStatus.SENT else None,
            skills=tuple(sorted({skill for _, skill in manifests[row.id]})),
            item_ids=tuple(item_id for item_id, _ in manifests[row.id]),
        )
        for row in shown
    )
    return DeliveryPage(rows, shown[-1].id if len(found) > query.limit else None)


def _selected(query: DeliveryQuery) -> Select[tuple[object, ...]]:
    statement: Select[tuple[object, ...]] = (
        select(
            Delivery.id,
            Delivery.status,
            Delivery.window_start,
            Delivery.window_end,
            Delivery.attempts,
            Delivery.error,
            Delivery.subject,
            Delivery.message_id,
            Delivery.finished_at,
            Subscriber.email,
            Subscription.cadence,
        )
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .order_by(Delivery.id.desc())
    )
    if query.before is not None:
        statement = statement.where(Delivery.id < query.before)
    if query.statuses:
        statement = statement.where(Delivery.status.in_(query.statuses))
    if query.address:
        statement = statement.where(Subscriber.email == query.address)
    if query.address_contains:
        statement = statement.where(Subscriber.email.contains(query.address_contains, autoescape=True))
    if query.skill_id:
        statement = statement.where(
            or_(
                exists().where(
                    DeliveryItem.delivery_id == Delivery.id, DeliveryItem.skill_id == query.skill_id
                ),
                exists().where(
                    SubscriptionSkill.subscription_id == Delivery.subscription_id,
                    SubscriptionSkill.skill_id == query.skill_id,
                ),
            )
        )
    if query.ends_from is not None:
        statement = statement.where(Delivery.window_end >= query.ends_from)
    if query.ends_before is not None:
        statement = statement.where(Delivery.window_end < query.ends_before)
    return statement


def _manifests(session: Session, delivery_ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """(item id, skill name) of each of ``delivery_ids``, in the digest's order, in one statement."""
    carried: dict[int, list[tuple[int, str]]] = defaultdict(list)
    if not delivery_ids:
        return carried
    rows = session.execute(
        select(DeliveryItem.delivery_id, DeliveryItem.item_id, Skill.name)
        .join(Skill, Skill.id == DeliveryItem.skill_id)
        .where(DeliveryItem.delivery_id.in_(delivery_ids))
        .order_by(DeliveryItem.delivery_id, DeliveryItem.position)
    ).tuples()
    for delivery_id, item_id, skill in rows:
        carried[delivery_id].append((item_id, skill))
    return carried


def view(session: Session, delivery_id: int) -> DeliveryView:
    """Everything about one delivery; ``NotFoundError`` when there is none with this id."""
    if not 1 <= delivery_id <= _LARGEST_ID:
        raise NotFoundError(f"no delivery with id {delivery_id}")
    found = session.execute(
        select(
            Delivery,
            Subscriber.email,
            Subscription.subscriber_id,
            Subscription.cadence,
            Subscription.timezone,
        )
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(Delivery.id == delivery_id)
    ).one_or_none()
    if found is None:
        raise NotFoundError(f"no delivery with id {delivery_id}")
    delivery = found.Delivery
    items = session.execute(
        manifest_select(
            delivery_id,
            DeliveryItem.position,
            DeliveryItem.item_id,
            Item.title,
            Item.url,
            Source.name,
            Skill.name,
            DeliveryItem.matched,
            DeliveryItem.in_title,
            DeliveryItem.score,
        )
    ).tuples()
    events = session.execute(
        select(DeliveryEvent.at, DeliveryEvent.event, DeliveryEvent.detail)
        .where(DeliveryEvent.delivery_id == delivery_id)
        .order_by(DeliveryEvent.at, DeliveryEvent.id)
    ).tuples()
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
        .order_by(Replay.id)
    ).tuples()
    return DeliveryView(
        id=delivery.id,
        subscriber=found.email,
        subscriber_id=found.subscriber_id,
        cadence=found.cadence,
        timezone=found.timezone,
        window_start=delivery.window_start,
        window_end=delivery.window_end,
        status=delivery.status,
        attempts=delivery.attempts,
        error=delivery.error,
        subject=delivery.subject,
        message_id=delivery.message_id,
        template_version=delivery.template_version,
        body_hash=delivery.body_hash,
        more=delivery.more,
        created_at=delivery.created_at,
        claimed_at=delivery.claimed_at,
        finished_at=delivery.finished_at,
        items=tuple(
            ChosenItem(position, item_id, title, url, source, skill, tuple(matched), in_title, score)
            for position, item_id, title, url, source, skill, matched, in_title, score in items
        ),
        events=tuple(Event(*event) for event in events),
        replays=tuple(ReplayRow(*replay) for replay in replays),
    )
