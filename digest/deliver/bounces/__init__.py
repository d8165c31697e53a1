"""Bounces that arrive after the SMTP server said 250, and complaints (issue 19).

    a digest goes out with a VERP return path naming its delivery, signed (``deliver.verp``)
    bounce mailbox (maildir or IMAP, ``mailbox``) -> read_report: RFC 3464 DSN / RFC 5965 ARF (``reports``)
    provider webhook, signature verified (``providers``, ``sns``) -> the same ``Report``
        -> record.apply: an event in the delivery's history; hard bounce or complaint -> suppressed;
           soft bounce -> one more toward ``outbox.BOUNCE_LIMIT``; a forged or unknown delivery -> nothing

Each report is applied in its own transaction, then marked done in the mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Mailbox
from digest.db import transaction
from digest.deliver.bounces.mailbox import letters
from digest.deliver.bounces.record import APPLIED, Applied, apply
from digest.deliver.bounces.reports import COMPLAINT, HARD, SOFT, Report, read_report

__all__ = [
    "COMPLAINT",
    "HARD",
    "SOFT",
    "Applied",
    "MailboxResult",
    "Report",
    "apply",
    "apply_reports",
    "read_mailbox",
    "read_report",
]


@dataclass(frozen=True, slots=True)
class MailboxResult:
    """What one read of the bounce mailbox found: messages read, and what each report did."""

    read: int
    reports: tuple[Applied, ...]

    def as_json(self) -> dict[str, Any]:
        """The shape ``digest bounces read --json`` prints."""
        applied = [report for report in self.reports if report.outcome == APPLIED]
        return {
            "read": self.read,
            "hard": sum(report.kind == HARD for report in applied),
            "soft": sum(report.kind == SOFT for report in applied),
            "complaints": sum(report.kind == COMPLAINT for report in applied),
            "ignored": self.read - len(applied),
            "reports": [report.as_json() for report in self.reports],
        }


def read_mailbox(sessions: sessionmaker[Session], box: Mailbox, secret: str, now: datetime) -> MailboxResult:
    """Read every unread message of the bounce mailbox, apply its report, and mark it done."""
    read, reports = 0, []
    for letter in letters(box):
        report = read_report(letter.raw, secret, "bounce mailbox")
        if report is not None:
            with transaction(sessions) as session:
                reports.append(apply(session, report, secret, now))
        letter.done()
        read += 1
    return MailboxResult(read, tuple(reports))


def apply_reports(
    sessions: sessionmaker[Session], reports: list[Report], secret: str, now: datetime
) -> list[Applied]:
    """Apply the reports of one webhook call, in one transaction (a provider retries the whole call)."""
    with transaction(sessions) as session:
        return [apply(session, report, secret, now) for report in reports]
