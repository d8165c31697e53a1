"""Alembic environment: runs on the engine handed in by ``digest.db`` (never on a URL in an ini file)."""

from __future__ import annotations

from alembic import context

from digest.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table by dropping it, and with foreign keys on, dropping a table deletes its
        # rows first, cascading to every table that refers to it. SQLite's own recipe for schema changes
        # (https://www.sqlite.org/lang_altertable.html#otheralter): keys off outside the transaction,
        # checked before commit, on again after. The pragma is a no-op inside a transaction.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(
                        f"a migration left rows whose foreign keys point nowhere: {broken[:5]}"
                    )
        connection.commit()
    finally:
        if sqlite:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
