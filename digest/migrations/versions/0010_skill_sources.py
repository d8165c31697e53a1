"""Query feeds watched per skill, per-host request slots shared by processes, and an item's discussion link
(issue 16).

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch_op:
        batch_op.add_column(sa.Column("discussion_url", sa.String(length=2048), nullable=True))
        batch_op.create_index(batch_op.f("ix_items_published_at"), ["published_at"], unique=False)
    op.create_table(
        "skill_sources",
        sa.Column("skill_id", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("created_at", digest.models.UTCDateTime(), nullable=False),
        sa.Column("wanted_at", digest.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["skill_id"], ["skills.id"], name=op.f("fk_skill_sources_skill_id_skills"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_skill_sources_source_id_sources"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("skill_id", "source_id", name=op.f("pk_skill_sources")),
    )
    op.create_index(op.f("ix_skill_sources_source_id"), "skill_sources", ["source_id"])
    op.create_table(
        "host_gates",
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("next_start", digest.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_host_gates")),
    )
    op.create_table(
        "host_leases",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("expires_at", digest.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_host_leases")),
    )
    op.create_index(op.f("ix_host_leases_host"), "host_leases", ["host"])


def downgrade() -> None:
    op.drop_index(op.f("ix_host_leases_host"), table_name="host_leases")
    op.drop_table("host_leases")
    op.drop_table("host_gates")
    with op.batch_alter_table("items") as batch_op:
        batch_op.drop_index(batch_op.f("ix_items_published_at"))
        batch_op.drop_column("discussion_url")
    op.drop_index(op.f("ix_skill_sources_source_id"), table_name="skill_sources")
    op.drop_table("skill_sources")
