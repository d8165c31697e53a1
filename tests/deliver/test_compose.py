"""Tests for the container files: the Dockerfile and docker-compose.yml agree with the app they run.

No Docker engine is needed. ``docker compose config`` runs where the compose client is installed; every
other check reads the files and asks the app itself (its settings model and its command line).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from digest.cli import app as cli_app
from digest.config import ENV_PREFIX, Settings
from digest.tasks import QUEUES, ROUTES

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

DIGEST_SERVICES = ("migrate", "web", "worker", "mailer", "crawler", "beat")
LONG_RUNNING = ("postgres", "redis", "mailpit", "web", "worker", "mailer", "crawler", "beat", "flower")
# What the app reads to run against PostgreSQL, Redis and SMTP; every other setting has a safe default.
REQUIRED_VARIABLES = (
    "DIGEST_HOME",
    "DIGEST_DATABASE_URL",
    "DIGEST_BROKER_URL",
    "DIGEST_MAIL_URL",
    "DIGEST_SECRET_KEY",
    "DIGEST_BASE_URL",
    "DIGEST_FROM",
)
# Variables compose refuses to start without (``${VAR:?why}``): the operator's own value stands in here.
OPERATOR_SET = {"DIGEST_SECRET_KEY": "operator-chosen-secret-0123456789abcdef"}
INTERPOLATION = re.compile(r"\$\$|\$\{(?P<braced>[^}]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: str) -> str:
    """Resolve compose interpolation as with an empty environment: ``${VAR:-default}`` gives the default.

    A variable without a default fails the test, since ``docker compose up`` would then need it set.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        expression = match.group("braced") or match.group("bare")
        if ":?" in expression and expression.split(":?", 1)[0] in OPERATOR_SET:
            return OPERATOR_SET[expression.split(":?", 1)[0]]
        for separator in (":-", "-"):
            if separator in expression:
                return expression.split(separator, 1)[1]
        pytest.fail(f"{value!r}: ${{{expression}}} has no default, so compose needs it set")

    return INTERPOLATION.sub(replace, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment with interpolation resolved (mapping or KEY=VALUE list form)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(entry.split("=", 1) for entry in raw)
    return {name: interpolate(str(value)) for name, value in raw.items()}


def argv_of(command: str | list[str]) -> list[str]:
    words = shlex.split(command) if isinstance(command, str) else [str(word) for word in command]
    return [interpolate(word) for word in words]


def check_digest_command(argv: list[str]) -> None:
    """Parse ``argv`` with the real ``digest`` command line without running it: an unknown command or
    option, a missing subcommand or a badly typed value fails the test as it would fail at start-up."""
    assert argv[0] == "digest", f"{argv} does not run the digest command"
    command: Any = typer.main.get_command(cli_app)
    name, args = "digest", argv[1:]
    while hasattr(command, "commands"):  # a group: descend into the subcommand
        if not args:
            pytest.fail(f"{argv}: {name} needs a subcommand")
        if args[0] not in command.commands:
            pytest.fail(f"{argv}: {name} has no command {args[0]!r} (it has {sorted(command.commands)})")
        name, args = args[0], args[1:]
        command = command.commands[name]
    try:
        command.make_context(name, list(args)).close()
    except Exception as exc:  # the CLI's usage errors, whatever click the installed typer carries
        pytest.fail(f"{argv}: {exc}")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, rest = stripped.partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


def test_docker_compose_accepts_the_file_when_the_client_is_installed() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker compose client not installed: no docker on PATH")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
    if version.returncode != 0:
        reason = (version.stderr or version.stdout).strip().splitlines()[0:1]
        pytest.skip(f"docker compose client not installed: {' '.join(reason) or 'compose plugin missing'}")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_the_compose_file_has_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose


def test_every_service_of_the_distributed_mode_is_defined(services: dict[str, Any]) -> None:
    assert set(services) >= {
        "postgres",
        "redis",
        "mailpit",
        "migrate",
        "web",
        "worker",
        "mailer",
        "crawler",
        "beat",
        "flower",
    }


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_each_long_running_service_has_a_healthcheck(services: dict[str, Any], name: str) -> None:
    healthcheck = services[name].get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    assert not healthcheck.get("disable", False)
    assert healthcheck["test"][0] in ("CMD", "CMD-SHELL")


def test_migrations_run_once_after_postgres_and_redis_are_healthy(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert argv_of(migrate["command"]) == ["digest", "db", "upgrade"]
    assert migrate["restart"] == "no"
    for dependency in ("postgres", "redis"):
        assert migrate["depends_on"][dependency]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["web", "worker", "mailer", "crawler", "beat"])
def test_app_processes_start_only_after_migrations_succeeded(services: dict[str, Any], name: str) -> None:
    assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", DIGEST_SERVICES)
def test_every_setting_the_app_needs_is_set_and_known(services: dict[str, Any], name: str) -> None:
    environment = environment_of(services[name])
    missing = [variable for variable in REQUIRED_VARIABLES if variable not in environment]
    assert not missing, f"{name} lacks {missing}"
    known = {field.alias or ENV_PREFIX + key.upper() for key, field in Settings.model_fields.items()}
    unknown = sorted(set(environment) - known)
    # Settings ignores unknown variables, so a misspelt one would silently fall back to a default.
    assert not [variable for variable in unknown if variable.startswith(ENV_PREFIX)], unknown


@pytest.mark.parametrize("name", DIGEST_SERVICES)
def test_the_settings_are_accepted_by_the_app_and_point_at_the_services(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in environment_of(services[name]).items():
        if variable.startswith(ENV_PREFIX):
            monkeypatch.setenv(variable, value)
    settings = Settings()  # conftest cleared DIGEST_ variables and moved to an empty directory (no .env)
    assert settings.home == Path("/var/lib/digest")
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in settings.database_url
    assert settings.broker_url == "redis://redis:6379/0"
    assert settings.mail_url == "smtp://mailpit:1025"
    assert settings.secret_key
    assert settings.base_url.startswith("http")
    assert "@" in settings.from_address


def test_compose_refuses_to_start_without_a_secret_key_of_the_operators(compose: dict[str, Any]) -> None:
    # Issue 14, finding 1: a default secret in the file is a secret everyone knows.
    value = str(compose["x-digest-env"]["DIGEST_SECRET_KEY"])
    assert value.startswith("${DIGEST_SECRET_KEY:?") and ":-" not in value


def test_all_app_processes_share_one_configuration(services: dict[str, Any]) -> None:
    environments = [environment_of(services[name]) for name in DIGEST_SERVICES]
    assert all(environment == environments[0] for environment in environments)


def test_the_database_credentials_match_the_postgres_service(services: dict[str, Any]) -> None:
    postgres = environment_of(services["postgres"])
    url = environment_of(services["web"])["DIGEST_DATABASE_URL"]
    expected = (
        f"postgresql+psycopg://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    assert url == expected


@pytest.mark.parametrize("name", DIGEST_SERVICES)
def test_compose_commands_are_digest_commands_that_exist(services: dict[str, Any], name: str) -> None:
    check_digest_command(argv_of(services[name]["command"]))


def test_the_checker_rejects_commands_the_app_does_not_have() -> None:
    for argv in (
        ["digest", "wrker"],
        ["digest", "db"],
        ["digest", "worker", "--queue", "crawl"],
        ["digest", "worker", "--concurrency", "two"],
        ["digest", "beat", "extra"],
    ):
        with pytest.raises(pytest.fail.Exception):
            check_digest_command(argv)


def test_every_queue_has_a_worker_processes_for_cpu_and_threads_for_fetching(
    services: dict[str, Any],
) -> None:
    worker, crawler = argv_of(services["worker"]["command"]), argv_of(services["crawler"]["command"])
    mailer = argv_of(services["mailer"]["command"])
    assert worker[:2] == crawler[:2] == mailer[:2] == ["digest", "worker"]
    assert worker[worker.index("--queues") + 1].split(",") == ["match", "digest"]
    assert worker[worker.index("--pool") + 1] == "prefork"
    assert mailer[mailer.index("--queues") + 1].split(",") == ["mail"]
    assert mailer[mailer.index("--pool") + 1] == "prefork"
    assert crawler[crawler.index("--queues") + 1].split(",") == ["crawl"]
    assert crawler[crawler.index("--pool") + 1] == "threads"


def test_the_compose_workers_consume_exactly_the_queues_tasks_are_routed_to(services: dict[str, Any]) -> None:
    consumed = []
    for name in ("worker", "mailer", "crawler"):
        argv = argv_of(services[name]["command"])
        consumed += argv[argv.index("--queues") + 1].split(",")
    assert sorted(consumed) == sorted(QUEUES)
    assert {route["queue"] for route in ROUTES.values()} <= set(consumed)


def test_sending_shares_no_worker_with_crawling_or_the_dispatch_tick(services: dict[str, Any]) -> None:
    mail = {ROUTES["digest.send_delivery"]["queue"], ROUTES["digest.send_alert"]["queue"]}
    assert mail == {"mail"}
    for name in ("worker", "crawler"):
        argv = argv_of(services[name]["command"])
        assert "mail" not in argv[argv.index("--queues") + 1].split(",")
    assert ROUTES["digest.dispatch_tick"]["queue"] == "digest"
    assert ROUTES["digest.crawl_tick"]["queue"] == "crawl"


def test_the_worker_healthcheck_pings_its_own_celery_node(services: dict[str, Any]) -> None:
    test = " ".join(services["worker"]["healthcheck"]["test"][1:])
    assert "celery -A digest.tasks inspect ping" in test
    # $$ is compose's escape, so the container's shell expands $HOSTNAME, not compose.
    assert "celery@$$HOSTNAME" in test


def test_the_web_healthcheck_asks_healthz_without_curl(services: dict[str, Any]) -> None:
    test = services["web"]["healthcheck"]["test"]
    assert "curl" not in " ".join(test)
    assert "python" in test
    assert "/healthz" in " ".join(test)


def test_workers_can_be_scaled_without_name_or_port_clashes(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_there_is_exactly_one_beat(services: dict[str, Any]) -> None:
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    assert argv_of(services["beat"]["command"]) == ["digest", "beat"]


def test_the_web_app_is_published_on_the_port_it_listens_on(services: dict[str, Any]) -> None:
    argv = argv_of(services["web"]["command"])
    port = argv[argv.index("--port") + 1]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - inside the container, on purpose
    assert any(str(mapping).endswith(f":{port}") for mapping in services["web"]["ports"])


def test_flower_watches_the_redis_broker_on_port_5555_published_on_loopback_only(
    services: dict[str, Any],
) -> None:
    flower = services["flower"]
    argv = argv_of(flower["command"])
    assert argv[0] == "celery" and "flower" in argv and "--port=5555" in argv
    assert f"--broker={environment_of(services['worker'])['DIGEST_BROKER_URL']}" in argv
    assert [interpolate(str(mapping)) for mapping in flower["ports"]] == ["127.0.0.1:5555:5555"]
    assert "/healthcheck" in " ".join(flower["healthcheck"]["test"])
    assert flower["depends_on"]["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["worker", "mailer", "crawler"])
def test_each_worker_serves_its_metrics_inside_the_network_without_publishing_them(
    services: dict[str, Any], name: str
) -> None:
    argv = argv_of(services[name]["command"])
    assert argv[argv.index("--metrics-port") + 1] == "9808"
    assert argv[argv.index("--metrics-host") + 1] == "0.0.0.0"  # noqa: S104 - reached by Prometheus only
    assert "ports" not in services[name]


def test_the_mailpit_inbox_is_on_port_8025(services: dict[str, Any]) -> None:
    ports = [interpolate(str(mapping)) for mapping in services["mailpit"]["ports"]]
    assert "8025:8025" in ports


def test_the_image_runs_the_web_app_with_digest_by_default() -> None:
    commands = [rest for instruction, rest in dockerfile_instructions() if instruction == "CMD"]
    assert commands, "the Dockerfile has no CMD"
    argv = json.loads(commands[-1])
    assert argv[0] == "digest"
    check_digest_command(argv)
    exposed = [rest for instruction, rest in dockerfile_instructions() if instruction == "EXPOSE"]
    assert exposed == [argv[argv.index("--port") + 1]]


def test_the_image_installs_the_package_and_runs_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    copied = " ".join(rest for instruction, rest in instructions if instruction == "COPY")
    for needed in ("pyproject.toml", "README.md", "digest/", "templates/"):
        assert needed in copied
    runs = [rest for instruction, rest in instructions if instruction == "RUN"]
    assert any("pip install --no-cache-dir ." in run for run in runs)
    users = [rest for instruction, rest in instructions if instruction == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert ("ENV", "DIGEST_HOME=/var/lib/digest") in instructions
    assert any("/var/lib/digest" in rest for instruction, rest in instructions if instruction == "VOLUME")
    assert [rest for instruction, rest in instructions if instruction == "WORKDIR"][-1] == "/app"
