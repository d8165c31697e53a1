"""Fixtures: real SQLite and PostgreSQL databases, Redis, settings in a temporary DIGEST_HOME.

Tests that need a service skip with the reason when it is down, unless DIGEST_REQUIRE_SERVICES=1 (as in
CI), where they fail instead.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from digest import db
from digest.config import Settings, load_settings
from digest.ingest import taxonomy
from digest.runtime import Runtime
from tests.databases import (
    PostgresPool,
    copy_sqlite,
    create_database,
    drop_database,
    migrated_sqlite,
    url_of,
)

DATA = Path(__file__).parent / "data"
SMALL_TAXONOMY = DATA / "taxonomy-small.jsonl"
PG_ADMIN_URL = os.environ.get("DIGEST_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# Two checkouts testing at once on one machine each take their own database.
KEPT_VARIABLES = ("DIGEST_REQUIRE_SERVICES", "DIGEST_TEST_POSTGRES", "DIGEST_TEST_REDIS_DB")
# pytest-xdist's workers (gw0, gw1, ...) each take the next database, so two never flush each other's.
REDIS_DB = int(os.environ.get("DIGEST_TEST_REDIS_DB", "9")) + int(
    os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0
)
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


def _require_postgres() -> None:
    if not _listening("127.0.0.1", 5432):
        need("PostgreSQL", "nothing listens on 127.0.0.1:5432")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    _require_postgres()
    name = f"digest_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        create_database(admin, name)
    except Exception as exc:
        admin.dispose()
        need("PostgreSQL", str(exc).splitlines()[0])
    try:
        yield url_of(PG_ADMIN_URL, name)
    finally:
        drop_database(admin, name)
        admin.dispose()


@pytest.fixture(scope="session")
def _postgres_pool() -> Iterator[PostgresPool]:
    """The migrated PostgreSQL databases this run reuses (tests/databases.py), dropped at its end."""
    _require_postgres()
    pool = PostgresPool(PG_ADMIN_URL)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database that tests with ``rt`` start from a copy of."""
    return migrated_sqlite(tmp_path_factory.mktemp("template") / "migrated.sqlite3")


@pytest.fixture(scope="session")
def upgraded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DIGEST_HOME after `digest db upgrade` in a child process (schema, bundled taxonomy, default
    schedules and settings, secret key), made once a run: tests of the command line copy it
    (``shutil.copytree``) rather than pay the command's seconds each."""
    home = tmp_path_factory.mktemp("upgraded") / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"DIGEST_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", "db", "upgrade", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return home


@pytest.fixture
def redis_url() -> str:
    """A Redis database for this test (db 9, or DIGEST_TEST_REDIS_DB, plus the xdist worker's number;
    flushed first)."""
    if not _listening(REDIS_HOST, REDIS_PORT):
        need("Redis", f"nothing listens on {REDIS_HOST}:{REDIS_PORT}")
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    client.flushdb()
    client.close()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs once on SQLite and once on PostgreSQL.

    A test that uses ``rt`` (and not ``postgres_url`` itself) gets the database already migrated, as ``rt``
    would leave it: a copy of a migrated SQLite file, or a PostgreSQL database of this run's pool, emptied
    afterwards for the next test. Any other test gets an empty database of its own.
    """
    migrated = "rt" in request.fixturenames and "postgres_url" not in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        if migrated:
            yield copy_sqlite(request.getfixturevalue("_sqlite_template"), path)
        else:
            yield f"sqlite:///{path}"
    elif migrated:
        pool: PostgresPool = request.getfixturevalue("_postgres_pool")
        url = pool.take()
        try:
            yield url
        finally:
            pool.give_back(url)
    else:
        yield str(request.getfixturevalue("postgres_url"))


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
    if db.current_revision(runtime.engine) != _head_revision():
        db.upgrade(runtime.engine)
    with db.transaction(runtime.sessions) as session:
        taxonomy.load(session, taxonomy.read_taxonomy(SMALL_TAXONOMY), now)
    yield runtime
    runtime.close()


@functools.cache
def _head_revision() -> str:
    return db.head_revision()
