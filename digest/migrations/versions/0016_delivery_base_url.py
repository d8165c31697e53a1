"""The base URL a digest's links were made with, kept with its manifest (issue 17): the admin's delivery page
compares a re-rendering with what was sent after replacing it with today's DIGEST_BASE_URL, so moving the
site is not reported as a different email.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Deliveries sent before it have none: they are compared as before, with today's base URL.
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("base_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("base_url")
