"""Tests for settings (digest/config/): defaults under DIGEST_HOME, the stored secret, one-line errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from digest.config import Settings, load_settings, settings_env
from digest.errors import ConfigError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: no DIGEST_ variable, no .env, DIGEST_HOME in a temporary folder."""
    for name in list(os.environ):
        if name.startswith("DIGEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    monkeypatch.setenv("DIGEST_HOME", str(home))
    return home


def test_it_has_working_defaults_under_digest_home(home: Path) -> None:
    settings = load_settings()

    assert isinstance(settings, Settings)
    assert settings.home == home
    assert settings.base_url == "http://127.0.0.1:8000"
    assert settings.from_address == "digest@localhost"
    assert settings.default_timezone == "UTC"
    assert settings.max_items == 20
    assert settings.send_empty is False
    assert settings.is_sqlite


def test_the_default_database_broker_and_mail_urls_point_into_digest_home(home: Path) -> None:
    settings = load_settings()

    assert settings.database_url == f"sqlite:///{home / 'digest.sqlite3'}"
    assert settings.broker_url == f"filesystem://{home / 'broker'}"
    assert settings.mail_url == f"maildir://{home / 'outbox'}"


def test_it_makes_a_relative_digest_home_absolute(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_HOME", "state")

    assert load_settings().home == home.parent / "state"


def test_it_reads_each_setting_from_its_variable(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", "postgresql+psycopg://digest@localhost/digest")
    monkeypatch.setenv("DIGEST_BROKER_URL", "redis://localhost:6379/0")
    monkeypatch.setenv("DIGEST_MAIL_URL", "smtp://localhost:1025")
    monkeypatch.setenv("DIGEST_BASE_URL", "https://digest.example.org/")
    monkeypatch.setenv("DIGEST_FROM", "news@example.org")
    monkeypatch.setenv("DIGEST_DEFAULT_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("DIGEST_MAX_ITEMS", "7")
    monkeypatch.setenv("DIGEST_SEND_EMPTY", "true")

    settings = load_settings()

    assert settings.database_url == "postgresql+psycopg://digest@localhost/digest"
    assert not settings.is_sqlite
    assert settings.broker_url == "redis://localhost:6379/0"
    assert settings.mail_url == "smtp://localhost:1025"
    assert settings.base_url == "https://digest.example.org"
    assert settings.from_address == "news@example.org"
    assert settings.default_timezone == "Europe/Berlin"
    assert settings.max_items == 7
    assert settings.send_empty is True


def test_it_generates_the_secret_key_once_and_reuses_it(home: Path) -> None:
    first = load_settings()
    second = load_settings()
    path = home / "secret_key"

    assert len(first.secret_key) >= 32
    assert second.secret_key == first.secret_key
    assert path.read_text() == first.secret_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_it_uses_a_secret_key_from_the_environment_and_writes_none(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", "from-the-environment-0123456789abcdef")

    assert load_settings().secret_key == "from-the-environment-0123456789abcdef"
    assert not (home / "secret_key").exists()


def test_it_gives_a_child_process_the_same_settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)

    assert load_settings() == settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DIGEST_MAIL_URL", "ftp://x"),
        ("DIGEST_DATABASE_URL", "mysql://x"),
        ("DIGEST_BROKER_URL", "amqp://x"),
        ("DIGEST_BASE_URL", "notaurl"),
        ("DIGEST_BASE_URL", "ftp://example.org"),
        ("DIGEST_MAX_ITEMS", "abc"),
        ("DIGEST_MAX_ITEMS", "0"),
        ("DIGEST_DEFAULT_TIMEZONE", "Mars/Base"),
        ("DIGEST_HTTP_TIMEOUT", "-1"),
        # Issue 14, finding 1: a secret anyone can guess signs manage links for every subscriber.
        ("DIGEST_SECRET_KEY", "change-me-in-production"),
        ("DIGEST_SECRET_KEY", "Change-Me-In-Production-Please-0123456789"),
        ("DIGEST_SECRET_KEY", "s"),
        ("DIGEST_SECRET_KEY", "a-31-character-secret-012345678"),
        ("DIGEST_SECRET_KEY", "x" * 64),
        # Finding 10: the admin token opens every subscriber's data.
        ("DIGEST_ADMIN_TOKEN", "a" * 16),
        ("DIGEST_ADMIN_TOKEN", "a" * 40),
        ("DIGEST_ADMIN_TOKEN", "admin-token-31-characters-01234"),
        ("DIGEST_ADMIN_TOKEN", "é" * 40),
        # Finding 9: every message carries DIGEST_FROM in its From: header.
        ("DIGEST_FROM", "not an address"),
        ("DIGEST_FROM", "digest@example.org\r\nBcc: all@example.org"),
        ("DIGEST_FROM", "digest@example.org\n"),
        ("DIGEST_FROM", "@example.org"),
        ("DIGEST_TRUSTED_PROXIES", "10.0.0.1,not-a-network"),
    ],
)
def test_a_bad_value_is_one_line_that_starts_with_its_variable(
    home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    message = str(caught.value)
    assert message.startswith((f"{variable}:", f"{variable}="))
    assert "\n" not in message
    assert caught.value.permanent


def test_a_bad_value_creates_no_secret_key(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_MAIL_URL", "ftp://x")

    with pytest.raises(ConfigError):
        load_settings()
    assert not (home / "secret_key").exists()


def test_a_secret_key_of_32_random_characters_is_accepted(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", "kT3q9VZ0xw2LmB7cN4rH8yJ1pD6sF5gA")
    monkeypatch.setenv("DIGEST_ADMIN_TOKEN", "Qm4tX8wR2vN6bZ0kP3jL7hC1yF5dG9sA")

    assert len(load_settings().secret_key) == 32


def test_the_generated_secret_is_never_read_empty_while_it_is_written(home: Path) -> None:
    # Issue 14, finding 1: the old code created the file, then wrote it; a process starting in between
    # read ''. Now the key is written under a temporary name and linked into place whole.
    home.mkdir(parents=True)
    (home / "secret_key").write_text("")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert str(caught.value).startswith("DIGEST_SECRET_KEY:") and "delete the file" in str(caught.value)
    (home / "secret_key").unlink()
    key = load_settings().secret_key
    assert len(key) >= 32 and (home / "secret_key").read_text() == key
    assert [path.name for path in home.iterdir()] == ["secret_key"]


def test_an_unwritable_home_is_one_line_naming_the_variable(home: Path) -> None:
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("a file where the folder should be")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert str(caught.value).startswith("DIGEST_HOME: cannot write") and "\n" not in str(caught.value)
