"""Fixtures: real SQLite and PostgreSQL databases, Redis, settings in a temporary DIGEST_HOME.

Tests that need a service skip with the reason when it is down, unless DIGEST_REQUIRE_SERVICES=1 (as in
CI), where they fail instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from digest import db
from digest.config import Settings, load_settings
from digest.ingest import taxonomy
from digest.runtime import Runtime

DATA = Path(__file__).parent / "data"
SMALL_TAXONOMY = DATA / "taxonomy-small.jsonl"
PG_ADMIN_URL = os.environ.get("DIGEST_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# Two checkouts testing at once on one machine each take their own database.
KEPT_VARIABLES = ("DIGEST_REQUIRE_SERVICES", "DIGEST_TEST_POSTGRES", "DIGEST_TEST_REDIS_DB")
REDIS_DB = int(os.environ.get("DIGEST_TEST_REDIS_DB", "9"))
REQUIRE = os.environ.get("DIGEST_REQUIRE_SERVICES") == "1"


def need(service: str, reason: str) -> None:
    """Skip (or, with DIGEST_REQUIRE_SERVICES=1, fail) because ``service`` is not there."""
    message = f"{service} is not available: {reason}"
    if REQUIRE:
        pytest.fail(message + " (DIGEST_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DIGEST_ variable or .env of the developer's leaks into a test."""
    for name in list(os.environ):
        if name.startswith("DIGEST_") and name not in KEPT_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    if not _listening("127.0.0.1", 5432):
        need("PostgreSQL", "nothing listens on 127.0.0.1:5432")
    name = f"digest_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        need("PostgreSQL", str(exc).splitlines()[0])
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> str:
    """A Redis database for this test (db 9, or DIGEST_TEST_REDIS_DB, flushed first)."""
    if not _listening(REDIS_HOST, REDIS_PORT):
        need("Redis", f"nothing listens on {REDIS_HOST}:{REDIS_PORT}")
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    client.flushdb()
    client.close()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings in a temporary DIGEST_HOME on the database under test."""
    # Test feeds are served on loopback, which the private-address guard would refuse.
    return load_settings(
        home=tmp_path / "home",
        database_url=database_url,
        secret_key="test-secret-key-0123456789abcdefghijkl",
        block_private_addresses=False,
        # Tests run offline: a confirmed subscription adds no query feeds unless a test asks (issue 16).
        skill_sources=False,
    )


@pytest.fixture
def now() -> datetime:
    """The pinned clock of a test."""
    return datetime(2026, 11, 16, 9, 30, tzinfo=UTC)


@pytest.fixture
def rt(settings: Settings, now: datetime) -> Iterator[Runtime]:
    """A runtime on a migrated database holding the small test taxonomy."""
    runtime = Runtime(settings)
    db.upgrade(runtime.engine)
    with db.transaction(runtime.sessions) as session:
        taxonomy.load(session, taxonomy.read_taxonomy(SMALL_TAXONOMY), now)
    yield runtime
    runtime.close()
