"""What a digest says and the message it goes as: from a fresh selection, a stored manifest, or a preview.

content (the window, its sections, the signed links) -> compose -> MIME message (stable Message-ID)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.deliver import rights
from digest.deliver.cadence import Schedule, window
from digest.deliver.compose import Composer, archived_templates, build_message, message_id
from digest.deliver.digests import notices
from digest.deliver.outbox import DeliveryConfig
from digest.deliver.selection import ITEM_COLUMNS, item_from_row, manifest_select, select_window
from digest.errors import InvalidInputError, NotFoundError
from digest.models import (
    Delivery,
    DeliveryItem,
    Subscriber,
    Subscription,
    SubscriptionSkill,
)
from digest.ops import retention
from digest.records import (
    ComposedEmail,
    DigestContent,
    DigestSection,
    ItemForDigest,
    OtherCopy,
    SkillNoticeContent,
)
from digest.tokens import MANAGE, UNSUBSCRIBE, VIEW, make_token, make_until

# How long a digest's "view in browser" link works after its window closed (issue 17).
VIEW_PERIOD = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A digest rendered without sending: a past delivery from its manifest (with the hash stored when it
    was sent), or a preview of the next one (no stored hash)."""

    content: DigestContent
    email: ComposedEmail
    message: EmailMessage
    hash_stored: str | None
    # DIGEST_BASE_URL when it was sent (stored with the manifest since migration 0016), for ``compare``.
    sent_base_url: str | None = None


@dataclass(frozen=True, slots=True)
class Reader:
    """Who a digest goes to and under which subscription: what its links and headings need."""

    subscription_id: int
    subscriber_id: int
    email: str
    cadence: str
    timezone: str


def schedule_of(subscription: Subscription) -> Schedule:
    """The cadence record of a subscription row."""
    return Schedule(subscription.cadence, subscription.hour, subscription.weekday, subscription.timezone)


def content(
    config: DeliveryConfig,
    delivery_id: int,
    reader: Reader,
    start: datetime,
    end: datetime,
    sections: tuple[DigestSection, ...],
    more: int,
    told: tuple[SkillNoticeContent, ...] = (),
) -> DigestContent:
    """Everything the digest of ``[start, end)`` says to ``reader``, with its signed links."""
    unsubscribe_token = make_token(config.secret, UNSUBSCRIBE, {"s": reader.subscription_id})
    manage_token = make_token(config.secret, MANAGE, {"u": reader.subscriber_id})
    # A preview (id 0) has no delivery to show. The deadline comes from the window, not the clock, so a
    # replay from the manifest renders the same link and the same bytes.
    view_url = (
        f"{config.base_url}/view/{make_until(config.secret, VIEW, {'d': delivery_id}, end + VIEW_PERIOD)}"
        if delivery_id
        else ""
    )
    return DigestContent(
        delivery_id=delivery_id,
        email=reader.email,
        cadence=reader.cadence,
        timezone=reader.timezone,
        window_start=start,
        window_end=end,
        sections=sections,
        more=more,
        unsubscribe_url=f"{config.base_url}/u/{unsubscribe_token}",
        manage_url=f"{config.base_url}/manage/{manage_token}",
        base_url=config.base_url,
        notices=told,
        view_url=view_url,
    )


# Gmail clips a message whose HTML passes 102 KB, and the unsubscribe link goes with the clipped end
# (issue 17): a digest's HTML stays under this, whatever DIGEST_MAX_ITEMS allows.
MAX_HTML_BYTES = 90 * 1024


def within_clip(
    said: DigestContent, render: Callable[[DigestContent], ComposedEmail]
) -> tuple[DigestContent, ComposedEmail]:
    """``said`` and its rendering, keeping the most items in reading order whose HTML stays under
    ``MAX_HTML_BYTES``: the rest go into their section's "+N more" (or, for a section left with none, the
    digest's own), so the manifest stores what the email shows and a replay renders the same bytes."""
    email = render(said)
    if len(email.html.encode()) <= MAX_HTML_BYTES or said.item_count <= 1:
        return said, email
    # Binary search on how many to keep: a render is a few ms, and only an oversized digest pays it.
    fits, best, low, high = 1, kept(said, 1), 1, said.item_count - 1
    while low <= high:
        middle = (low + high) // 2
        trial = kept(said, middle)
        if len(render(trial).html.encode()) <= MAX_HTML_BYTES:
            fits, best, low = middle, trial, middle + 1
        else:
            high = middle - 1
    return best, render(best) if fits else email


def kept(said: DigestContent, count: int) -> DigestContent:
    """``said`` with its first ``count`` items in reading order; the others counted as more: in their
    section's "+N more", or in the digest's own for a section left with none (``unlisted`` in the body)."""
    sections, left = [], count
    for section in said.sections:
        shown = section.items[: max(0, left)]
        left -= len(shown)
        if shown:
            sections.append(
                replace(section, items=shown, more=section.more + len(section.items) - len(shown))
            )
    trimmed = replace(said, sections=tuple(sections))
    return replace(trimmed, more=said.more + said.item_count - trimmed.item_count)


