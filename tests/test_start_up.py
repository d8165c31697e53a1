"""Start-up checks and bad files through the real command line: one line, a non-zero exit, data intact
(issue 14, findings 9 and 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SMALL_TAXONOMY
from tests.support import digest_here, free_port

SECRET = "test-secret-key-0123456789abcdefghijkl"


def digest(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``digest ARGS`` in this process (``digest_here``): the checks run in ``digest.cli.main`` either way."""
    return digest_here({"DIGEST_HOME": str(home), "DIGEST_SECRET_KEY": SECRET, **env}, *args)


def digest_process(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``digest ARGS`` in a child process: for a server, which would otherwise keep running in the test."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    clean |= {"DIGEST_HOME": str(home), "DIGEST_SECRET_KEY": SECRET, **env}
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", *args], env=clean, capture_output=True, text=True, timeout=120
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated embedded home holding the bundled taxonomy."""
    folder = tmp_path_factory.mktemp("start-up") / "home"
    result = digest(folder, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    return folder


def stats(home: Path) -> dict[str, object]:
    result = digest(home, "taxonomy", "stats", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize(
    "address", ["not an address", "digest@example.org\r\nBcc: everyone@example.org", "digest@example.org\n"]
)
def test_a_from_address_that_is_not_one_address_stops_start_up(home: Path, address: str) -> None:
    result = digest_process(home, "web", "--port", str(free_port()), DIGEST_FROM=address)

    assert_one_line(result, 2, "DIGEST_FROM")


def test_an_unreachable_postgresql_is_one_line(home: Path) -> None:
    url = f"postgresql+psycopg://digest:pw-not-shown@127.0.0.1:{free_port()}/digest"

    result = digest(home, "db", "upgrade", DIGEST_DATABASE_URL=url)

    assert_one_line(result, 1, "cannot use the database")
    assert "pw-not-shown" not in result.stderr


def test_an_unwritable_digest_home_is_one_line(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")

    without_secret = digest(blocked / "home", "db", "upgrade", DIGEST_SECRET_KEY="")
    with_secret = digest(blocked / "home", "db", "upgrade")

    assert_one_line(without_secret, 2, "DIGEST_HOME")
    assert_one_line(with_secret, 1, str(blocked))


def test_importing_an_unreadable_file_is_one_line_and_adds_nothing(home: Path) -> None:
    result = digest(home, "feeds", "import", "/proc/self/mem")

    assert_one_line(result, 1, "cannot read /proc/self/mem")
    assert json.loads(digest(home, "feeds", "list", "--json").stdout) == []


def write_taxonomy(path: Path, change: dict[str, dict[str, object]], extra: list[dict[str, object]]) -> Path:
    lines = SMALL_TAXONOMY.read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    rows[0]["_meta"]["version"] = f"hostile-{path.stem}"
    for row in rows[1:]:
        row.update(change.get(row["key"], {}))
    path.write_text("\n".join(json.dumps(row) for row in [*rows, *extra]) + "\n")
    return path


def test_bad_taxonomy_files_are_one_line_and_leave_the_loaded_one(home: Path, tmp_path: Path) -> None:
    before = stats(home)
    first = json.loads(SMALL_TAXONOMY.read_text().splitlines()[1])
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(bytes(range(256)) * 8)
    cases = {
        binary: "not UTF-8",
        write_taxonomy(tmp_path / "twice.jsonl", {}, [{**first, "key": "copy", "slug": "copy"}]): "twice",
        write_taxonomy(tmp_path / "climb.jsonl", {first["key"]: {"slug": "../admin"}}, []): "slug",
        write_taxonomy(tmp_path / "dots.jsonl", {first["key"]: {"slug": "a..b"}}, []): "slug",
        write_taxonomy(tmp_path / "self.jsonl", {first["key"]: {"parents": [first["id"]]}}, []): "itself",
    }

    for path, words in cases.items():
        assert_one_line(digest(home, "taxonomy", "load", str(path)), 1, words)

    assert stats(home) == before
