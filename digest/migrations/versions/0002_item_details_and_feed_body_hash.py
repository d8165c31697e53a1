"""Item details (safe HTML summary, authors, language, paper ids) and the feed's last body hash.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_DATETIME = digest.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("summary_html", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("authors", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("language", sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column("external_id", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_items_external_id"), ["external_id"], unique=False)
    items = sa.table(
        "items",
        sa.column("id", sa.Integer),
        sa.column("author", sa.String),
        sa.column("authors", sa.JSON),
        sa.column("published_at", UTC_DATETIME),
        sa.column("ingested_at", UTC_DATETIME),
    )
    connection = op.get_bind()
    for item_id, author in connection.execute(
        sa.select(items.c.id, items.c.author).where(items.c.author.is_not(None))
    ):
        connection.execute(sa.update(items).where(items.c.id == item_id).values(authors=[author]))
    # Items without a date now carry the time they were fetched (as new items do).
    connection.execute(
        sa.update(items).where(items.c.published_at.is_(None)).values(published_at=items.c.ingested_at)
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.alter_column("published_at", existing_type=UTC_DATETIME, nullable=False)
        batch_op.drop_column("author")

    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_warning", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("body_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("body_hash")
        batch_op.drop_column("last_warning")

    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("author", sa.String(length=500), nullable=True))
        batch_op.drop_index(batch_op.f("ix_items_external_id"))
        batch_op.alter_column("published_at", existing_type=UTC_DATETIME, nullable=True)
        batch_op.drop_column("category")
        batch_op.drop_column("external_id")
        batch_op.drop_column("language")
        batch_op.drop_column("authors")
        batch_op.drop_column("summary_html")
