"""The admin's switches for the person on call (issue 17): sending paused or on (with a confirmation page),
a feed paused, resumed, fetched now or given its own interval, and the audit log with filters and paging.

    /admin/sending                     the state; ?to=pause|resume asks to confirm; POST changes it
    /admin/feeds/{id}/{action}         POST: pause, resume, fetch (due now: the next crawl tick takes it)
    /admin/feeds/{id}/interval         POST: value such as 30m, or empty for the kind's default
    /admin/audit                       every entry, newest first, 50 a page; actor, action, from, to

Every change is audited with actor ``web:admin`` (``sending.set_paused`` audits its own), and the health
banner is read again after it, so the page shows the state just made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from digest.db import transaction
from digest.errors import DigestError, InvalidInputError
from digest.ingest import catalog
from digest.ops import audit, sending
from digest.vocabulary import parse_duration
from digest.web.admin import views
from digest.web.admin.banner import Banner
from digest.web.context import Web
from digest.web.forms import MAX_ID, Fields, RowId, whole_number

FEED_ACTIONS = ("pause", "resume", "fetch")
SWITCH = {"pause": True, "resume": False}
AUDIT_PAGE = 50

Page = Callable[..., HTMLResponse]
Record = Callable[[str, Mapping[str, Any], str], None]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """The audit page's filters as read from its query string, and the page: entries older than ``before``."""

    actor: str = ""
    action: str = ""
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None

    @classmethod
    def read(cls, query: Mapping[str, str]) -> AuditFilter:
        """Parse the query string; ``InvalidInputError`` names the field that is wrong."""
        before = query.get("before", "").strip()
        if before and whole_number(before, 1, MAX_ID) is None:
            raise InvalidInputError("before: an audit entry id")
        since, until = views.day(query.get("from", ""), "from"), views.day(query.get("to", ""), "to")
        return cls(
            actor=query.get("actor", "").strip()[:100],
            action=query.get("action", "").strip()[:100],
            since=datetime.combine(since, time(), UTC) if since else None,
            until=datetime.combine(until + timedelta(1), time(), UTC) if until else None,
            before=int(before) if before else None,
        )

    @property
    def from_day(self) -> str:
        """The ``from`` field as typed back into the form: the first day shown."""
        return self.since.date().isoformat() if self.since else ""

    @property
    def to_day(self) -> str:
        """The ``to`` field as typed back into the form: the last day shown (``until`` is the day after)."""
        return (self.until - timedelta(1)).date().isoformat() if self.until else ""

    def link(self, before: int | None) -> str:
        """The audit page with these filters, from the newest or from before the id ``before``."""
        fields = {"actor": self.actor, "action": self.action, "from": self.from_day, "to": self.to_day}
        fields["before"] = str(before or "")
        return "/admin/audit?" + urlencode({k: v for k, v in fields.items() if v})


def add_routes(
    private: APIRouter, page: Page, web: Web, record: Record, banner: Banner, fields_of: Any
) -> None:
    """Add the switches and the audit page to the admin's authorised routes."""
    actor = "web:admin"

    def sending_page(request: Request, status: int = 200, to: str = "", saved: bool = False) -> HTMLResponse:
        with transaction(web.rt.sessions) as session:
            state = sending.state(session)
        return page(request, "sending.html", status, state=state, to=to, saved=saved)

    @private.get("/admin/sending", response_class=HTMLResponse)
    def sending_get(request: Request, to: str = "", saved: str = "") -> HTMLResponse:
        return sending_page(request, to=to if to in SWITCH else "", saved=saved == "1")

    @private.post("/admin/sending")
    def sending_post(request: Request, fields: Fields = fields_of) -> Response:
        to = fields.first("to")
        if to not in SWITCH:
            return sending_page(request, 400)
        if fields.first("confirmed") != "yes":
            # The switch stops or starts every email: it takes a second, deliberate click.
            return sending_page(request, 400, to=to)
        with transaction(web.rt.sessions) as session:
            sending.set_paused(session, paused=SWITCH[to], actor=actor, now=web.clock())
        banner.forget()
        return RedirectResponse("/admin/sending?saved=1", status_code=303)

    @private.post("/admin/feeds/{source_id}/interval")
    def feed_interval(request: Request, source_id: RowId, fields: Fields = fields_of) -> Response:
        value = fields.first("value").strip()
        arguments = {"feed": source_id, "interval": value or "default"}
        try:
            seconds = parse_duration(value) if value else None
            with transaction(web.rt.sessions) as session:
                catalog.set_interval(session, source_id, seconds, web.clock())
        except DigestError as exc:
            record("feed.interval", arguments, f"refused: {exc}")
            return _back_to_feeds(f"feed {source_id}: {exc}", failed=True)
        record("feed.interval", arguments, "ok")
        return _back_to_feeds(f"feed {source_id}: interval {value or 'of its kind'}")

    @private.post("/admin/feeds/{source_id}/{action}")
    def feed_action(request: Request, source_id: RowId, action: str, _: Fields = fields_of) -> Response:
        if action not in FEED_ACTIONS:
            return _back_to_feeds(f"no such action: choose one of {', '.join(FEED_ACTIONS)}", failed=True)
        now = web.clock()
        try:
            with transaction(web.rt.sessions) as session:
                if action == "fetch":
                    catalog.fetch_soon(session, source_id, now)
                else:
                    catalog.set_state(session, source_id, action, now)
        except DigestError as exc:
            record(f"feed.{action}", {"feed": source_id}, f"refused: {exc}")
            return _back_to_feeds(f"feed {source_id}: {exc}", failed=True)
        record(f"feed.{action}", {"feed": source_id}, "ok")
        banner.forget()
        done = {"pause": "paused", "resume": "resumed", "fetch": "due now: the next crawl tick fetches it"}
        return _back_to_feeds(f"feed {source_id} {done[action]}")

    @private.get("/admin/audit", response_class=HTMLResponse)
    def audit_page(request: Request) -> HTMLResponse:
        wanted, rows, error = AuditFilter(), [], ""
        try:
            wanted = AuditFilter.read(request.query_params)
            with transaction(web.rt.sessions) as session:
                found = audit.entries(
                    session,
                    limit=AUDIT_PAGE + 1,
                    action=wanted.action or None,
                    actor=wanted.actor or None,
                    since=wanted.since,
                    until=wanted.until,
                    before=wanted.before,
                )
                rows = [views.audit_row(entry) for entry in found]
        except DigestError as exc:
            error = str(exc)
        older = rows[AUDIT_PAGE - 1]["id"] if len(rows) > AUDIT_PAGE else None
        return page(
            request,
            "audit.html",
            400 if error else 200,
            f=wanted,
            rows=rows[:AUDIT_PAGE],
            older=wanted.link(older) if older else "",
            error=error,
        )


def _back_to_feeds(message: str, *, failed: bool = False) -> Response:
    """POST/redirect/GET to the feeds page with what happened in words."""
    key = "error" if failed else "saved"
    return RedirectResponse(f"/admin/feeds?{key}={quote(message, safe='')}", status_code=303)
