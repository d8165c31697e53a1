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
    session: Session,
    *,
    limit: int = 100,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    before: int | None = None,
) -> list[AuditEntry]:
    """The newest entries first: ``action`` exactly, or every action under it when it ends with a dot
    ("feed." for feed.pause, feed.resume...); ``actor`` a part of the actor; ``before`` an entry id (paging).
    """
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        prefix = action.endswith(".")
        query = query.where(
            AuditEntry.action.startswith(action, autoescape=True) if prefix else AuditEntry.action == action
        )
    if actor:
        query = query.where(AuditEntry.actor.contains(actor, autoescape=True))
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    return list(session.scalars(query))
