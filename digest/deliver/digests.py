"""Deliver orchestrator: open windows, claim, select, compose, send, record; replay and preview.

    dispatch: due subscriptions, a batch at a time (rows locked, others skip them)
              -> one delivery row each (pending, window fixed) -> the ids to enqueue
    send:     claim delivery (pending -> sending) -> select items of the window (or the stored manifest)
              -> compose -> store manifest -> send -> mark sent | skipped | failed

A window is fixed when its delivery row is created and the row is unique per (subscription, window end),
so two ticks, two beats or a redelivered task never make a second digest for one slot, and the next
window starts where this one ended, so no item is lost or repeated. A dispatch closes no window the
matcher has not finished (``tag_horizon``), so an item ingested just before a slot is not left out of
its digest by being tagged just after.

A digest costs a fixed number of SQL statements whatever its number of items: claim and read (four),
the manifest (two), the result (one or two); and two commits. ``docs/design.md`` ("Exactly once")
has the one window no SMTP sender can close.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, case, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.deliver.cadence import Schedule, latest_slot, next_slot, previous_slot
from digest.deliver.compose import Composer, build_message, message_id
from digest.deliver.mail import Mailer
from digest.deliver.selection import (
    ITEM_COLUMNS,
    MAX_ITEM_AGE,
    WindowCache,
    item_from_row,
    select_window,
)
from digest.errors import InvalidInputError, MailError, NotFoundError
from digest.models import (
    AlertDelivery,
    Delivery,
    DeliveryEvent,
    DeliveryItem,
    Item,
    Skill,
    Source,
    Subscriber,
    Subscription,
    SubscriptionSkill,
    TemplateVersion,
)
from digest.ops import metrics, schedules
from digest.records import ComposedEmail, DeliveryOutcome, DigestContent, DigestSection, ItemForDigest
from digest.tokens import MANAGE, UNSUBSCRIBE, make_token

# A delivery claimed longer ago than this is taken to have lost its worker and may be claimed again.
SEND_LEASE = timedelta(minutes=10)
# A delivery still pending this long after it was enqueued is enqueued again (its task may be lost with
# a broker that restarted); a second task for it finds it claimed or finished and does nothing.
REQUEUE_AFTER = timedelta(minutes=15)
# An item the matcher has not tagged within this time no longer holds dispatch back (it is stuck, and
# ``digest taxonomy retag`` will reach it).
TAG_GRACE = timedelta(minutes=15)
# A temporary failure is retried after 30 s, 1 min, 2 min, ... up to 30 min: always shorter than the
# broker's visibility timeout, so a waiting retry is never handed to a second worker.
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=30)
# Permanent failures in a row after which a subscriber is "bouncing" and gets no more digests.
BOUNCE_LIMIT = 3
DISPATCH_BATCH = 500
# A dispatch that has created this many deliveries, and at least as many as the table held, refreshes
# the table's statistics (``_analyze``).
ANALYZE_AFTER = 1000
FINAL = ("sent", "skipped", "failed")


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """What the deliver wing needs from the settings."""

    sender: str
    base_url: str
    secret: str
    max_items: int
    send_empty: bool
    # How long before its window an item may have been published and still be mailed (issue 16).
    max_item_age: timedelta = MAX_ITEM_AGE


def claimable(table: type[Delivery] | type[AlertDelivery], now: datetime) -> ColumnElement[bool]:
    """The rows a sender may claim at ``now``: pending, or claimed by a sender whose lease ran out."""
    return or_(
        table.status == "pending",
        (table.status == "sending") & (table.claimed_at < now - SEND_LEASE),
    )


def retry_delay(attempt: int) -> timedelta:
    """How long to wait before the ``attempt``-th retry (1, 2, ...) of a temporary failure."""
    delay: timedelta = RETRY_BASE * 2 ** max(0, attempt - 1)
    return min(RETRY_MAX, delay)


def schedule_of(subscription: Subscription) -> Schedule:
    """The cadence record of a subscription row."""
    return Schedule(subscription.cadence, subscription.hour, subscription.weekday, subscription.timezone)


# --- dispatch --------------------------------------------------------------------------------------


def dispatch_due(
    sessions: sessionmaker[Session], now: datetime, *, batch: int = DISPATCH_BATCH
) -> Iterator[list[int]]:
    """Open the window of every subscription due at ``now``; yield the new deliveries a batch at a time.

    Batches are committed as they go, so sending can start while a large dispatch goes on and memory does
    not grow with the number of subscribers. Last come the deliveries whose task may be lost (pending
    past their re-enqueue time, or abandoned mid-send), to be enqueued again.

    While sending is paused (``digest sending pause``) it does nothing: due subscriptions stay due, and
    the first dispatch after resuming opens one window each, from where the last one ended.
    """
    with transaction(sessions) as session:
        if schedules.sending_paused(session):
            return
        horizon = tag_horizon(session, now)
        known = _estimated_deliveries(session)
    after = created = 0
    while True:
        with transaction(sessions) as session:
            rows = _due_batch(session, now, after, batch)
            if not rows:
                break
            after = rows[-1].id
            opened = _open_windows(session, rows, now, horizon)
            created += len(opened)
            if known is not None and created >= max(ANALYZE_AFTER, known):
                _analyze(session)
                known = None
        if opened:
            yield opened
    with transaction(sessions) as session:
        stale = requeue(session, now)
    if stale:
        yield stale


def _estimated_deliveries(session: Session) -> float | None:
    """PostgreSQL's estimate of the deliveries table's rows (None elsewhere)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return float(session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'deliveries'")) or 0)


def _analyze(session: Session) -> None:
    """Refresh the planner's statistics of a deliveries table this dispatch has at least doubled.

    Plans that PostgreSQL caches per connection (the claim, foreign-key checks) were made for the table's
    old size; on a young installation (or with autovacuum off) a table planned as empty is scanned whole
    for every digest. ANALYZE replaces the statistics, which makes every cached plan be made again.
    """
    session.execute(text("ANALYZE deliveries"))


def tag_horizon(session: Session, now: datetime) -> datetime:
    """The latest window end a dispatch may close: when the oldest item not yet tagged was ingested."""
    oldest = session.scalar(
        select(func.min(Item.ingested_at)).where(
            Item.tagged_version.is_(None), Item.ingested_at >= now - TAG_GRACE, Item.ingested_at < now
        )
    )
    return min(now, oldest) if oldest is not None else now


def _due_batch(session: Session, now: datetime, after: int, batch: int) -> Sequence[Row[Any]]:
    # Rows are locked until the batch commits; a second dispatcher skips them (PostgreSQL) or waits for
    # the write lock (SQLite), and either way finds them no longer due.
    return session.execute(
        select(
            Subscription.id,
            Subscription.cadence,
            Subscription.hour,
            Subscription.weekday,
            Subscription.timezone,
            Subscription.next_due_at,
            Subscription.last_window_end,
        )
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(
            Subscription.state == "active",
            Subscriber.state == "active",
            Subscription.next_due_at <= now,
            Subscription.id > after,
        )
        .order_by(Subscription.id)
        .limit(batch)
        .with_for_update(of=Subscription, skip_locked=True)
    ).all()


def _open_windows(session: Session, rows: Sequence[Row[Any]], now: datetime, horizon: datetime) -> list[int]:
    """Create the deliveries of a batch of due subscriptions and move their windows on."""
    deliveries: list[dict[str, Any]] = []
    moves: dict[int, dict[str, Any]] = {}
    for row in rows:
        schedule = Schedule(row.cadence, row.hour, row.weekday, row.timezone)
        end = latest_slot(schedule, now)
        if end > horizon:
            continue  # the matcher is still on items of this window: the next tick takes it
        start = row.last_window_end or previous_slot(schedule, row.next_due_at)
        if end <= start:
            # A cadence change left the last window ending after this schedule's latest slot: no window
            # yet, the next one starts where the last ended.
            moves[row.id] = {"id": row.id, "next_due_at": next_slot(schedule, start)}
            continue
        deliveries.append(
            {
                "subscription_id": row.id,
                "window_start": start,
                "window_end": end,
                "status": "pending",
                "attempts": 0,
                "more": 0,
                "more_by_skill": {},
                "created_at": now,
                "requeue_at": now + REQUEUE_AFTER,
            }
        )
        moves[row.id] = {"id": row.id, "next_due_at": next_slot(schedule, end), "last_window_end": end}
    created: list[int] = []
    if deliveries:
        dialect_insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        inserted = session.execute(
            dialect_insert(Delivery)
            .on_conflict_do_nothing(index_elements=["subscription_id", "window_end"])
            .returning(Delivery.id, Delivery.subscription_id),
            deliveries,
        ).all()
        created = [delivery_id for delivery_id, _ in inserted]
        opened = {subscription_id for _, subscription_id in inserted}
        # A conflict means another dispatcher opened this window already and moved the subscription on.
        moves = {sid: move for sid, move in moves.items() if sid in opened or "last_window_end" not in move}
    if moves:
        session.execute(update(Subscription), list(moves.values()))
    return sorted(created)


def requeue(session: Session, now: datetime) -> list[int]:
    """Deliveries whose task may be lost, marked as enqueued again now."""
    stale = list(
        session.scalars(
            select(Delivery.id).where(
                or_(
                    and_(
                        Delivery.status == "pending",
                        or_(Delivery.requeue_at.is_(None), Delivery.requeue_at <= now),
                    ),
                    and_(Delivery.status == "sending", Delivery.claimed_at < now - SEND_LEASE),
                )
            )
        )
    )
    if stale:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(stale))
            .values(requeue_at=now + REQUEUE_AFTER)
            .execution_options(synchronize_session=False)
        )
    return stale


