"""Retention and late bounces (issue 19): tombstones of pruned deliveries, and the index that lets an item
be pruned without scanning every manifest.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pruned_ranges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("before", digest.models.UTCDateTime(), nullable=False),
        sa.Column("pruned_at", digest.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pruned_ranges")),
    )
    op.create_index(op.f("ix_pruned_ranges_first_id"), "pruned_ranges", ["first_id"])
    op.create_index(op.f("ix_delivery_items_item_id"), "delivery_items", ["item_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_delivery_items_item_id"), table_name="delivery_items")
    op.drop_index(op.f("ix_pruned_ranges_first_id"), table_name="pruned_ranges")
    op.drop_table("pruned_ranges")
