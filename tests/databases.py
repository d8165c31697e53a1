"""Migrated databases reused between tests: PostgreSQL ones emptied after each test, a SQLite file copied.

On the shared 2-core machine, creating a PostgreSQL database costs 0.2 to 3 s (PostgreSQL 15 writes the copy
of template1 through the WAL and syncs it; the drop syncs again) and migrating it another 0.2 to 0.5 s, while
emptying the tables of a migrated one costs about 15 ms. So a test whose ``rt`` needs a migrated database
takes one from a pool of this run's, and gets it back in the state migrations left it: the same schema, the
rows they seed, every sequence where they left it. A database whose schema a test changed (or that cannot be
reset) is dropped, never reused. Tests that ask for ``postgres_url`` itself still get a fresh, empty database.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, Table, create_engine, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from digest import db

# What the schema consists of, one line each, sorted: a test that alters, adds or drops any of it (or moves
# the alembic revision) makes the database unfit for the next test.
SCHEMA_LINES = text(
    """
    SELECT string_agg(line, E'\\n' ORDER BY line) FROM (
        SELECT 'relation ' || relname || ' ' || relkind::text
            FROM pg_class WHERE relnamespace = 'public'::regnamespace
        UNION ALL
        SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
               || ' ' || coalesce(column_default, '')
            FROM information_schema.columns WHERE table_schema = 'public'
        UNION ALL
        SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
        UNION ALL
        SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
            FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        UNION ALL
        SELECT 'trigger ' || tgrelid::regclass::text || ' ' || tgname FROM pg_trigger
            WHERE NOT tgisinternal AND tgrelid IN (
                SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
        UNION ALL
        SELECT 'routine ' || oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace
        UNION ALL
        SELECT 'type ' || typname FROM pg_type
            WHERE typnamespace = 'public'::regnamespace AND typtype IN ('d', 'e', 'r')
        UNION ALL
        SELECT 'schema ' || nspname FROM pg_namespace
            WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
        UNION ALL
        SELECT 'revision ' || version_num FROM alembic_version
    ) AS schema_lines (line)
    """
)
SEQUENCES = text(
    "SELECT schemaname || '.' || sequencename, coalesce(last_value, start_value), last_value IS NOT NULL "
    "FROM pg_sequences WHERE schemaname = 'public'"
)
RESTORE_SEQUENCES = text(
    "SELECT setval(name::regclass, value, called) FROM unnest("
    "CAST(:names AS text[]), CAST(:values AS bigint[]), CAST(:called AS boolean[])) AS s(name, value, called)"
)


def url_of(admin_url: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``admin_url``."""
    return admin_url.rsplit("/", 1)[0] + "/" + name


def create_database(admin: Engine, name: str) -> None:
    """CREATE DATABASE ``name`` (empty)."""
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))


def drop_database(admin: Engine, name: str) -> None:
    """Drop ``name``, ending whatever sessions are still connected to it."""
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Migrated:
    """One pooled database and what migrations left in it."""

    name: str
    url: str
    schema: str = ""
    tables: list[str] = field(default_factory=list)
    seeds: dict[str, tuple[Table, list[dict[str, Any]]]] = field(default_factory=dict)
    sequences: tuple[list[str], list[int], list[bool]] = ([], [], [])

    def remember(self, connection: Connection) -> None:
        """Record the schema, the seeded rows and the sequences of the just-migrated database."""
        self.schema = str(connection.execute(SCHEMA_LINES).scalar_one())
        names = connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        self.tables = sorted(name for name in names.scalars() if name != "alembic_version")
        seeded = [
            name
            for name in self.tables
            if connection.execute(text(f'SELECT EXISTS (SELECT FROM "{name}")')).scalar_one()
        ]
        metadata = MetaData()
        metadata.reflect(connection, only=seeded)
        for name in seeded:
            table = metadata.tables[name]
            self.seeds[name] = (table, [dict(row) for row in connection.execute(select(table)).mappings()])
        rows = connection.execute(SEQUENCES).all()
        self.sequences = ([row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows])

    def reset(self, connection: Connection) -> bool:
        """Put the rows and sequences back as migrations left them; False if the schema is not theirs."""
        if connection.execute(SCHEMA_LINES).scalar_one() != self.schema:
            return False
        # Foreign keys are triggers: with them off, the tables empty in any order (this needs a superuser,
        # as the tests' PostgreSQL role is; without one the reset fails and the database is dropped).
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        for name in self.tables:
            connection.execute(text(f'DELETE FROM "{name}"'))
        for table, rows in self.seeds.values():
            connection.execute(insert(table), rows)
        names, values, called = self.sequences
        if names:
            connection.execute(RESTORE_SEQUENCES, {"names": names, "values": values, "called": called})
        return True


class PostgresPool:
    """The migrated PostgreSQL databases of one pytest process: taken by a test, given back after it."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self.prefix = f"digest_pool_{uuid.uuid4().hex[:8]}"
        self.free: list[Migrated] = []
        self.taken: dict[str, Migrated] = {}
        self.made = 0

    def take(self) -> str:
        """The URL of a migrated database holding only what migrations wrote."""
        database = self.free.pop() if self.free else self._make()
        self.taken[database.url] = database
        return database.url

    def give_back(self, url: str) -> None:
        """End every session on the database and reset it for the next test, or drop it."""
        database = self.taken.pop(url)
        with self.admin.connect() as connection:
            # With a timeout, pg_terminate_backend waits until each session has ended (PostgreSQL 14+), so
            # no advisory lock or open transaction of this test is left for the next one (FIELD-NOTES).
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database.name},
            )
        engine = create_engine(database.url, poolclass=NullPool)
        try:
            with engine.begin() as connection:
                reusable = database.reset(connection)
        except Exception:
            reusable = False
        finally:
            engine.dispose()
        if reusable:
            self.free.append(database)
        else:
            drop_database(self.admin, database.name)

    def close(self) -> None:
        """Drop every database of the pool."""
        for database in [*self.free, *self.taken.values()]:
            drop_database(self.admin, database.name)
        self.free.clear()
        self.taken.clear()
        self.admin.dispose()

    def _make(self) -> Migrated:
        self.made += 1
        name = f"{self.prefix}_{self.made}"
        create_database(self.admin, name)
        database = Migrated(name, url_of(self.admin_url, name))
        try:
            engine = db.make_engine(database.url)
            try:
                db.upgrade(engine)
            finally:
                engine.dispose()
            engine = create_engine(database.url, poolclass=NullPool)
            try:
                with engine.connect() as connection:
                    database.remember(connection)
            finally:
                engine.dispose()
        except BaseException:
            drop_database(self.admin, name)
            raise
        return database


def migrated_sqlite(path: Path) -> Path:
    """Migrate a new SQLite database at ``path`` and fold its write-ahead log in, so a file copy is whole."""
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        db.upgrade(engine)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return path


def copy_sqlite(template: Path, path: Path) -> str:
    """A copy of the migrated ``template`` at ``path``, as a database URL."""
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"
