"""SQLAlchemy 2.0 typed declarative models. Every timestamp is timezone-aware UTC.

Schema changes go through alembic migrations in ``digest/migrations`` (never ``create_all``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from digest.records import DeliveryStatus


def _status_check() -> CheckConstraint:
    """Only the outbox's statuses (``records.DeliveryStatus``) in a delivery table's ``status``."""
    allowed = ", ".join(f"'{status.value}'" for status in DeliveryStatus)
    return CheckConstraint(f"status IN ({allowed})", name="status")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware.

    SQLite has no time zones and hands back naive values; PostgreSQL uses timestamptz.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints the same everywhere."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Source(Base):
    """A feed we crawl."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(10))
    interval_seconds: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(10), default="active")
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_status: Mapped[str | None] = mapped_column(String(20))
    last_http_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_warning: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of the last body parsed: an unchanged body is not parsed again.
    body_hash: Mapped[str | None] = mapped_column(String(64))
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_fetched_at: Mapped[datetime | None]
    next_fetch_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]


class Item(Base):
    """One entry of a feed, normalised. ``ingested_at`` is when we first stored it: digest windows use it."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("source_id", "entry_key"),
        # The items the matcher has not reached yet: a dispatch waits for them (``store.tag_horizon``).
        Index(
            "ix_items_untagged",
            "ingested_at",
            sqlite_where=text("tagged_version IS NULL"),
            postgresql_where=text("tagged_version IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    entry_key: Mapped[str] = mapped_column(String(64))
    story_key: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    summary_html: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[list[Any]] = mapped_column(default=list)
    language: Mapped[str | None] = mapped_column(String(35))
    external_id: Mapped[str | None] = mapped_column(String(300), index=True)
    category: Mapped[str | None] = mapped_column(String(100))
    # A discussion of the item elsewhere (RSS <comments>, e.g. its Hacker News thread), issue 16.
    discussion_url: Mapped[str | None] = mapped_column(String(2048))
    # Indexed for counts by publication date (issue 16: alerts and skill figures count a 2019 post in 2019).
    published_at: Mapped[datetime] = mapped_column(index=True)
    ingested_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    content_hash: Mapped[str] = mapped_column(String(64))
    tagged_version: Mapped[str | None] = mapped_column(String(40))


class SkillSource(Base):
    """A query feed watched for a skill (issue 16): added with its first subscriber, shared when two skills
    give the same URL. ``wanted_at`` is the last time the skill had a subscriber; a feed none of whose
    skills was wanted for ``queries.IDLE_AFTER`` is paused, and resumed when a subscriber comes back.
    """

    __tablename__ = "skill_sources"

    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    template: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
    wanted_at: Mapped[datetime]


class HostGate(Base):
    """When the next feed request to a host may start (``DIGEST_HOST_LIMITS``, without Redis)."""

    __tablename__ = "host_gates"

    host: Mapped[str] = mapped_column(String(253), primary_key=True)
    next_start: Mapped[datetime]


class HostLease(Base):
    """A feed request to a host in flight, held until released or ``expires_at``."""

    __tablename__ = "host_leases"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(253), index=True)
    expires_at: Mapped[datetime]


class Skill(Base):
    """A canonical skill entity. Its id is derived from its key, so reloading never changes it."""

    __tablename__ = "skills"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    slug: Mapped[str] = mapped_column(String(300), unique=True)
    category: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(Text, default="")
    related: Mapped[list[Any]] = mapped_column(default=list)
    parents: Mapped[list[Any]] = mapped_column(default=list)
    merged_into: Mapped[str | None] = mapped_column(ForeignKey("skills.id"))
    taxonomy_version: Mapped[str] = mapped_column(String(40))
    # How widely the skill is used, 0..1, from the taxonomy's sources (issue 15).
    popularity: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class SkillAlias(Base):
    """A surface form of a skill."""

    __tablename__ = "skill_aliases"
    __table_args__ = (UniqueConstraint("skill_id", "text"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(String(300))
    folded: Mapped[str] = mapped_column(String(300), index=True)
    ambiguous: Mapped[bool] = mapped_column(Boolean, default=False)
    case_sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(40), default="taxonomy")


class Tag(Base):
    """That an item mentions a skill, with the evidence."""

    __tablename__ = "item_skills"
    __table_args__ = (Index("ix_item_skills_skill_ingested", "skill_id", "ingested_at"),)

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    # Copied from the item so the hot query "skills S in window W" reads one index (FIELD-NOTES).
    ingested_at: Mapped[datetime]
    matched: Mapped[list[Any]] = mapped_column(default=list)
    count: Mapped[int] = mapped_column(Integer)
    in_title: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float]


class Subscriber(Base):
    """A person, by email address."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(15), default="pending")
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    # Permanent delivery failures in a row; at ``outbox.BOUNCE_LIMIT`` the state becomes "bouncing".
    bounces: Mapped[int] = mapped_column(default=0)


