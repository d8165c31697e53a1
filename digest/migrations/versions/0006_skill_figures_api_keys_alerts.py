"""Pre-aggregated skill figures, API keys, trend alerts and their deliveries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _fk(columns: list[str], target: list[str], name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(columns, target, name=op.f(name), ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "skill_daily",
        sa.Column("skill_id", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        _fk(["skill_id"], ["skills.id"], "fk_skill_daily_skill_id_skills"),
        _fk(["source_id"], ["sources.id"], "fk_skill_daily_source_id_sources"),
        sa.PrimaryKeyConstraint("skill_id", "day", "source_id", name=op.f("pk_skill_daily")),
    )
    op.create_table(
        "skill_pair_daily",
        sa.Column("skill_id", sa.String(length=16), nullable=False),
        sa.Column("other_id", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        _fk(["skill_id"], ["skills.id"], "fk_skill_pair_daily_skill_id_skills"),
        _fk(["other_id"], ["skills.id"], "fk_skill_pair_daily_other_id_skills"),
        sa.PrimaryKeyConstraint("skill_id", "other_id", "day", name=op.f("pk_skill_pair_daily")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", digest.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", digest.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_prefix"), "api_keys", ["prefix"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=4), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("min_count", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=15), nullable=False),
        sa.Column("created_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        _fk(["subscriber_id"], ["subscribers.id"], "fk_alerts_subscriber_id_subscribers"),
        sa.ForeignKeyConstraint(["skill_id"], ["skills.id"], name=op.f("fk_alerts_skill_id_skills")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint(
            "subscriber_id", "skill_id", "period", name=op.f("uq_alerts_subscriber_id_skill_id_period")
        ),
    )
    op.create_index(op.f("ix_alerts_subscriber_id"), "alerts", ["subscriber_id"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("item_ids", sa.JSON(), nullable=False),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("template_version", sa.String(length=40), nullable=True),
        sa.Column("body_hash", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", digest.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", digest.models.UTCDateTime(timezone=True), nullable=True),
        _fk(["alert_id"], ["alerts.id"], "fk_alert_deliveries_alert_id_alerts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint("alert_id", "day", name=op.f("uq_alert_deliveries_alert_id_day")),
    )
    op.create_index(op.f("ix_alert_deliveries_alert_id"), "alert_deliveries", ["alert_id"])
    op.create_index(op.f("ix_alert_deliveries_status"), "alert_deliveries", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_deliveries_status"), table_name="alert_deliveries")
    op.drop_index(op.f("ix_alert_deliveries_alert_id"), table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index(op.f("ix_alerts_subscriber_id"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_index(op.f("ix_api_keys_prefix"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("skill_pair_daily")
    op.drop_table("skill_daily")
