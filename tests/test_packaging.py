"""A built wheel carries everything an installed (non-editable) `digest` reads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
NEEDED = (
    "digest/templates/email/base.html",
    "digest/templates/email/digest/subject.txt",
    "digest/templates/email/digest/body.txt",
    "digest/templates/email/digest/body.html",
    "digest/templates/web/base.html",
    "digest/templates/email/digest/notices.txt",
    "digest/migrations/env.py",
    "digest/migrations/script.py.mako",
    "digest/migrations/versions/0001_initial_schema.py",
    "digest/data/taxonomy.jsonl",
    "digest/data/taxonomy-stackoverflow.jsonl",
    "digest/data/NOTICE.md",
    "digest/data/senses.yaml",
    "digest/data/starter.opml",
    "digest/data/starter-engineering-blogs.opml",
    "digest/demo_data/feeds/sources.json",
)


@pytest.mark.slow
def test_the_wheel_carries_templates_migrations_and_data(tmp_path: Path) -> None:
    # No build isolation: hatchling comes with the test extras, so building needs no network.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("digest-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())

    assert [name for name in NEEDED if name not in names] == []
    assert not any(name.startswith(("tests/", "bench/")) for name in names)
