"""Bouncing subscribers, per-skill "+N more" in the manifest, re-enqueue times, the untagged-items index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("bounces", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("more_by_skill", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("requeue_at", digest.models.UTCDateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_items_untagged",
        "items",
        ["ingested_at"],
        sqlite_where=sa.text("tagged_version IS NULL"),
        postgresql_where=sa.text("tagged_version IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_items_untagged", table_name="items")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("requeue_at")
        batch.drop_column("more_by_skill")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("bounces")