class Subscription(Base):
    """One email per cadence per subscriber, carrying a section per skill.

    ``last_window_end`` is where the next window starts; ``next_due_at`` is the next slot, claimed with a
    conditional update (healthchecks' ``next_report_date``).
    """

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("subscriber_id", "cadence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    cadence: Mapped[str] = mapped_column(String(10))
    hour: Mapped[int] = mapped_column(default=8)
    weekday: Mapped[int] = mapped_column(default=0)
    timezone: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(15), default="pending")
    last_window_end: Mapped[datetime | None]
    next_due_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]
    # The API key whose platform made it (issue 19): that key manages it, and a key vouching for the
    # address (``"verified": true``) is named here as the one who did.
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    vouched_by: Mapped[str | None] = mapped_column(String(100))


class SubscriptionSkill(Base):
    """A skill a subscription follows."""

    __tablename__ = "subscription_skills"

    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id"), primary_key=True)


class Delivery(Base):
    """One digest for one window of one subscription: sent, skipped (empty) or failed. Never two."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("subscription_id", "window_end"), _status_check())

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    message_id: Mapped[str | None] = mapped_column(String(300))
    subject: Mapped[str | None] = mapped_column(Text)
    template_version: Mapped[str | None] = mapped_column(String(40))
    body_hash: Mapped[str | None] = mapped_column(String(64))
    # DIGEST_BASE_URL when the manifest was stored: its links' prefix, which the admin's comparison
    # replaces with today's (issue 17). NULL before migration 0016.
    base_url: Mapped[str | None] = mapped_column(Text)
    more: Mapped[int] = mapped_column(default=0)
    # Per skill id, how many items the cap left out ("+N more" under each section): part of the manifest.
    more_by_skill: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # When a dispatch tick may enqueue a delivery that is still pending again (its task may be lost).
    requeue_at: Mapped[datetime | None]


class DeliveryItem(Base):
    """The manifest: which items a delivery carried, in order, under which skill."""

    __tablename__ = "delivery_items"

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    # Indexed: pruning an item asks whether a kept manifest still carries it (issue 19).
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id"))
    matched: Mapped[list[Any]] = mapped_column(default=list)
    in_title: Mapped[bool] = mapped_column(Boolean, default=False)
    score: Mapped[float] = mapped_column(default=0.0)
    # The story's copies in other sources the entry listed ("also in N sources", issue 16), as shown:
    # [{"item_id", "source", "url"}]. Kept as sent, so a replay shows them even after more copies arrive
    # or a copy's source is renamed or removed.
    copies: Mapped[list[Any]] = mapped_column(default=list)


class SkillNotice(Base):
    """That a skill a subscription followed was merged or dropped by a taxonomy change (issue 15, item 7).

    The reader is told once, in the next digest: ``delivery_id`` is the delivery that showed it (NULL until
    then), and ``body`` holds what it says (names and slugs as they were), so a replay renders the same.
    """

    __tablename__ = "skill_notices"
    __table_args__ = (UniqueConstraint("subscription_id", "skill_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id"))
    body: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime]
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )


class Setting(Base):
    """Run-time settings that ops change without a deploy."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column()
    updated_at: Mapped[datetime]


class Schedule(Base):
    """A periodic task's cadence, read by beat."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    task: Mapped[str] = mapped_column(String(200))
    every_seconds: Mapped[int | None]
    cron: Mapped[str | None] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime]


class RateCount(Base):
    """Requests counted per key and fixed window: abuse limits when no Redis is configured."""

    __tablename__ = "rate_counts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class DeliveryEvent(Base):
    """A step in a delivery's history: claimed, sent, failed (with the SMTP reply), released, skipped."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)


