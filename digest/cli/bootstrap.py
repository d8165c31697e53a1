"""Bring a database up to date: schema migrations, then the bundled taxonomy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest import db
from digest.ingest import taxonomy
from digest.ops import schedules
from digest.runtime import Runtime


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    """What ``digest db upgrade`` did."""

    revision: str
    taxonomy_version: str
    taxonomy_loaded: bool
    entities: int
    aliases: int


def upgrade_all(rt: Runtime, now: datetime) -> UpgradeResult:
    """Apply migrations, load the bundled taxonomy if its version is not loaded yet, and add the default
    schedules and settings that are missing. Idempotent.
    """
    db.upgrade(rt.engine)
    bundled = taxonomy.read_bundled()
    with db.transaction(rt.sessions) as session:
        # The bundle is the whole taxonomy: skills it no longer has redirect to their nearest (issue 15).
        result = taxonomy.load(session, bundled, now, replace=True)
        # New schedules and settings arrive with the code, not with a migration; existing values stay.
        schedules.ensure_defaults(session, now)
    return UpgradeResult(db.head_revision(), result.version, result.changed, result.entities, result.aliases)