# --- send ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Claimed:
    content: DigestContent
    has_manifest: bool
    subscriber_id: int
    bounces: int
    attempts: int
    # Why this delivery must not be mailed (an unsubscribe or a bounce since it was opened), or None.
    refusal: str | None


def send_delivery(
    sessions: sessionmaker[Session],
    delivery_id: int,
    *,
    mailer: Mailer,
    composer: Composer,
    config: DeliveryConfig,
    now: datetime,
    cache: WindowCache | None = None,
) -> DeliveryOutcome:
    """Send one delivery at most once. Raises ``MailError`` (not permanent) when a retry may succeed.

    Two commits: the claim with the manifest (rendered while the row is held, so a crash before it
    leaves the delivery as it was), and the result. Each is a disk flush in PostgreSQL, the largest
    cost of a digest after rendering (docs/performance.md).
    """
    with transaction(sessions) as session:
        claimed = _claim(session, delivery_id, now, config, cache)
        if claimed is None:
            return outcome_in(session, delivery_id)
        content = claimed.content
        if claimed.refusal is not None or (not content.sections and not config.send_empty):
            _set_status(session, delivery_id, "skipped", now, claimed.refusal)
            return DeliveryOutcome(delivery_id, "skipped", 0, None, claimed.refusal)
        email = composer.digest(content)
        try:
            message = _message(content, email, config, now)
        except ValueError as exc:
            # The email library refuses a header with a line break; retrying cannot help.
            error = f"cannot build the message: {exc}"
            _set_status(session, delivery_id, "failed", now, error)
            return DeliveryOutcome(delivery_id, "failed", 0, None, error)
        if not claimed.has_manifest:
            _store_manifest(session, delivery_id, content, email, message["Message-ID"])
            archive_templates(session, composer, "digest", email.template_version, now)
    try:
        mailer.send(message)
    except MailError as exc:
        if exc.permanent:
            return _fail(sessions, delivery_id, claimed.subscriber_id, now, content, str(exc))
        _release(sessions, delivery_id, str(exc), now, now + retry_delay(claimed.attempts) + REQUEUE_AFTER)
        raise
    return _finish(
        sessions,
        delivery_id,
        now,
        content,
        message_id_value=message["Message-ID"],
        clear_bounces=claimed.subscriber_id if claimed.bounces else None,
    )


