"""What the admin pages show, read in one transaction each and handed to templates as records or rows, never
ORM objects: the deliveries filter over ``digest.deliver.history`` (which also gives one delivery with its
history), feeds in words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.deliver import history
from digest.errors import InvalidInputError
from digest.ingest.skills import resolve_skill
from digest.records import DeliveryStatus
from digest.web.forms import MAX_ID, whole_number

PAGE_SIZE = 50
STATUSES = tuple(DeliveryStatus)


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """The filters of the deliveries page, as read from its query string, and the page: deliveries older
    than ``before`` (an id), newest first.
    """

    status: str = ""
    email: str = ""
    skill: str = ""
    since: date | None = None
    until: date | None = None
    before: int | None = None

    @classmethod
    def read(cls, query: Mapping[str, str]) -> DeliveryFilter:
        """Parse the query string; ``InvalidInputError`` names the field that is wrong."""
        status = query.get("status", "").strip()
        if status and status not in STATUSES:
            raise InvalidInputError(f"status: choose one of {', '.join(STATUSES)}")
        before = query.get("before", "").strip()
        if before and whole_number(before, 1, MAX_ID) is None:
            raise InvalidInputError("before: a delivery id")
        return cls(
            status,
            query.get("email", "").strip().lower(),
            query.get("skill", "").strip(),
            day(query.get("from", ""), "from"),
            day(query.get("to", ""), "to"),
            int(before) if before else None,
        )

    def link(self, before: int | None) -> str:
        """The deliveries page with these filters, from the newest or from before the id ``before``."""
        fields = {"status": self.status, "email": self.email, "skill": self.skill}
        fields |= {"from": str(self.since or ""), "to": str(self.until or ""), "before": str(before or "")}
        return "/admin/deliveries?" + urlencode({k: v for k, v in fields.items() if v})

    def query(self, skill_id: str) -> history.DeliveryQuery:
        """The read model's query for these filters, ``skill`` resolved to ``skill_id``."""
        return history.DeliveryQuery(
            statuses=(self.status,) if self.status else (),
            address_contains=self.email,
            skill_id=skill_id,
            ends_from=datetime.combine(self.since, time(), UTC) if self.since else None,
            ends_before=datetime.combine(self.until + timedelta(1), time(), UTC) if self.until else None,
            before=self.before,
            limit=PAGE_SIZE,
        )


def day(text: str, field: str) -> date | None:
    """A date from a filter field (``from``, ``to``); empty is none, else ``InvalidInputError``."""
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(f"{field}: write a date like 2026-11-29") from None


def when(value: datetime | None) -> str:
    """A time as the pages show it, in UTC; a dash for none."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def count_by(column: Any) -> Any:
    """Rows of (value, how many) of one column."""
    return select(column, func.count()).group_by(column)


def audit_row(entry: Any) -> dict[str, Any]:
    """An audit entry as a plain mapping."""
    return {name: getattr(entry, name) for name in ("id", "at", "actor", "action", "arguments", "result")}


def deliveries(session: Session, wanted: DeliveryFilter) -> history.DeliveryPage:
    """One page of the deliveries the filters select, newest first (``digest.deliver.history``)."""
    skill_id = resolve_skill(session, wanted.skill).id if wanted.skill else ""
    return history.page(session, wanted.query(skill_id))
