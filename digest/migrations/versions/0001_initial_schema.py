"""Initial schema, with the default periodic schedules.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import digest.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


DEFAULT_SCHEDULES = [
    {"name": "crawl-tick", "task": "digest.crawl_tick", "every_seconds": 60},
    {"name": "dispatch-tick", "task": "digest.dispatch_tick", "every_seconds": 60},
]


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=True),
        sa.Column("cron", sa.String(length=100), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedules")),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "skills",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("slug", sa.String(length=300), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("related", sa.JSON(), nullable=False),
        sa.Column("parents", sa.JSON(), nullable=False),
        sa.Column("merged_into", sa.String(length=16), nullable=True),
        sa.Column("taxonomy_version", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["merged_into"], ["skills.id"], name=op.f("fk_skills_merged_into_skills")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skills")),
        sa.UniqueConstraint("key", name=op.f("uq_skills_key")),
        sa.UniqueConstraint("slug", name=op.f("uq_skills_slug")),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("last_status", sa.String(length=20), nullable=True),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_fetched_at", digest.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_fetch_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("url", name=op.f("uq_sources_url")),
    )
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sources_next_fetch_at"), ["next_fetch_at"], unique=False)

    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=15), nullable=False),
        sa.Column("created_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", digest.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
        sa.UniqueConstraint("email", name=op.f("uq_subscribers_email")),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("entry_key", sa.String(length=64), nullable=False),
        sa.Column("story_key", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=500), nullable=True),
        sa.Column("published_at", digest.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ingested_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("tagged_version", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_items_source_id_sources"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("source_id", "entry_key", name=op.f("uq_items_source_id_entry_key")),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_items_ingested_at"), ["ingested_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_items_story_key"), ["story_key"], unique=False)

    op.create_table(
        "skill_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=300), nullable=False),
        sa.Column("folded", sa.String(length=300), nullable=False),
        sa.Column("ambiguous", sa.Boolean(), nullable=False),
        sa.Column("case_sensitive", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["skill_id"], ["skills.id"], name=op.f("fk_skill_aliases_skill_id_skills"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skill_aliases")),
        sa.UniqueConstraint("skill_id", "text", name=op.f("uq_skill_aliases_skill_id_text")),
    )
    with op.batch_alter_table("skill_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_skill_aliases_folded"), ["folded"], unique=False)

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("cadence", sa.String(length=10), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=15), nullable=False),
        sa.Column("last_window_end", digest.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_due_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriptions_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("subscriber_id", "cadence", name=op.f("uq_subscriptions_subscriber_id_cadence")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscriptions_next_due_at"), ["next_due_at"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("window_start", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_end", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("template_version", sa.String(length=40), nullable=True),
        sa.Column("body_hash", sa.String(length=64), nullable=True),
        sa.Column("more", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", digest.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", digest.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_deliveries_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "subscription_id", "window_end", name=op.f("uq_deliveries_subscription_id_window_end")
        ),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_status"), ["status"], unique=False)

    op.create_table(
        "item_skills",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.String(length=16), nullable=False),
        sa.Column("ingested_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("matched", sa.JSON(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("in_title", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_skills_item_id_items"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["skill_id"], ["skills.id"], name=op.f("fk_item_skills_skill_id_skills"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("item_id", "skill_id", name=op.f("pk_item_skills")),
    )
    with op.batch_alter_table("item_skills", schema=None) as batch_op:
        batch_op.create_index("ix_item_skills_skill_ingested", ["skill_id", "ingested_at"], unique=False)

    op.create_table(
        "subscription_skills",
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["skill_id"], ["skills.id"], name=op.f("fk_subscription_skills_skill_id_skills")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_skills_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscription_id", "skill_id", name=op.f("pk_subscription_skills")),
    )
    op.create_table(
        "delivery_items",
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.String(length=16), nullable=False),
        sa.Column("matched", sa.JSON(), nullable=False),
        sa.Column("in_title", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_items_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_delivery_items_item_id_items")),
        sa.ForeignKeyConstraint(["skill_id"], ["skills.id"], name=op.f("fk_delivery_items_skill_id_skills")),
        sa.PrimaryKeyConstraint("delivery_id", "position", name=op.f("pk_delivery_items")),
    )
    now = datetime.now(UTC)
    schedules = sa.table(
        "schedules",
        sa.column("name", sa.String),
        sa.column("task", sa.String),
        sa.column("every_seconds", sa.Integer),
        sa.column("cron", sa.String),
        sa.column("enabled", sa.Boolean),
        sa.column("updated_at", digest.models.UTCDateTime(timezone=True)),
    )
    op.bulk_insert(
        schedules, [{**row, "cron": None, "enabled": True, "updated_at": now} for row in DEFAULT_SCHEDULES]
    )


def downgrade() -> None:
    op.drop_table("delivery_items")
    op.drop_table("subscription_skills")
    with op.batch_alter_table("item_skills", schema=None) as batch_op:
        batch_op.drop_index("ix_item_skills_skill_ingested")

    op.drop_table("item_skills")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_status"))

    op.drop_table("deliveries")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_next_due_at"))

    op.drop_table("subscriptions")
    with op.batch_alter_table("skill_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_skill_aliases_folded"))

    op.drop_table("skill_aliases")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_items_story_key"))
        batch_op.drop_index(batch_op.f("ix_items_ingested_at"))

    op.drop_table("items")
    op.drop_table("subscribers")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sources_next_fetch_at"))

    op.drop_table("sources")
    op.drop_table("skills")
    op.drop_table("settings")
    op.drop_table("schedules")