def _claim(
    session: Session, delivery_id: int, now: datetime, config: DeliveryConfig, cache: WindowCache | None
) -> _Claimed | None:
    """Take the delivery (pending, or abandoned past its lease) and read what it will say."""
    delivery = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            claimable(Delivery, now),
        )
        .values(status="sending", claimed_at=now, attempts=Delivery.attempts + 1)
        .returning(
            Delivery.subscription_id,
            Delivery.window_start,
            Delivery.window_end,
            Delivery.body_hash,
            Delivery.more,
            Delivery.more_by_skill,
            Delivery.attempts,
        )
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if delivery is None:
        return None
    subscription_id, start, end, body_hash, more, more_by_skill, attempts = delivery
    _event(session, delivery_id, now, "claimed", f"attempt {attempts}")
    # The person and the skills in one round trip: a row per skill (or one row with no skill).
    people = session.execute(
        select(
            Subscription.cadence,
            Subscription.timezone,
            Subscription.state,
            Subscriber.id,
            Subscriber.email,
            Subscriber.state,
            Subscriber.bounces,
            SubscriptionSkill.skill_id,
        )
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .outerjoin(SubscriptionSkill, SubscriptionSkill.subscription_id == Subscription.id)
        .where(Subscription.id == subscription_id)
    ).all()
    cadence, timezone, subscription_state, subscriber_id, email, subscriber_state, bounces = people[0][:7]
    skill_ids = [row[7] for row in people if row[7] is not None]
    has_manifest = body_hash is not None
    if has_manifest:
        sections = manifest_sections(session, delivery_id, more_by_skill or {})
    else:
        selection = select_window(
            session,
            skill_ids,
            start,
            end,
            config.max_items,
            cache=cache,
            now=now,
            max_age=config.max_item_age,
        )
        sections, more = selection.sections, selection.more
    refusal = None
    if subscription_state != "active":
        refusal = f"subscription is {subscription_state}"
    elif subscriber_state != "active":
        refusal = f"subscriber is {subscriber_state}"
    content = _content(
        config,
        delivery_id,
        subscription_id,
        subscriber_id,
        email,
        cadence,
        timezone,
        start,
        end,
        sections,
        more,
    )
    return _Claimed(content, has_manifest, subscriber_id, bounces, attempts, refusal)