def manifest_sections(
    session: Session, delivery_id: int, more_by_skill: Mapping[str, int]
) -> tuple[DigestSection, ...]:
    """The sections a delivery carried, from its stored manifest, in the order they were sent."""
    rows = session.execute(
        manifest_select(
            delivery_id,
            DeliveryItem.skill_id,
            DeliveryItem.matched,
            DeliveryItem.in_title,
            DeliveryItem.score,
            DeliveryItem.copies,
            *ITEM_COLUMNS,
        )
    ).all()
    sections: dict[str, tuple[str, str, list[ItemForDigest]]] = {}
    for row in rows:
        item, skill_name, skill_slug = item_from_row(row)
        if row.copies:
            item = replace(item, also=copies_from(row.copies))
        sections.setdefault(item.skill_id, (skill_name, skill_slug, []))[2].append(item)
    return tuple(
        DigestSection(sid, name, slug, tuple(items), int(more_by_skill.get(sid, 0)))
        for sid, (name, slug, items) in sections.items()
    )


def stored_copies(item: ItemForDigest) -> list[dict[str, Any]]:
    """The other copies an entry lists, as its manifest row keeps them (``DeliveryItem.copies``)."""
    return [{"item_id": copy.item_id, "source": copy.source_name, "url": copy.url} for copy in item.also]


def copies_from(stored: Sequence[Mapping[str, Any]]) -> tuple[OtherCopy, ...]:
    """The other copies of a manifest row, as they were shown."""
    return tuple(OtherCopy(copy["item_id"], copy["source"], copy["url"]) for copy in stored)


def message(
    digest: DigestContent, email: ComposedEmail, config: DeliveryConfig, date: datetime
) -> EmailMessage:
    """The MIME message of a delivery, with its stable Message-ID."""
    return build_message(
        email,
        sender=config.sender,
        recipient=digest.email,
        message_id_value=message_id(digest.delivery_id, config.sender),
        date=date,
        unsubscribe_url=digest.unsubscribe_url,
    )


def render_delivery(
    sessions: sessionmaker[Session], delivery_id: int, composer: Composer, config: DeliveryConfig
) -> Rendered:
    """Re-render a delivery from its stored manifest, as the message it was sent as."""
    with transaction(sessions) as session:
        row = session.execute(
            select(Delivery, Subscription, Subscriber.email)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Delivery.id == delivery_id)
        ).one_or_none()
        if row is None:
            raise retention.pruned(session, delivery_id) or NotFoundError(
                f"no delivery with id {delivery_id}"
            )
        delivery, subscription = row.Delivery, row.Subscription
        if subscription.state == rights.ERASED:
            raise rights.erased(delivery_id)
        reader = Reader(
            subscription.id,
            subscription.subscriber_id,
            row.email,
            subscription.cadence,
            subscription.timezone,
        )
        sections = manifest_sections(session, delivery_id, delivery.more_by_skill or {})
        _, told = notices.shown_in(session, delivery_id)
        said = content(
            config,
            delivery_id,
            reader,
            delivery.window_start,
            delivery.window_end,
            sections,
            delivery.more,
            told,
        )
        sent_at, stored, sent_base = (
            delivery.finished_at or delivery.created_at,
            delivery.body_hash,
            delivery.base_url,
        )
        files = archived_templates(session, "digest", delivery.template_version)
    composed = composer.digest(said, archived=files)
    return Rendered(said, composed, message(said, composed, config, sent_at), stored, sent_base)


def preview(
    sessions: sessionmaker[Session],
    email: str,
    cadence: str | None,
    now: datetime,
    composer: Composer,
    config: DeliveryConfig,
) -> Rendered:
    """The digest the next dispatch would send ``email`` for ``cadence``, rendered as of ``now``, not sent.

    The window is ``cadence.window``, the one the dispatch opens; its items are those stored by ``now``.
    Nothing is stored.
    """
    address = email.strip().lower()
    cadence = cadence.strip().lower() if cadence else None
    with transaction(sessions) as session:
        query = (
            select(Subscription, Subscriber)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscriber.email == address, Subscription.state != "unsubscribed")
        )
        found = session.execute(query).all()
        if not found:
            raise NotFoundError(f"{address} has no subscription")
        chosen = [row for row in found if cadence is None or row.Subscription.cadence == cadence]
        if len(chosen) != 1:
            offered = ", ".join(sorted(row.Subscription.cadence for row in found))
            need = f"no {cadence} subscription" if cadence else "several subscriptions"
            raise InvalidInputError(f"{address} has {need}; choose --cadence from: {offered}")
        subscription, subscriber = chosen[0].Subscription, chosen[0].Subscriber
        start, end = window(
            schedule_of(subscription), subscription.last_window_end, subscription.next_due_at, now
        )
        skill_ids = session.scalars(
            select(SubscriptionSkill.skill_id).where(SubscriptionSkill.subscription_id == subscription.id)
        ).all()
        selection = select_window(
            session, skill_ids, start, end, config.max_items, max_age=config.max_item_age
        )
        reader = Reader(
            subscription.id, subscriber.id, subscriber.email, subscription.cadence, subscription.timezone
        )
        _, told = notices.pending(session, subscription.id)
        said = content(config, 0, reader, start, end, selection.sections, selection.more, told)
    said, composed = within_clip(said, composer.digest)
    domain = config.sender.rpartition("@")[2] or "localhost"
    msgid = f"<digest.preview.{subscription.id}.{int(end.timestamp())}@{domain}>"
    built = build_message(
        composed,
        sender=config.sender,
        recipient=said.email,
        message_id_value=msgid,
        date=now,
        unsubscribe_url=said.unsubscribe_url,
    )
    return Rendered(said, composed, built, None)
