"""The audit log: every admin or operator action, who did it, when, with what, and what came of it."""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.models import AuditEntry


def cli_actor() -> str:
    """Who runs a command: the operating-system user, marked as coming from the command line."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def record(
    session: Session,
    actor: str,
    action: str,
    arguments: Mapping[str, Any],
    now: datetime,
    result: str | None = None,
) -> AuditEntry:
    """Write one entry in the caller's transaction, so the action and its record commit together."""
    entry = AuditEntry(at=now, actor=actor, action=action, arguments=dict(arguments), result=result)
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session, *, limit: int = 100, action: str | None = None, since: datetime | None = None
) -> list[AuditEntry]:
    """The newest entries first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action == action)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    return list(session.scalars(query))