def _content(
    config: DeliveryConfig,
    delivery_id: int,
    subscription_id: int,
    subscriber_id: int,
    email: str,
    cadence: str,
    timezone: str,
    start: datetime,
    end: datetime,
    sections: tuple[DigestSection, ...],
    more: int,
) -> DigestContent:
    unsubscribe_token = make_token(config.secret, UNSUBSCRIBE, {"s": subscription_id})
    manage_token = make_token(config.secret, MANAGE, {"u": subscriber_id})
    return DigestContent(
        delivery_id=delivery_id,
        email=email,
        cadence=cadence,
        timezone=timezone,
        window_start=start,
        window_end=end,
        sections=sections,
        more=more,
        unsubscribe_url=f"{config.base_url}/u/{unsubscribe_token}",
        manage_url=f"{config.base_url}/manage/{manage_token}",
        base_url=config.base_url,
    )


def manifest_sections(
    session: Session, delivery_id: int, more_by_skill: dict[str, Any]
) -> tuple[DigestSection, ...]:
    """The sections a delivery carried, from its stored manifest, in the order they were sent."""
    rows = session.execute(
        select(
            DeliveryItem.skill_id,
            DeliveryItem.matched,
            DeliveryItem.in_title,
            DeliveryItem.score,
            *ITEM_COLUMNS,
        )
        .join(Item, Item.id == DeliveryItem.item_id)
        .join(Source, Source.id == Item.source_id)
        .join(Skill, Skill.id == DeliveryItem.skill_id)
        .where(DeliveryItem.delivery_id == delivery_id)
        .order_by(DeliveryItem.position)
    ).all()
    sections: dict[str, tuple[str, str, list[ItemForDigest]]] = {}
    for row in rows:
        item, skill_name, skill_slug = item_from_row(row)
        sections.setdefault(item.skill_id, (skill_name, skill_slug, []))[2].append(item)
    return tuple(
        DigestSection(sid, name, slug, tuple(items), int(more_by_skill.get(sid, 0)))
        for sid, (name, slug, items) in sections.items()
    )


