"""The command line starts light (issue 17): what ``import digest.cli`` and every ``--help`` load.

Checked by the modules loaded, not by timing, so the test holds on a busy machine; ``bench/cli.py``
measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Each costs tens to hundreds of milliseconds to import; a command that needs one imports it itself.
HEAVY = {
    "alembic",
    "celery",
    "fastapi",
    "feedparser",
    "httpx",
    "jinja2",
    "markdown_it",
    "pydantic",
    "pydantic_settings",
    "redis",
    "sqlalchemy",
    "structlog",
}
# The base and the wings below the edges: settings, the database, the runtime.
HEAVY_OURS = ("digest.config", "digest.db", "digest.models", "digest.runtime", "digest.tasks", "digest.web")
WINGS = ("digest.ingest.", "digest.deliver.", "digest.ops.")

REPORT = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write(json.dumps(sorted(sys.modules)) + "\\n"))
"""
IMPORT = REPORT + "import digest.cli\n"
# Every command's help in one process (Click's test runner catches each exit), then what was loaded.
EVERY_HELP = (
    REPORT
    + """
import click, typer
from typer.testing import CliRunner
from digest.cli import app

def commands(group, prefix=()):
    yield prefix
    for name, sub in getattr(group, "commands", {}).items():
        yield from commands(sub, (*prefix, name))

runner = CliRunner()
for command in commands(typer.main.get_command(app)):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output, (command, result.output)
"""
)
MAIN_HELP = REPORT + "import sys\nsys.argv = ['digest', '--help']\nfrom digest.cli import main\nmain()\n"


def loaded(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return modules


def heavy(modules: list[str]) -> list[str]:
    return [
        name
        for name in modules
        if name.split(".")[0] in HEAVY
        or name.startswith(WINGS)
        or any(name == ours or name.startswith(ours + ".") for ours in HEAVY_OURS)
    ]


@pytest.mark.parametrize("code", [IMPORT, MAIN_HELP], ids=["import digest.cli", "digest --help"])
def test_the_command_line_starts_without_the_database_the_wings_or_the_settings(code: str) -> None:
    assert heavy(loaded(code)) == []


def test_no_commands_help_loads_the_database_the_wings_or_the_settings() -> None:
    # Typer itself checks a command's options with pydantic once it parses them, even for --help.
    assert [name for name in heavy(loaded(EVERY_HELP)) if name.split(".")[0] != "pydantic"] == []


def test_help_is_clicks_plain_text_without_richs_markdown() -> None:
    modules = loaded(MAIN_HELP)

    assert "rich.markdown" not in modules and "rich.traceback" not in modules
