"""Keys and scopes of /api/v1: 401 without a valid key, 403 without the scope, 429 with Retry-After per key,
every refusal an RFC 9457 problem; `digest apikeys create --scope`; keys made before scopes read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from digest import db
from digest.cli import app
from digest.config import Settings
from digest.db import transaction
from digest.errors import InvalidInputError
from digest.models import ApiKey, AuditEntry
from digest.ops import apikeys
from digest.runtime import Runtime
from digest.web import create_app
from tests.web.api_v1_support import Clock, bearer, new_key, problem_of
from tests.web_support import serve

RESOLVE = "/api/v1/resolve"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A tiny per-key limit, so a test reaches it in a few requests."""
    return settings.model_copy(update={"api_rate_key": 3})


@pytest.fixture
def clock(now: datetime) -> Clock:
    # 15 s into a minute, so the limit resets in 45 s.
    return Clock(now.replace(second=15))


@pytest.fixture
def client(rt: Runtime, clock: Clock) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=clock)) as http:
        yield http


def test_no_key_a_malformed_an_unknown_or_a_revoked_key_is_401(
    client: httpx.Client, rt: Runtime, clock: Clock
) -> None:
    key = new_key(rt, "platform", clock.now)
    with transaction(rt.sessions) as session:
        apikeys.revoke(session, "platform", clock.now)
    sent = [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        bearer("dg_short"),
        bearer("dg_" + "x" * 32),
        bearer(key),
    ]

    for headers in sent:
        answer = client.post(RESOLVE, json={"text": "Rust"}, headers=headers)
        problem_of(answer, 401)
        assert answer.headers["www-authenticate"] == "Bearer"


def test_a_key_without_the_scope_is_403_and_admin_holds_every_scope(
    client: httpx.Client, rt: Runtime, clock: Clock
) -> None:
    reader = new_key(rt, "reader", clock.now)
    subscriber = new_key(rt, "subscriber", clock.now, "subscribe")
    admin = new_key(rt, "admin", clock.now, "admin")

    refused = client.get("/api/v1/subscriptions/1", headers=bearer(reader))
    also_refused = client.post(RESOLVE, json={"text": "Rust"}, headers=bearer(subscriber))

    assert "'subscribe' scope" in problem_of(refused, 403)["detail"]
    assert "'read' scope" in problem_of(also_refused, 403)["detail"]
    assert client.post(RESOLVE, json={"text": "Rust"}, headers=bearer(admin)).status_code == 200
    problem_of(client.get("/api/v1/subscriptions/1", headers=bearer(admin)), 404)


def test_past_its_limit_a_key_gets_429_with_retry_after_until_the_minute_ends(
    client: httpx.Client, rt: Runtime, clock: Clock
) -> None:
    key, other = new_key(rt, "busy", clock.now), new_key(rt, "quiet", clock.now)

    codes = [client.post(RESOLVE, json={"text": ""}, headers=bearer(key)).status_code for _ in range(3)]
    refused = client.post(RESOLVE, json={"text": ""}, headers=bearer(key))

    assert codes == [200, 200, 200]
    assert "at most 3 a minute" in problem_of(refused, 429)["detail"]
    assert refused.headers["retry-after"] == "45"
    assert client.post(RESOLVE, json={"text": ""}, headers=bearer(other)).status_code == 200
    clock.now += timedelta(seconds=45)
    assert client.post(RESOLVE, json={"text": ""}, headers=bearer(key)).status_code == 200


def test_an_unknown_route_or_method_under_v1_is_a_problem_and_the_old_api_keeps_its_shape(
    client: httpx.Client,
) -> None:
    problem_of(client.get("/api/v1/nothing-here"), 404)
    problem_of(client.delete(RESOLVE), 405)

    old = client.post("/api/subscriptions", json={"email": "nope"})
    assert old.status_code == 422 and old.headers["content-type"] == "application/json"
    assert isinstance(old.json()["detail"], list)


def test_keys_made_before_scopes_existed_read_after_migration_0014(database_url: str, now: datetime) -> None:
    engine = create_engine(database_url)
    try:
        db.upgrade(engine, "0013")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO api_keys (name, prefix, key_hash, created_at) "
                    "VALUES ('old', 'dg_aaaaaaaa', :hash, :at)"
                ),
                {"hash": "0" * 64, "at": now},
            )
        db.upgrade(engine, "0014")
        with transaction(sessionmaker(engine)) as session:
            [info] = apikeys.list_keys(session)
    finally:
        engine.dispose()

    assert info.scopes == ("read",)
    assert info.allows("read") and not info.allows("subscribe")


def test_an_unknown_scope_is_refused(rt: Runtime, now: datetime) -> None:
    with pytest.raises(InvalidInputError, match="unknown scope 'write'"), transaction(rt.sessions) as session:
        apikeys.create(session, "bad", now, ["read", "write"])


@pytest.fixture
def home(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DIGEST_HOME and database of ``rt``, for commands run in this process."""
    monkeypatch.setenv("DIGEST_HOME", str(settings.home))
    monkeypatch.setenv("DIGEST_DATABASE_URL", settings.database_url)
    return settings.home


def test_create_takes_repeated_scopes_and_json_shows_them(home: Path, rt: Runtime) -> None:
    runner = CliRunner()

    scopes = ["--scope", "subscribe", "--scope", "read"]
    made = runner.invoke(app, ["apikeys", "create", "site", *scopes, "--json"])
    plain = runner.invoke(app, ["apikeys", "create", "plain", "--json"])
    listed = runner.invoke(app, ["apikeys", "list", "--json"])
    wrong = runner.invoke(app, ["apikeys", "create", "bad", "--scope", "write"])

    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["scopes"] == ["read", "subscribe"]
    assert json.loads(plain.stdout)["scopes"] == ["read"]
    assert [row["scopes"] for row in json.loads(listed.stdout)] == [["read", "subscribe"], ["read"]]
    # The entry point (`digest.cli.__main__`) prints a DigestError as one line and exits 1.
    assert isinstance(wrong.exception, InvalidInputError) and "unknown scope 'write'" in str(wrong.exception)
    with transaction(rt.sessions) as session:
        stored = session.scalars(select(ApiKey.scopes).order_by(ApiKey.id)).all()
        creations = select(AuditEntry.arguments).where(AuditEntry.action == "apikey.create")
        audited = session.scalars(creations).all()
    assert stored == ["read subscribe", "read"]
    assert audited[0] == {"name": "site", "scopes": ["read", "subscribe"]}