def _store_manifest(
    session: Session, delivery_id: int, content: DigestContent, email: ComposedEmail, msgid: str
) -> None:
    """What the delivery says, stored before it is sent: a replay renders exactly this."""
    rows = [
        {
            "delivery_id": delivery_id,
            "position": position,
            "item_id": item.item_id,
            "skill_id": item.skill_id,
            "matched": list(item.matched),
            "in_title": item.in_title,
            "score": item.score,
        }
        for position, item in enumerate(item for section in content.sections for item in section.items)
    ]
    if rows:
        # Core's executemany (one pipelined batch): the ORM's bulk path cost twice as much.
        session.connection().execute(insert(DeliveryItem.__table__), rows)  # type: ignore[arg-type]
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(
            subject=email.subject,
            template_version=email.template_version,
            body_hash=email.body_hash,
            message_id=msgid,
            more=content.more,
            more_by_skill={sec.skill_id: sec.more for sec in content.sections if sec.more},
        )
        .execution_options(synchronize_session=False)
    )


def _release(
    sessions: sessionmaker[Session], delivery_id: int, error: str, now: datetime, requeue_at: datetime
) -> None:
    """Hand a delivery back after a temporary failure: its task retries it; a dispatch only after that."""
    with transaction(sessions) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(status="pending", error=error, requeue_at=requeue_at)
            .execution_options(synchronize_session=False)
        )
        _event(session, delivery_id, now, "released", error)


def _fail(
    sessions: sessionmaker[Session],
    delivery_id: int,
    subscriber_id: int,
    now: datetime,
    content: DigestContent,
    error: str,
) -> DeliveryOutcome:
    """A permanent refusal: the delivery failed (replayable), and a third in a row marks a bounce."""
    with transaction(sessions) as session:
        _set_status(session, delivery_id, "failed", now, error)
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == subscriber_id)
            .values(
                bounces=Subscriber.bounces + 1,
                state=case((Subscriber.bounces + 1 >= BOUNCE_LIMIT, "bouncing"), else_=Subscriber.state),
            )
            .execution_options(synchronize_session=False)
        )
    return DeliveryOutcome(delivery_id, "failed", content.item_count, None, error)


def _finish(
    sessions: sessionmaker[Session],
    delivery_id: int,
    now: datetime,
    content: DigestContent,
    *,
    message_id_value: str,
    clear_bounces: int | None,
) -> DeliveryOutcome:
    """Mark a delivery sent; a subscriber who had bounced before starts counting from zero again."""
    with transaction(sessions) as session:
        _set_status(session, delivery_id, "sent", now, None)
        if clear_bounces is not None:
            session.execute(
                update(Subscriber)
                .where(Subscriber.id == clear_bounces)
                .values(bounces=0)
                .execution_options(synchronize_session=False)
            )
    return DeliveryOutcome(delivery_id, "sent", content.item_count, message_id_value, None)


def _set_status(session: Session, delivery_id: int, status: str, now: datetime, error: str | None) -> None:
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(status=status, finished_at=now, error=error)
        .execution_options(synchronize_session=False)
    )
    _event(session, delivery_id, now, status, error)
    metrics.delivered(status)


def _event(session: Session, delivery_id: int, now: datetime, event: str, detail: str | None) -> None:
    """One line of the delivery's history (``digest deliveries show``), in the same transaction."""
    session.execute(insert(DeliveryEvent).values(delivery_id=delivery_id, at=now, event=event, detail=detail))


def archive_templates(session: Session, composer: Composer, kind: str, version: str, now: datetime) -> None:
    """Keep the template files of ``version`` in the database (once), so a replay after a template change
    still renders the bytes that were sent."""
    if version in composer.archived:
        return
    if version == composer.versions[kind]:
        postgres = session.get_bind().dialect.name == "postgresql"
        dialect_insert = postgresql.insert if postgres else sqlite.insert
        session.execute(
            dialect_insert(TemplateVersion)
            .values(kind=kind, version=version, files=composer.files(kind), created_at=now)
            .on_conflict_do_nothing(index_elements=["kind", "version"])
        )
    composer.archived.add(version)


def archived_templates(session: Session, kind: str, version: str | None) -> dict[str, str] | None:
    """The files of an archived template version, if it was archived."""
    if version is None:
        return None
    files = session.scalar(
        select(TemplateVersion.files).where(TemplateVersion.kind == kind, TemplateVersion.version == version)
    )
    return dict(files) if files is not None else None


def outcome(sessions: sessionmaker[Session], delivery_id: int) -> DeliveryOutcome:
    """What became of a delivery, as stored."""
    with transaction(sessions) as session:
        return outcome_in(session, delivery_id)


