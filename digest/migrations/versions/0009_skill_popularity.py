"""A popularity prior per skill (issue 15): orders skill search and breaks ties between senses.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("skills") as batch:
        batch.add_column(sa.Column("popularity", sa.Float(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("skills") as batch:
        batch.drop_column("popularity")
