"""Engines, sessions and the schema's version (alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import SchemaMissingError

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration. Kept here so that checking the schema does not import alembic (a third of a
# second on every command); tests/test_migrations.py checks it against the migration scripts.
SCHEMA_HEAD = "0016"


def make_engine(url: str, *, pre_ping: bool = True) -> Engine:
    """An engine for ``url``. SQLite gets WAL and a busy timeout, so a worker and the CLI can share it.

    ``pre_ping`` tests a pooled PostgreSQL connection before each use (one round trip more per checkout).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=pre_ping)
    if parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory. ``expire_on_commit=False`` so records built after commit need no reload."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with sessions() as session, session.begin():
        yield session


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest migration among the scripts this code ships."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Undo migrations down to ``revision`` (``base`` for an empty schema)."""
    from alembic import command

    command.downgrade(_alembic_config(engine), revision)


def require_schema(engine: Engine) -> None:
    """Raise ``SchemaMissingError`` unless the database is at this code's head revision."""
    current = current_revision(engine)
    if current is None:
        raise SchemaMissingError(f"the database {_safe(engine)} has no schema yet: run `digest db upgrade`")
    if current != SCHEMA_HEAD:
        raise SchemaMissingError(
            f"the database {_safe(engine)} is at revision {current}, this code needs {SCHEMA_HEAD}: "
            "run `digest db upgrade`"
        )


def _safe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