def outcome_in(session: Session, delivery_id: int) -> DeliveryOutcome:
    """``outcome`` inside a transaction."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFoundError(f"no delivery with id {delivery_id}")
    count = session.scalar(
        select(func.count()).select_from(DeliveryItem).where(DeliveryItem.delivery_id == delivery_id)
    )
    return DeliveryOutcome(delivery_id, delivery.status, count or 0, delivery.message_id, delivery.error)


def pending(sessions: sessionmaker[Session], delivery_ids: Sequence[int]) -> int:
    """How many of ``delivery_ids`` are not finished yet."""
    if not delivery_ids:
        return 0
    with transaction(sessions) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.id.in_(list(delivery_ids)), Delivery.status.not_in(FINAL))
            )
            or 0
        )


# --- replay and preview ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rendered:
    """A digest rendered without sending: a past delivery from its manifest (with the hash stored when it
    was sent), or a preview of the next one (no stored hash)."""

    content: DigestContent
    email: ComposedEmail
    message: EmailMessage
    hash_stored: str | None


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
            raise NotFoundError(f"no delivery with id {delivery_id}")
        delivery, subscription, email = row
        sections = manifest_sections(session, delivery_id, delivery.more_by_skill or {})
        content = _content(
            config,
            delivery_id,
            subscription.id,
            subscription.subscriber_id,
            email,
            subscription.cadence,
            subscription.timezone,
            delivery.window_start,
            delivery.window_end,
            sections,
            delivery.more,
        )
        sent_at, stored = delivery.finished_at or delivery.created_at, delivery.body_hash
        files = archived_templates(session, "digest", delivery.template_version)
    composed = composer.digest(content, archived=files)
    return Rendered(content, composed, _message(content, composed, config, sent_at), stored)


def preview(
    sessions: sessionmaker[Session],
    email: str,
    cadence: str | None,
    now: datetime,
    composer: Composer,
    config: DeliveryConfig,
) -> Rendered:
    """The digest ``email`` would get for ``cadence`` at its latest slot before ``now``, rendered, not sent.

    The window is the one the next dispatch would open: from where the last one ended (or one period
    back) to the latest slot. Nothing is stored.
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
        chosen = [pair for pair in found if cadence is None or pair[0].cadence == cadence]
        if len(chosen) != 1:
            offered = ", ".join(sorted(pair[0].cadence for pair in found))
            need = f"no {cadence} subscription" if cadence else "several subscriptions"
            raise InvalidInputError(f"{address} has {need}; choose --cadence from: {offered}")
        subscription, subscriber = chosen[0]
        schedule = schedule_of(subscription)
        end = latest_slot(schedule, now)
        last = subscription.last_window_end
        if last is not None and last >= end:
            # The latest slot was sent: show the window now open, with what it holds so far.
            start, end = last, next_slot(schedule, last)
        else:
            start = last if last is not None else previous_slot(schedule, end)
        skill_ids = session.scalars(
            select(SubscriptionSkill.skill_id).where(SubscriptionSkill.subscription_id == subscription.id)
        ).all()
        selection = select_window(
            session, skill_ids, start, end, config.max_items, max_age=config.max_item_age
        )
        content = _content(
            config,
            0,
            subscription.id,
            subscriber.id,
            subscriber.email,
            subscription.cadence,
            subscription.timezone,
            start,
            end,
            selection.sections,
            selection.more,
        )
    composed = composer.digest(content)
    msgid = f"<digest.preview.{subscription.id}.{int(end.timestamp())}@{_domain(config.sender)}>"
    message = build_message(
        composed,
        sender=config.sender,
        recipient=content.email,
        message_id_value=msgid,
        date=now,
        unsubscribe_url=content.unsubscribe_url,
    )
    return Rendered(content, composed, message, None)


def _message(
    content: DigestContent, email: ComposedEmail, config: DeliveryConfig, date: datetime
) -> EmailMessage:
    return build_message(
        email,
        sender=config.sender,
        recipient=content.email,
        message_id_value=message_id(content.delivery_id, config.sender),
        date=date,
        unsubscribe_url=content.unsubscribe_url,
    )


def _domain(sender: str) -> str:
    return sender.rpartition("@")[2] or "localhost"
