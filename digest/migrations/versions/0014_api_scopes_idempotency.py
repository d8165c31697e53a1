"""API key scopes, the keys that made subscriptions and alerts, and idempotent requests (issue 19).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OWNED = ("subscriptions", "alerts")


def upgrade() -> None:
    # Keys made before scopes existed keep what they could do: read (issue 19).
    with op.batch_alter_table("api_keys") as table:
        table.add_column(sa.Column("scopes", sa.String(length=40), server_default="read", nullable=False))
    for name in OWNED:
        with op.batch_alter_table(name) as table:
            table.add_column(sa.Column("api_key_id", sa.Integer(), nullable=True))
            if name == "subscriptions":
                table.add_column(sa.Column("vouched_by", sa.String(length=100), nullable=True))
            table.create_foreign_key(
                op.f(f"fk_{name}_api_key_id_api_keys"),
                "api_keys",
                ["api_key_id"],
                ["id"],
                ondelete="SET NULL",
            )
    op.create_table(
        "idempotent_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("created_at", digest.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_idempotent_requests_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotent_requests")),
        sa.UniqueConstraint("api_key_id", "key", name=op.f("uq_idempotent_requests_api_key_id_key")),
    )
    op.create_index(op.f("ix_idempotent_requests_created_at"), "idempotent_requests", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotent_requests_created_at"), table_name="idempotent_requests")
    op.drop_table("idempotent_requests")
    for name in OWNED:
        with op.batch_alter_table(name) as table:
            table.drop_constraint(op.f(f"fk_{name}_api_key_id_api_keys"), type_="foreignkey")
            table.drop_column("api_key_id")
            if name == "subscriptions":
                table.drop_column("vouched_by")
    with op.batch_alter_table("api_keys") as table:
        table.drop_column("scopes")
