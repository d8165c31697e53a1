"""The ``digest`` command: one small function per command, each calling an orchestrator.

Errors the user can act on print one line (``error: ...``) and exit 1; a bad setting exits 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from digest.cli import (
    alerts,
    apikeys,
    audit,
    deliveries,
    feeds,
    lifecycle,
    ops,
    preview,
    replay,
    rights,
    run,
    skills,
    sources,
    status,
    subscriptions,
    suppression,
    taxonomy,
)
from digest.cli.app import app
from digest.cli.common import alarm, err
from digest.errors import ConfigError, DigestError

# Importing the command modules registers their commands on ``app``.
__all__ = [
    "alerts",
    "apikeys",
    "app",
    "audit",
    "deliveries",
    "feeds",
    "lifecycle",
    "main",
    "ops",
    "preview",
    "replay",
    "rights",
    "run",
    "skills",
    "sources",
    "status",
    "subscriptions",
    "suppression",
    "taxonomy",
]


def main(args: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI on ``args`` (the command line's when None; given, the usage lines name the
    command ``digest``), turning our errors into one readable line."""
    try:
        if args is None:
            app()
        else:
            app(args=list(args), prog_name="digest")
    except ConfigError as exc:
        err.print(alarm("configuration error:", f" {exc}"), highlight=False, soft_wrap=True)
        sys.exit(2)
    except DigestError as exc:
        err.print(alarm("error:", f" {exc}"), highlight=False, soft_wrap=True)
        sys.exit(1)
    except OSError as exc:
        # An unwritable DIGEST_HOME, a full disk: the operating system's words and the path.
        where = f"{exc.filename}: " if exc.filename else ""
        reason = f"{where}{exc.strerror or _first_line(exc)}"
        err.print(alarm("error:", f" {reason}"), highlight=False, soft_wrap=True)
        sys.exit(1)
    except Exception as exc:
        if not _database_error(exc):
            raise
        # The database is down, unreachable or cannot be created: one line, not a traceback (issue 14).
        orig = getattr(exc, "orig", None)
        reason = _first_line(orig if orig is not None else exc)
        err.print(alarm("error:", f" cannot use the database: {reason}"), highlight=False, soft_wrap=True)
        sys.exit(1)


def _database_error(exc: Exception) -> bool:
    """Whether ``exc`` is SQLAlchemy's ``OperationalError``, without importing SQLAlchemy to ask: a command
    that never loaded it cannot have raised it, and ``digest --help`` starts without it (issue 17).
    """
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.OperationalError)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
