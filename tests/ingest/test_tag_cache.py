"""The compiled matcher kept under DIGEST_HOME (issue 15 item 6): same tags as a fresh compile, rebuilt when
the taxonomy changes or the file is damaged, never an error."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from digest.ingest.match import AliasSpec, Matcher, SkillInfo
from digest.ingest.match.cache import cached_matcher, inputs_key
from digest.ingest.taxonomy import read_bundled

GOLD = Path(__file__).parent.parent / "data" / "gold"
# The feed sentences and the dev sentences; the held-out part stays out of every loop but its own figure.
GOLD_FILES = ("matcher-gold.jsonl", "sentences-dev.jsonl")
CACHE = Path("cache") / "matcher.pickle"


def _gold_lines() -> str:
    return "".join((GOLD / name).read_text(encoding="utf-8") for name in GOLD_FILES)


def _documents() -> list[tuple[str, str]]:
    return [(row.get("title", ""), row["text"]) for row in map(json.loads, _gold_lines().splitlines())]


@pytest.fixture(scope="module")
def inputs() -> tuple[list[AliasSpec], dict[str, SkillInfo], str]:
    taxonomy = read_bundled()
    skills = {
        entity.id: SkillInfo(entity.name, entity.category, entity.popularity, frozenset(entity.parents))
        for entity in taxonomy.entities
    }
    aliases = [
        AliasSpec(entity.id, alias.text, alias.ambiguous, alias.case_sensitive)
        for entity in taxonomy.entities
        for alias in entity.aliases
    ]
    return aliases, skills, taxonomy.version


@pytest.fixture(scope="module")
def fresh(inputs: tuple[list[AliasSpec], dict[str, SkillInfo], str]) -> Matcher:
    aliases, skills, version = inputs
    return Matcher(aliases, skills, version=version)


def test_a_loaded_matcher_tags_the_gold_sets_as_a_compiled_one(
    tmp_path: Path, inputs: tuple[list[AliasSpec], dict[str, SkillInfo], str], fresh: Matcher
) -> None:
    path = tmp_path / "matcher.pickle"
    cached_matcher(path, *inputs)
    written = path.stat().st_mtime_ns

    loaded = cached_matcher(path, *inputs)

    assert path.stat().st_mtime_ns == written  # read, not compiled and written again
    documents = _documents()
    assert len(documents) > 800
    assert loaded.tag_many(documents) == fresh.tag_many(documents)
    assert (loaded.version, loaded.alias_count, loaded.skills) == (
        fresh.version,
        fresh.alias_count,
        fresh.skills,
    )


def test_a_changed_taxonomy_compiles_a_new_matcher(
    tmp_path: Path, inputs: tuple[list[AliasSpec], dict[str, SkillInfo], str]
) -> None:
    aliases, skills, version = inputs
    path = tmp_path / "matcher.pickle"
    before = cached_matcher(path, aliases, skills, version)
    rust = next(alias.skill_id for alias in aliases if alias.text == "Rust")
    edited = [*aliases, AliasSpec(rust, "Ferrisware")]

    after = cached_matcher(path, edited, skills, version)

    assert before.tag("", "Written in Ferrisware.") == []
    assert [tag.name for tag in after.tag("", "Written in Ferrisware.")] == ["Rust"]
    assert inputs_key(edited, skills, version) in path.read_bytes()[:200]
    renamed = {**skills, rust: dataclasses.replace(skills[rust], popularity=0.5)}
    assert len({inputs_key(aliases, skills, version), inputs_key(aliases, renamed, version)}) == 2
    assert inputs_key(aliases, skills, version) != inputs_key(aliases, skills, version + "+edit1")


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _flipped(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def _not_a_matcher(data: bytes) -> bytes:
    # A well-formed file whose payload is some other object: header and digest recomputed to match.
    import hashlib

    header, payload = data.split(b"\n", 3)[:3], pickle.dumps({"not": "a matcher"})
    return b"\n".join([header[0], header[1], hashlib.sha256(payload).hexdigest().encode(), payload])


@pytest.mark.parametrize(
    "damage",
    [lambda data: b"", lambda data: b"\x80\x05garbage", _truncated, _flipped, _not_a_matcher],
    ids=["empty", "garbage", "truncated", "flipped", "not-a-matcher"],
)
def test_a_damaged_file_is_rebuilt(
    tmp_path: Path,
    inputs: tuple[list[AliasSpec], dict[str, SkillInfo], str],
    fresh: Matcher,
    damage: object,
) -> None:
    path = tmp_path / "matcher.pickle"
    cached_matcher(path, *inputs)
    good = path.read_bytes()
    assert callable(damage)
    path.write_bytes(damage(good))

    matcher = cached_matcher(path, *inputs)

    assert matcher.tag_many(_documents()[:200]) == fresh.tag_many(_documents()[:200])
    assert len(path.read_bytes()) == len(good)  # written again, whole
    assert cached_matcher(path, *inputs).tag("", "Rust and Kubernetes") == fresh.tag(
        "", "Rust and Kubernetes"
    )


def test_an_unwritable_cache_still_tags(
    tmp_path: Path, inputs: tuple[list[AliasSpec], dict[str, SkillInfo], str], fresh: Matcher
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / "matcher.pickle").mkdir()  # a directory where the file should be

    for path in (blocker / "matcher.pickle", directory / "matcher.pickle"):
        assert cached_matcher(path, *inputs).tag("", "PyTorch on GPUs") == fresh.tag("", "PyTorch on GPUs")
    assert os.listdir(directory) == ["matcher.pickle"]  # no temporary file left behind


def _tag_lines(home: Path, lines: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"DIGEST_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", "tag", "--jsonl"],
        input=lines,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_digest_tag_writes_the_same_bytes_with_and_without_its_cache(
    tmp_path: Path, upgraded_home: Path
) -> None:
    home = Path(shutil.copytree(upgraded_home, tmp_path / "home"))
    (home / CACHE).unlink(missing_ok=True)
    lines = _gold_lines()

    compiled = _tag_lines(home, lines)
    written = (home / CACHE).stat().st_mtime_ns
    loaded = _tag_lines(home, lines)
    read = (home / CACHE).stat().st_mtime_ns
    (home / CACHE).write_bytes(_truncated((home / CACHE).read_bytes()))
    recovered = _tag_lines(home, lines)

    for done in (compiled, loaded, recovered):
        assert (done.returncode, done.stderr) == (0, "")
    assert read == written  # the second run loaded the file
    assert loaded.stdout == compiled.stdout == recovered.stdout
    assert len(compiled.stdout.splitlines()) == len(lines.splitlines())
    assert sum(line != "[]" for line in compiled.stdout.splitlines()) > 500


def test_digest_tag_refuses_a_line_that_is_not_json_in_one_line(tmp_path: Path, upgraded_home: Path) -> None:
    home = Path(shutil.copytree(upgraded_home, tmp_path / "home"))

    done = _tag_lines(home, '{"text": "Rust"}\n{"text": \n')

    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "stdin:2" in done.stderr and "Traceback" not in done.stderr
