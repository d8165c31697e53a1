"""The copies of a story a digest entry listed ("also in N sources", issue 16), kept in its manifest row.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Manifests written before this listed no copies: their replays stay as they were sent.
    with op.batch_alter_table("delivery_items") as batch:
        batch.add_column(sa.Column("copies", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("delivery_items") as batch:
        batch.drop_column("copies")
