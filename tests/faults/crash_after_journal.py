"""A worker process that dies (SIGKILL) right after the sent journal has its message on disk: between the
journal's fsync and the database write (issue 18). The fault point is the journal write itself, not a
timing. Run as ``python -m tests.faults.crash_after_journal DELIVERY_ID``, the settings in the environment."""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime

from digest.config import load_settings
from digest.deliver import digests
from digest.deliver.journal import Acceptance, Journal
from digest.runtime import Runtime


def main(delivery_id: int) -> None:
    """Send the delivery as a worker would, and die once its acceptance is journaled."""
    record = Journal.record

    def record_then_die(journal: Journal, acceptance: Acceptance) -> None:
        record(journal, acceptance)
        os.kill(os.getpid(), signal.SIGKILL)

    Journal.record = record_then_die  # type: ignore[method-assign]
    rt = Runtime(load_settings(), pre_ping=False)
    digests.send_delivery(
        rt.sessions,
        delivery_id,
        mailer=rt.mailer,
        composer=rt.composer,
        config=rt.delivery,
        now=datetime.now(UTC),
    )
    sys.exit("the delivery was sent without reaching the journal")


if __name__ == "__main__":
    main(int(sys.argv[1]))
