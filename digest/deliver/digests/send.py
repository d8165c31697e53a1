"""Send one digest delivery at most once, through the outbox.

    claim (outbox: pending -> sending) -> the reader and the skills -> select the window's items (or read
    the stored manifest) -> compose -> store the manifest -> commit -> outbox.transmit -> sent | failed |
    pending for a retry (failed past the attempt cap); or skipped before composing

A digest costs a fixed number of SQL statements whatever its number of items: claim and read (four),
the manifest (two), the result (two, three when a bounce count starts again); and two commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.deliver import outbox, suppression, verp
from digest.deliver.compose import Composer, archive_templates
from digest.deliver.digests import notices
from digest.deliver.digests.render import (
    Reader,
    content,
    manifest_sections,
    message,
    stored_copies,
    within_clip,
)
from digest.deliver.mail import Mailer
from digest.deliver.mail.envelope import RETURN_PATH
from digest.deliver.outbox import DIGESTS, Attempt, DeliveryConfig
from digest.deliver.selection import WindowCache, select_window
from digest.errors import NotFoundError
from digest.models import Delivery, DeliveryItem, Subscriber, Subscription, SubscriptionSkill, Suppression
from digest.records import ComposedEmail, DeliveryOutcome, DeliveryStatus, DigestContent


@dataclass(frozen=True, slots=True)
class _Claimed:
    attempt: Attempt
    content: DigestContent
    has_manifest: bool
    # The skill notices it shows (issue 15): marked shown with the manifest.
    notice_ids: tuple[int, ...]
    # Why this delivery must not be mailed (suppressed, unsubscribed or bouncing since it was opened).
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

    Two commits: the claim with the manifest (rendered while the row is held, so a crash before it leaves
    the delivery as it was), and the result (``outbox.transmit``). Each is a disk flush in PostgreSQL, the
    largest cost of a digest after rendering (docs/performance.md).
    """
    with transaction(sessions) as session:
        claimed = _claim(session, delivery_id, now, config, cache)
        if claimed is None:
            return outcome_in(session, delivery_id)
        attempt, said, refusal = claimed.attempt, claimed.content, claimed.refusal
        if refusal is not None or (not said.sections and not config.send_empty):
            outbox.finish(session, DIGESTS, delivery_id, DeliveryStatus.SKIPPED, now, refusal)
            return DeliveryOutcome(delivery_id, DeliveryStatus.SKIPPED, 0, None, refusal)
        if claimed.has_manifest:
            email = composer.digest(said)
        else:
            # The manifest then stores what fits under Gmail's clip, so a re-claim and a replay agree.
            said, email = within_clip(said, composer.digest)
        try:
            built = message(said, email, config, now)
        except ValueError as exc:
            # The email library refuses a header with a line break; retrying cannot help.
            error = f"cannot build the message: {exc}"
            outbox.finish(session, DIGESTS, delivery_id, DeliveryStatus.FAILED, now, error)
            return DeliveryOutcome(delivery_id, DeliveryStatus.FAILED, 0, None, error)
        if config.bounce_domain:
            # Issue 19: bounces that come after the 250 name this delivery (``verp``); envelope only, so
            # the bytes a replay re-renders and hashes are the same.
            built[RETURN_PATH] = verp.return_path(delivery_id, config.secret, config.bounce_domain)
        if not claimed.has_manifest:
            _store_manifest(session, delivery_id, said, email, built["Message-ID"])
            notices.mark_shown(session, claimed.notice_ids, delivery_id)
            archive_templates(session, composer, "digest", email.template_version, now)
    result = outbox.transmit(sessions, DIGESTS, attempt, built, mailer=mailer, config=config, now=now)
    sent = result.status == DeliveryStatus.SENT
    return DeliveryOutcome(
        delivery_id, result.status, said.item_count, built["Message-ID"] if sent else None, result.error
    )


def _claim(
    session: Session, delivery_id: int, now: datetime, config: DeliveryConfig, cache: WindowCache | None
) -> _Claimed | None:
    """Take the delivery (pending, or abandoned past its lease) and read what it will say."""
    delivery = outbox.claim(
        session,
        DIGESTS,
        delivery_id,
        now,
        Delivery.subscription_id,
        Delivery.window_start,
        Delivery.window_end,
        Delivery.body_hash,
        Delivery.more,
        Delivery.more_by_skill,
    )
    if delivery is None:
        return None
    # The person and the skills in one round trip: a row per skill (or one row with no skill).
    people = session.execute(
        select(
            Subscription.cadence,
            Subscription.timezone,
            Subscription.state.label("subscription_state"),
            Subscriber.id.label("subscriber_id"),
            Subscriber.email,
            Subscriber.state.label("subscriber_state"),
            Subscriber.bounces,
            SubscriptionSkill.skill_id,
            Suppression.reason.label("suppressed"),
            Suppression.created_at.label("suppressed_at"),
            notices.any_for(delivery_id).label("noticed"),
        )
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        # Suppression wins over everything (issue 14), checked here, at claim time, in the same query.
        .outerjoin(Suppression, Suppression.email == Subscriber.email)
        .outerjoin(SubscriptionSkill, SubscriptionSkill.subscription_id == Subscription.id)
        .where(Subscription.id == delivery.subscription_id)
    ).all()
    person = people[0]
    skill_ids = [row.skill_id for row in people if row.skill_id is not None]
    start, end = delivery.window_start, delivery.window_end
    has_manifest = delivery.body_hash is not None
    more = delivery.more
    if has_manifest:
        sections = manifest_sections(session, delivery_id, delivery.more_by_skill or {})
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
    # Only a subscription with a notice to show costs a statement more (the test of statement counts).
    shown = notices.NONE
    if person.noticed:
        shown = (
            notices.shown_in(session, delivery_id)
            if has_manifest
            else notices.pending(session, delivery.subscription_id)
        )
    refusal = suppression.refusal(
        person.suppressed,
        person.suppressed_at,
        subscription=person.subscription_state,
        subscriber=person.subscriber_state,
    )
    reader = Reader(
        delivery.subscription_id, person.subscriber_id, person.email, person.cadence, person.timezone
    )
    attempt = Attempt(
        delivery_id, delivery.attempts, delivery.created_at, person.subscriber_id, person.bounces
    )
    said = content(config, delivery_id, reader, start, end, sections, more, shown[1])
    return _Claimed(attempt, said, has_manifest, shown[0], refusal)


def _store_manifest(
    session: Session, delivery_id: int, said: DigestContent, email: ComposedEmail, msgid: str
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
            "copies": stored_copies(item),
        }
        for position, item in enumerate(item for section in said.sections for item in section.items)
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
            base_url=said.base_url,
            message_id=msgid,
            more=said.more,
            more_by_skill={sec.skill_id: sec.more for sec in said.sections if sec.more},
        )
        .execution_options(synchronize_session=False)
    )


def outcome_in(session: Session, delivery_id: int) -> DeliveryOutcome:
    """What became of a delivery, as stored."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFoundError(f"no delivery with id {delivery_id}")
    count = session.scalar(
        select(func.count()).select_from(DeliveryItem).where(DeliveryItem.delivery_id == delivery_id)
    )
    status = DeliveryStatus(delivery.status)
    return DeliveryOutcome(delivery_id, status, count or 0, delivery.message_id, delivery.error)
