"""Notices of followed skills that a taxonomy change merged or dropped, shown once in a digest (issue 15).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "skill_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.String(length=16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", digest.models.UTCDateTime(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_skill_notices_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["skill_id"], ["skills.id"], name=op.f("fk_skill_notices_skill_id_skills")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_skill_notices_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skill_notices")),
        sa.UniqueConstraint(
            "subscription_id", "skill_id", name=op.f("uq_skill_notices_subscription_id_skill_id")
        ),
    )
    op.create_index(op.f("ix_skill_notices_delivery_id"), "skill_notices", ["delivery_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_skill_notices_delivery_id"), table_name="skill_notices")
    op.drop_table("skill_notices")
