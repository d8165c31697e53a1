"""digest: email digests of what the world writes about the skills you follow.

The data flows one way, in two wings over a shared base::

    ingest:  sources -> fetch -> parse -> store -> match          (crawl.py orchestrates)
    deliver: cadence -> selection -> compose -> mail -> record    (digests.py orchestrates)

Beat ticks enqueue thin Celery tasks (tasks.py); the CLI (cli.py) and the web app (web/) call the same
orchestrators in the foreground.
"""

from __future__ import annotations

__version__ = "0.1.0"
