"""Alembic environment: runs on the engine handed in by ``digest.db`` (never on a URL in an ini file)."""

from __future__ import annotations

from alembic import context

from digest.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
