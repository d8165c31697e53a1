"""Migrations run the same on SQLite and PostgreSQL, up and down, and commands say when they are missing."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select

from digest import db
from digest.errors import SchemaMissingError
from digest.models import Base, Schedule

TABLES = set(Base.metadata.tables)


def test_upgrade_creates_every_table_and_the_default_schedules(database_url: str) -> None:
    engine = db.make_engine(database_url)

    db.upgrade(engine)

    assert db.current_revision(engine) == db.head_revision()
    assert set(inspect(engine).get_table_names()) >= TABLES
    with db.make_sessions(engine)() as session:
        assert set(session.scalars(select(Schedule.name))) == {"crawl-tick", "dispatch-tick"}
    engine.dispose()


def test_the_schema_matches_the_models_after_upgrade(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = db.make_engine(database_url)
    db.upgrade(engine)

    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []
    engine.dispose()


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)

    db.downgrade(engine, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    db.upgrade(engine)

    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_a_database_without_schema_is_named_with_the_command_that_fixes_it(database_url: str) -> None:
    engine = db.make_engine(database_url)

    with pytest.raises(SchemaMissingError, match="run `digest db upgrade`"):
        db.require_schema(engine)
    engine.dispose()
