"""Migrations run the same on SQLite and PostgreSQL, up and down, and commands say when they are missing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from digest import db
from digest.errors import SchemaMissingError
from digest.models import Base, DeliveryItem, Item, Schedule

TABLES = set(Base.metadata.tables)
# One sent delivery carrying one item, as rows of the schema from 0006 on.
ONE_DELIVERY = [
    "INSERT INTO sources (id, url, name, kind, state, consecutive_failures, next_fetch_at, created_at)"
    " VALUES (1, 'http://127.0.0.1/f', 'f', 'news', 'active', 0, :at, :at)",
    "INSERT INTO items (id, source_id, entry_key, story_key, title, summary, summary_html, authors,"
    " published_at, ingested_at, updated_at, content_hash) VALUES (1, 1, 'k', 'k', 't', '', '', '[]',"
    " :at, :at, :at, 'h')",
    "INSERT INTO skills (id, key, name, slug, category, description, related, parents, taxonomy_version)"
    " VALUES ('s', 'python', 'Python', 'python', 'language', '', '[]', '[]', 'v')",
    "INSERT INTO subscribers (id, email, timezone, state, created_at, bounces)"
    " VALUES (1, 'a@example.com', 'UTC', 'active', :at, 0)",
    "INSERT INTO subscriptions (id, subscriber_id, cadence, hour, weekday, timezone, state, next_due_at,"
    " created_at) VALUES (1, 1, 'daily', 8, 0, 'UTC', 'active', :at, :at)",
    "INSERT INTO deliveries (id, subscription_id, window_start, window_end, status, attempts, more,"
    " more_by_skill, created_at) VALUES (1, 1, :at, :at, 'sent', 1, 0, '{}', :at)",
    "INSERT INTO delivery_items (delivery_id, position, item_id, skill_id, matched, in_title, score)"
    " VALUES (1, 0, 1, 's', '[]', true, 1.0)",
    "INSERT INTO delivery_events (delivery_id, at, event) VALUES (1, :at, 'sent')",
]


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


def test_0002_keeps_each_items_author_and_dates_undated_items(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine, "0001")
    # Raw SQL parameters: the UTC wall time as the 0001 schema's columns (no time zone) hold it.
    fetched = datetime(2026, 11, 16, 8, 0, tzinfo=UTC).replace(tzinfo=None)
    source = {"url": "http://127.0.0.1/f", "name": "f", "kind": "news", "state": "active", "at": fetched}
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO sources (id, url, name, kind, state, consecutive_failures, next_fetch_at,"
                " created_at) VALUES (1, :url, :name, :kind, :state, 0, :at, :at)"
            ),
            source,
        )
        for number, author in ((1, "A. Writer"), (2, None)):
            connection.execute(
                text(
                    "INSERT INTO items (id, source_id, entry_key, story_key, title, summary, author,"
                    " published_at, ingested_at, updated_at, content_hash)"
                    " VALUES (:id, 1, :key, :key, 't', '', :author, NULL, :at, :at, 'h')"
                ),
                {"id": number, "key": f"k{number}", "author": author, "at": fetched},
            )

    db.upgrade(engine)

    with db.make_sessions(engine)() as session:
        items = {item.id: item for item in session.scalars(select(Item))}
    assert items[1].authors == ["A. Writer"] and items[2].authors == []
    assert items[1].published_at == items[1].ingested_at == datetime(2026, 11, 16, 8, tzinfo=UTC)
    engine.dispose()


def test_the_schema_head_the_code_checks_for_is_the_newest_migration() -> None:
    assert db.head_revision() == db.SCHEMA_HEAD


def test_0007_keeps_every_delivery_with_its_manifest_and_events_and_checks_statuses(
    database_url: str,
) -> None:
    # SQLite adds the CHECK by rebuilding the table: with foreign keys on, dropping the old one would
    # cascade to the manifest and events (env.py turns them off for the rebuild).
    engine = db.make_engine(database_url)
    db.upgrade(engine, "0006")
    at = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    with engine.begin() as connection:
        for row in ONE_DELIVERY:
            connection.execute(text(row), {"at": at})

    db.upgrade(engine)

    with engine.connect() as connection:
        kept = [
            connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("deliveries", "delivery_items", "delivery_events")
        ]
        assert kept == [1, 1, 1]
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE deliveries SET status = 'lost'"))
    engine.dispose()


def test_0012_gives_earlier_manifest_rows_no_copies_and_drops_the_column_on_the_way_down(
    database_url: str,
) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine, "0011")
    with engine.begin() as connection:
        for row in ONE_DELIVERY:
            connection.execute(text(row), {"at": datetime(2026, 11, 16, 8, 0, tzinfo=UTC)})

    db.upgrade(engine, "0012")
    with db.make_sessions(engine)() as session:
        assert session.scalars(select(DeliveryItem.copies)).all() == [[]]
    db.downgrade(engine, "0011")

    assert "copies" not in {column["name"] for column in inspect(engine).get_columns("delivery_items")}
    engine.dispose()


def test_0011_adds_the_suppression_list_with_one_row_per_keyed_hash_and_removes_it(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine, "0010")
    db.upgrade(engine, "0011")
    row = (
        "INSERT INTO suppressions (address_hash, email, reason, source, created_at)"
        " VALUES (:key, NULL, 'erased', 'test', :at)"
    )
    at = datetime(2026, 12, 6, tzinfo=UTC)

    with engine.begin() as connection:
        connection.execute(text(row), {"key": "a" * 64, "at": at})
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(row), {"key": "a" * 64, "at": at})
    db.downgrade(engine, "0010")

    assert "suppressions" not in inspect(engine).get_table_names()
    engine.dispose()


def test_0013_adds_skill_notices_told_once_per_subscription_and_skill(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine, "0010")
    at = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    rows = [
        "INSERT INTO skills (id, key, name, slug, category, description, related, parents, taxonomy_version,"
        " popularity) VALUES ('s', 'mlops', 'MLOps', 'mlops', 'concept', '', '[]', '[]', 'v', 0)",
        "INSERT INTO subscribers (id, email, timezone, state, created_at, bounces)"
        " VALUES (1, 'a@example.com', 'UTC', 'active', :at, 0)",
        "INSERT INTO subscriptions (id, subscriber_id, cadence, hour, weekday, timezone, state, next_due_at,"
        " created_at) VALUES (1, 1, 'daily', 8, 0, 'UTC', 'active', :at, :at)",
    ]
    with engine.begin() as connection:
        for row in rows:
            connection.execute(text(row), {"at": at})

    db.upgrade(engine)

    notice = (
        "INSERT INTO skill_notices (subscription_id, skill_id, body, created_at)"
        ' VALUES (1, \'s\', \'{"skill": "MLOps", "into": null, "offers": []}\', :at)'
    )
    with engine.begin() as connection:
        connection.execute(text(notice), {"at": at})
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(notice), {"at": at})
    db.downgrade(engine, "0012")
    assert "skill_notices" not in inspect(engine).get_table_names()
    engine.dispose()


def test_0016_leaves_earlier_deliveries_without_a_base_url_and_drops_it_on_the_way_down(
    database_url: str,
) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine, "0011")
    with engine.begin() as connection:
        for row in ONE_DELIVERY:
            connection.execute(text(row), {"at": datetime(2026, 11, 16, 8, 0, tzinfo=UTC)})

    db.upgrade(engine, "0016")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT base_url FROM deliveries")).all() == [(None,)]
    db.downgrade(engine, "0015")

    assert "base_url" not in {column["name"] for column in inspect(engine).get_columns("deliveries")}
    engine.dispose()