class Replay(Base):
    """A delivery sent again: a copy to someone else (an admin) or a resend to its subscriber."""

    __tablename__ = "replays"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(10))
    error: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class TemplateVersion(Base):
    """The template files of one version of an email kind, kept so a replay renders what was sent."""

    __tablename__ = "template_versions"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    files: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime]


class AuditEntry(Base):
    """What an admin or operator did: who, what, when, with which arguments, and what came of it."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    arguments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[str | None] = mapped_column(Text)


class SkillDaily(Base):
    """Items per skill, UTC day and source: the pre-aggregated counts behind skill pages and trend alerts."""

    __tablename__ = "skill_daily"

    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True)
    items: Mapped[int]


class SkillPairDaily(Base):
    """Items per pair of skills mentioned together, per UTC day: "most often mentioned with"."""

    __tablename__ = "skill_pair_daily"

    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    other_id: Mapped[str] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    items: Mapped[int]


class ApiKey(Base):
    """A key for programmatic use of the API; only its hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # What the key may do, space-separated as OAuth scopes are (RFC 6749 §3.3): read, subscribe, admin.
    # Keys made before scopes existed (issue 19) read.
    scopes: Mapped[str] = mapped_column(String(40), default="read", server_default="read")


class IdempotentRequest(Base):
    """A POST sent with an ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header): the first
    answer, repeated to a retry with the same key; ``status`` is NULL while the first is still running."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the method, path and body: the same key with another request is refused (422).
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)


class Alert(Base):
    """A subscriber's trend alert on a skill: mail when its mentions rise or fall past a threshold."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("subscriber_id", "skill_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id"))
    # "24h" or "7d": the recent span compared with the same-length baseline from the prior 4 weeks.
    period: Mapped[str] = mapped_column(String(4))
    # Percent change (either way) that alerts, and the fewest mentions in either span that may alert.
    threshold: Mapped[int] = mapped_column(default=50)
    min_count: Mapped[int] = mapped_column(default=10)
    state: Mapped[str] = mapped_column(String(15), default="active")
    created_at: Mapped[datetime]
    # The API key whose platform made it (issue 19), as ``Subscription.api_key_id``.
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))


class AlertDelivery(Base):
    """One alert email: at most one per alert and UTC day, with its manifest, sent at most once."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("alert_id", "day"), _status_check())

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING, index=True)
    # The figures that triggered it and the items behind the change, in order: what a replay renders.
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    item_ids: Mapped[list[Any]] = mapped_column(default=list)
    message_id: Mapped[str | None] = mapped_column(String(300))
    subject: Mapped[str | None] = mapped_column(Text)
    template_version: Mapped[str | None] = mapped_column(String(40))
    body_hash: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # When an alert tick may enqueue an alert that is still pending again (as ``Delivery.requeue_at``).
    requeue_at: Mapped[datetime | None]


class AlertDeliveryEvent(Base):
    """A step in an alert delivery's history, as ``DeliveryEvent`` is for digests."""

    __tablename__ = "alert_delivery_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("alert_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)


class Suppression(Base):
    """An address that gets no email of any kind (issue 14, "the people's rights").

    Keyed by an HMAC of the lower-cased address with the secret key, so an erased person leaves only the
    hash (``email`` is then NULL) and a re-import of the same address is still recognised.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    # unsubscribed, bounce, complaint, erased or manual (``suppression.REASONS``).
    reason: Mapped[str] = mapped_column(String(20))
    # Where it came from: "manage page", "api", "outbox", "cli:USER", ...
    source: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class PrunedRange(Base):
    """A batch of digest deliveries deleted by retention (issue 19): the tombstone that lets a replay or the
    admin answer "pruned on DATE" for an id that no longer exists. One row per batch, not per delivery.

    ``first_id``..``last_id`` bound the batch; ids in between that still exist were not pruned (a
    delivery's id follows its creation, not its window), so a lookup asks only about missing ids.
    """

    __tablename__ = "pruned_ranges"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_id: Mapped[int] = mapped_column(index=True)
    last_id: Mapped[int]
    deliveries: Mapped[int]
    # The retention cut: every delivery pruned in this batch had its window end before it.
    before: Mapped[datetime]
    pruned_at: Mapped[datetime]
