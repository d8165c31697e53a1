"""The layout keeps what issue 13 asked of it: wings with their pipeline written down, and small modules.

The import rules themselves (layers, wing internals, no cycles) are `.importlinter`'s, run by `.ci/run`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "digest"
WINGS = ("ingest", "deliver", "site", "ops")
# The ORM schema is one declaration per table; splitting it would scatter the foreign keys.
LONG_ALLOWED = {"models.py"}
MAX_LINES = 400


def test_no_module_is_longer_than_400_lines_except_the_schema() -> None:
    long = {
        str(path.relative_to(PACKAGE)): count
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and path.name not in LONG_ALLOWED
        for count in [len(path.read_text(encoding="utf-8").splitlines())]
        if count > MAX_LINES
    }
    assert long == {}


@pytest.mark.parametrize("wing", WINGS)
def test_each_wing_writes_its_pipeline_in_its_docstring(wing: str) -> None:
    text = (PACKAGE / wing / "__init__.py").read_text(encoding="utf-8")
    assert text.startswith('"""') and "->" in text
