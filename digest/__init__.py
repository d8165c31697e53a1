"""digest: email digests of what the world writes about the skills you follow.

The data flows one way, through wings over a shared base (``config``, ``db``, ``models``, ``records``,
``tokens``, ``vocabulary``, ``errors``)::

    ingest/:  sources -> fetch -> parse -> store -> match              (ingest.crawl orchestrates)
    deliver/: cadence -> selection -> compose -> outbox -> mail        (deliver.digests, deliver.alerts)
    site/:    daily figures -> skill pages, the skills index, the stream API
    ops/:     run-time schedules, beat, audit, API keys, limits, logs, metrics

``runtime`` wires the side effects from the settings; the edges hold it: Celery tasks (``tasks``), the
command line (``cli/``) and the web app (``web/``). ``.importlinter`` states who may import whom.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"
# Data shipped inside the package (taxonomy, demo feeds, templates in a wheel) is found from here, so a
# module's depth in the tree never decides where its files are.
PACKAGE_DIR = Path(__file__).resolve().parent
