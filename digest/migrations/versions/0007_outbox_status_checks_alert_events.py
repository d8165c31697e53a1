"""One outbox: CHECK on delivery statuses, alert events and the alerts' re-enqueue time.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# ``records.DeliveryStatus`` as of this revision (a migration keeps the values it was written with).
STATUSES = "status IN ('pending', 'sending', 'sent', 'skipped', 'failed')"


def upgrade() -> None:
    # SQLite adds a CHECK only by rebuilding the table (batch mode); env.py turns foreign keys off
    # meanwhile, so dropping the old table does not cascade to the manifests and events that refer to it.
    with op.batch_alter_table("deliveries") as batch:
        batch.create_check_constraint(op.f("ck_deliveries_status"), sa.text(STATUSES))
    with op.batch_alter_table("alert_deliveries") as batch:
        batch.add_column(sa.Column("requeue_at", digest.models.UTCDateTime(timezone=True), nullable=True))
        batch.create_check_constraint(op.f("ck_alert_deliveries_status"), sa.text(STATUSES))
    op.create_table(
        "alert_delivery_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("at", digest.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["alert_deliveries.id"],
            name=op.f("fk_alert_delivery_events_delivery_id_alert_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_delivery_events")),
    )
    op.create_index(op.f("ix_alert_delivery_events_delivery_id"), "alert_delivery_events", ["delivery_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_delivery_events_delivery_id"), table_name="alert_delivery_events")
    op.drop_table("alert_delivery_events")
    with op.batch_alter_table("alert_deliveries") as batch:
        batch.drop_constraint(op.f("ck_alert_deliveries_status"), type_="check")
        batch.drop_column("requeue_at")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint(op.f("ck_deliveries_status"), type_="check")
