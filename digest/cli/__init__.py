"""The ``digest`` command: one small function per command, each calling an orchestrator.

Errors the user can act on print one line (``error: ...``) and exit 1; a bad setting exits 2.
"""

from __future__ import annotations

import sys

from digest.cli import (
    alerts,
    apikeys,
    audit,
    deliveries,
    feeds,
    ops,
    preview,
    replay,
    run,
    skills,
    sources,
    status,
    subscriptions,
    taxonomy,
)
from digest.cli.app import app
from digest.cli.common import err
from digest.errors import ConfigError, DigestError

# Importing the command modules registers their commands on ``app``.
__all__ = [
    "alerts",
    "apikeys",
    "app",
    "audit",
    "deliveries",
    "feeds",
    "main",
    "ops",
    "preview",
    "replay",
    "run",
    "skills",
    "sources",
    "status",
    "subscriptions",
    "taxonomy",
]


def main() -> None:
    """Entry point: run the CLI, turning our errors into one readable line."""
    try:
        app()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except DigestError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
