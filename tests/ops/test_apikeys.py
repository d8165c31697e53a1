"""API keys: hashed at rest, `digest apikeys`, 401 for a bad key, 429 with Retry-After per key and per IP."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings
from digest.db import transaction
from digest.errors import InvalidInputError
from digest.models import ApiKey, AuditEntry
from digest.ops import apikeys
from digest.runtime import Runtime
from digest.web import create_app
from tests.web_support import serve

ITEMS = "/api/skills/python/items"


@dataclass
class Clock:
    """The app's clock (the limiter's too), moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Tiny limits, so a test reaches them in a few requests."""
    return settings.model_copy(update={"api_rate_ip": 2, "api_rate_key": 4})


@pytest.fixture
def clock(now: datetime) -> Clock:
    # 15 s into a minute, so the limit resets in 45 s.
    return Clock(now.replace(second=15))


@pytest.fixture
def client(rt: Runtime, clock: Clock) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=clock)) as http:
        yield http


def new_key(rt: Runtime, name: str, now: datetime) -> str:
    with transaction(rt.sessions) as session:
        _, key = apikeys.create(session, name, now)
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_key_is_stored_only_as_its_sha256(rt: Runtime, now: datetime) -> None:
    key = new_key(rt, "reporting", now)

    with rt.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_keys")).all()

    assert key.startswith("dg_") and len(key) == 35
    [row] = rows
    assert all(key not in str(value) for value in row)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(row.prefix) and len(row.prefix) < len(key) - 20


def test_two_keys_never_share_a_value_and_a_name_is_taken_once(rt: Runtime, now: datetime) -> None:
    first, second = new_key(rt, "one", now), new_key(rt, "two", now)

    assert first != second
    with pytest.raises(InvalidInputError, match="exists already"):
        new_key(rt, "one", now)


def test_past_the_ip_limit_an_anonymous_caller_gets_429_with_retry_after(client: httpx.Client) -> None:
    answers = [client.get(ITEMS) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    refused = answers[-1]
    assert refused.headers["retry-after"] == "45"
    assert refused.headers["content-type"] == "application/json"
    assert "at most 2 a minute" in refused.json()["detail"]


def test_a_key_has_its_own_higher_limit_and_it_resets_with_the_minute(
    client: httpx.Client, rt: Runtime, clock: Clock
) -> None:
    key = new_key(rt, "reporting", clock.now)
    for _ in range(2):
        client.get(ITEMS)
    assert client.get(ITEMS).status_code == 429  # this IP is spent

    with_key = [client.get(ITEMS, headers=bearer(key)).status_code for _ in range(3)]
    # X-API-Key is the same key and the same count.
    with_key.append(client.get(ITEMS, headers={"X-API-Key": key}).status_code)
    refused = client.get(ITEMS, headers=bearer(key))

    assert with_key == [200, 200, 200, 200]
    assert refused.status_code == 429 and refused.headers["retry-after"] == "45"

    clock.now += timedelta(seconds=45)
    assert client.get(ITEMS, headers=bearer(key)).status_code == 200
    assert client.get(ITEMS).status_code == 200


def test_each_key_is_counted_on_its_own(client: httpx.Client, rt: Runtime, clock: Clock) -> None:
    one, two = new_key(rt, "one", clock.now), new_key(rt, "two", clock.now)

    spent = [client.get(ITEMS, headers=bearer(one)).status_code for _ in range(5)]

    assert spent == [200, 200, 200, 200, 429]
    assert client.get(ITEMS, headers=bearer(two)).status_code == 200


def test_a_revoked_an_unknown_or_a_malformed_key_is_401(
    client: httpx.Client, rt: Runtime, clock: Clock
) -> None:
    key = new_key(rt, "old", clock.now)
    assert client.get(ITEMS, headers=bearer(key)).status_code == 200
    with transaction(rt.sessions) as session:
        apikeys.revoke(session, "old", clock.now)
    unknown = "dg_" + "A" * 32

    for headers in (
        bearer(key),
        bearer(unknown),
        {"X-API-Key": unknown},
        bearer("dg_short"),
        bearer(key + "x"),
    ):
        refused = client.get(ITEMS, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "not valid or has been revoked" in refused.json()["detail"]


def test_the_feeds_are_limited_too(client: httpx.Client) -> None:
    answers = [client.get("/skills/python/feed.atom").status_code for _ in range(2)]

    assert [*answers, client.get("/skills/python/feed.json").status_code] == [200, 200, 429]


def test_a_key_notes_when_it_was_last_used(client: httpx.Client, rt: Runtime, clock: Clock) -> None:
    key = new_key(rt, "reporting", clock.now)

    client.get(ITEMS, headers=bearer(key))

    with transaction(rt.sessions) as session:
        used = session.scalar(select(ApiKey.last_used_at))
    assert used == clock.now


@pytest.mark.redis
def test_the_limit_is_counted_in_redis_when_redis_is_the_broker(
    settings: Settings, redis_url: str, clock: Clock, rt: Runtime
) -> None:
    on_redis = create_app(settings.model_copy(update={"broker_url": redis_url}), clock=clock)
    with serve(on_redis) as http:
        answers = [http.get(ITEMS).status_code for _ in range(3)]

    assert answers == [200, 200, 429]
    with transaction(rt.sessions) as session:
        assert session.scalar(text("SELECT count(*) FROM rate_counts")) == 0


# -- the commands --------------------------------------------------------------------------------------


@pytest.fixture
def home(settings: Settings, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DIGEST_HOME and database of ``rt``, for commands run in this process."""
    monkeypatch.setenv("DIGEST_HOME", str(settings.home))
    monkeypatch.setenv("DIGEST_DATABASE_URL", settings.database_url)
    return settings.home


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_create_prints_the_key_once_and_list_never_shows_it(home: Path, rt: Runtime) -> None:
    created = json.loads(run("apikeys", "create", "reporting", "--json"))
    plain = run("apikeys", "create", "dashboard")
    listed = json.loads(run("apikeys", "list", "--json"))
    table = run("apikeys", "list")

    key = created["key"]
    assert key.startswith("dg_") and len(key) == 35
    assert [row["name"] for row in listed] == ["reporting", "dashboard"]
    assert all("key" not in row and row["revoked_at"] is None for row in listed)
    assert key not in json.dumps(listed) and key not in table
    assert plain.strip().splitlines()[-1].startswith("dg_")
    with transaction(rt.sessions) as session:
        assert (
            apikeys.authenticate(session, key, datetime.fromisoformat(created["created_at"])).name
            == "reporting"
        )


def test_revoke_refuses_the_key_from_then_on_and_is_audited(home: Path, rt: Runtime) -> None:
    key = json.loads(run("apikeys", "create", "reporting", "--json"))["key"]

    first = json.loads(run("apikeys", "revoke", "reporting", "--json"))
    second = json.loads(run("apikeys", "revoke", "reporting", "--json"))

    assert first["changed"] is True and first["revoked_at"] is not None
    assert second["changed"] is False and second["revoked_at"] == first["revoked_at"]
    with transaction(rt.sessions) as session:
        with pytest.raises(apikeys.InvalidKeyError):
            apikeys.authenticate(session, key, datetime.fromisoformat(first["revoked_at"]))
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["apikey.create", "apikey.revoke"]


@pytest.mark.slow
def test_revoking_an_unknown_key_is_one_line_and_exit_1(settings: Settings, rt: Runtime) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env |= {"DIGEST_HOME": str(settings.home), "DIGEST_DATABASE_URL": settings.database_url}

    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", "apikeys", "revoke", "nobody"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: no API key called 'nobody' (see `digest apikeys list`)"
    ]
