"""The signed manage page and one-click unsubscribe.

``/manage/{token}`` lists a subscriber's digests; each change is a small POST form (CSRF-bound to the
link) followed by a redirect back (POST/redirect/GET), so reloading never repeats it. The link is the
owner's consent, so skills added here need no second confirmation.

``/u/{token}``: RFC 8058 — a POST unsubscribes at once with no page or field needed; a GET only shows
the button. Tokens never expire and name one subscription. Mail providers and anyone a message was
forwarded to can call them, so their pages never show a manage link (issue 14): they offer to mail it
to the address on file instead, rate-limited like signups, with the same answer whatever happens.
The page also offers a weekly digest instead (``/u/{token}/weekly``) and, once unsubscribed, an undo
(``/u/{token}/undo``) carrying a signed token valid for ``UNDO_PERIOD`` (issue 17).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from digest.db import transaction
from digest.deliver import alerts, rights, subscribers, unsubscribe
from digest.deliver.signup import TooManyRequestsError, resolve_skills
from digest.errors import ConflictError, InvalidInputError, LinkExpiredError, NotFoundError
from digest.ingest.skills import search_skills
from digest.models import Subscriber
from digest.records import SubscriptionInfo
from digest.tokens import MANAGE, UNDO, UNSUBSCRIBE, make_until, read_until
from digest.vocabulary import CADENCES, WEEKDAYS, limit_skills
from digest.web import security
from digest.web.context import Web
from digest.web.forms import MAX_ID, Fields, check_schedule, form_reader, whole_number
from digest.web.zones import zone_choices

# How long after unsubscribing the page's "Undo" button re-subscribes in one click (issue 17).
UNDO_PERIOD = timedelta(hours=1)

NOTES = {
    "saved": "Saved. The change applies from your next digest.",
    "paused": "Paused. Nothing will be sent until you resume.",
    "resumed": "Resumed from the next slot.",
    "unsubscribed": "Unsubscribed.",
    "alert_added": "Alert added: we email you on a day its mentions rise or fall past your threshold.",
    "alert_off": "Alert turned off.",
}


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    secret = web.settings.secret_key
    manage_form = Depends(form_reader(secret, "manage"))
    unsubscribe_form_fields = Depends(form_reader(secret, "unsubscribe"))

    def show(request: Request, token: str, status: int = 200, error: str = "") -> HTMLResponse:
        return manage_page(web, request, token, status, error=error)

    @routes.get("/manage/{token}", response_class=HTMLResponse)
    def manage(request: Request, token: str) -> HTMLResponse:
        return show(request, token)

    @routes.post("/manage/{token}", response_class=HTMLResponse)
    def change(request: Request, token: str, fields: Fields = manage_form) -> Response:
        subscriber_id = security.token_id(secret, MANAGE, token, "u")
        action, get = fields.first("action"), fields.first
        now = web.clock()
        try:
            with transaction(web.rt.sessions) as session:
                if action == "unsubscribe_all":
                    unsubscribe.unsubscribe_all(
                        session, subscriber_id, now, secret=secret, source="manage page"
                    )
                    return _back(token, "unsubscribed")
                sid = whole_number(get("subscription"), 1, MAX_ID) or 0
                if action == "add":
                    queries = limit_skills([text for text in get("skills").split(",") if text.strip()])
                    found, unknown = resolve_skills(session, queries)
                    if unknown:
                        hits = search_skills(session, unknown[0], limit=5)
                        hint = f" Did you mean {', '.join(hit.name for hit in hits)}?" if hits else ""
                        raise InvalidInputError(f"We do not know the skill “{unknown[0]}”.{hint}")
                    changes = subscribers.Changes(add=tuple(skill.id for skill in found))
                    note = "saved"
                elif action == "remove":
                    changes, note = subscribers.Changes(remove=(get("skill"),)), "saved"
                elif action in ("pause", "resume"):
                    state = "paused" if action == "pause" else "active"
                    changes, note = subscribers.Changes(state=state), f"{action}d"
                elif action == "unsubscribe":
                    subscribers.owned(session, subscriber_id, sid)
                    unsubscribe.unsubscribe(session, sid)
                    return _back(token, "unsubscribed")
                elif action == "schedule":
                    changes, note = _schedule_changes(fields), "saved"
                else:
                    raise InvalidInputError("unknown action")
                subscribers.update(session, subscriber_id, sid, changes, now)
        except InvalidInputError as exc:
            # Shown on the page itself, beside the forms, so the reader can correct and retry.
            return show(request, token, 400, error=str(exc))
        except ConflictError as exc:
            # A suppressed address resuming (issue 14): the page says why and how to start again.
            return show(request, token, 409, error=str(exc))
        return _back(token, note)

    @routes.get("/u/{token}", response_class=HTMLResponse)
    def unsubscribe_form(request: Request, token: str) -> HTMLResponse:
        subscription_id = security.token_id(secret, UNSUBSCRIBE, token, "s")
        with transaction(web.rt.sessions) as session:
            info = subscribers.describe(session, subscription_id)
        return unsubscribe_page(request, token, info, done=info.state == "unsubscribed")

    @routes.post("/u/{token}", response_class=HTMLResponse)
    def one_click(request: Request, token: str) -> HTMLResponse:
        # RFC 8058: the body is "List-Unsubscribe=One-Click" from a mail client, or empty from our button.
        subscription_id = security.token_id(secret, UNSUBSCRIBE, token, "s")
        now = web.clock()
        with transaction(web.rt.sessions) as session:
            before = subscribers.describe(session, subscription_id).state
            info = unsubscribe.unsubscribe(session, subscription_id)
        # Only the request that stopped the digest may undo it: a second POST of a link (a forwarded
        # email's reader) must not turn into a way to re-subscribe someone who left long ago.
        undo = (
            make_until(secret, UNDO, {"s": subscription_id, "p": before}, now + UNDO_PERIOD)
            if before != "unsubscribed"
            else ""
        )
        return unsubscribe_page(request, token, info, done=True, undo=undo)

    @routes.post("/u/{token}/undo", response_class=HTMLResponse)
    def undo_unsubscribe(
        request: Request, token: str, fields: Fields = unsubscribe_form_fields
    ) -> HTMLResponse:
        subscription_id = security.token_id(secret, UNSUBSCRIBE, token, "s")
        now = web.clock()
        try:
            payload, _ = read_until(secret, UNDO, fields.first("undo"), now)
        except LinkExpiredError:
            with transaction(web.rt.sessions) as session:
                info = subscribers.describe(session, subscription_id)
            return unsubscribe_page(request, token, info, status=410, done=True, expired=True)
        if payload.get("s") != subscription_id:
            raise InvalidInputError("this undo button belongs to another digest")
        with transaction(web.rt.sessions) as session:
            info = subscribers.describe(session, subscription_id)
            info = subscribers.update(
                session, info.subscriber_id, subscription_id, subscribers.Changes(state="active"), now
            )
            if payload.get("p") == "paused":
                info = subscribers.pause(session, info.subscriber_id, subscription_id)
        return unsubscribe_page(request, token, info, undone=True, next_at=_next_at(info, now))

    @routes.post("/u/{token}/weekly", response_class=HTMLResponse)
    def switch_to_weekly(
        request: Request, token: str, fields: Fields = unsubscribe_form_fields
    ) -> HTMLResponse:
        # Fewer emails instead of none (issue 17, as Substack and Mailchimp offer): the same skills, weekly.
        del fields  # read for its CSRF check only
        subscription_id = security.token_id(secret, UNSUBSCRIBE, token, "s")
        now = web.clock()
        with transaction(web.rt.sessions) as session:
            info = subscribers.describe(session, subscription_id)
            if info.state not in ("active", "paused"):
                raise ConflictError("this digest is unsubscribed: subscribe again before changing how often")
            info = subscribers.update(
                session, info.subscriber_id, subscription_id, subscribers.Changes(cadence="weekly"), now
            )
        return unsubscribe_page(request, token, info, weekly=True, next_at=_next_at(info, now))

    def unsubscribe_page(
        request: Request, token: str, info: SubscriptionInfo, status: int = 200, **shown: object
    ) -> HTMLResponse:
        return web.page(
            request,
            "unsubscribe.html",
            status,
            info=info,
            token=token,
            undo_minutes=int(UNDO_PERIOD.total_seconds() // 60),
            **shown,
        )

    @routes.post("/u/{token}/manage-link", response_class=HTMLResponse)
    def mail_manage_link(request: Request, token: str) -> HTMLResponse:
        subscription_id = security.token_id(secret, UNSUBSCRIBE, token, "s")
        with transaction(web.rt.sessions) as session:
            subscriber_id = subscribers.describe(session, subscription_id).subscriber_id
        now = web.clock()
        try:
            web.signups.check_ip(security.client_ip(request), now)
            web.signups.mail_manage_link(subscriber_id, now)
        except TooManyRequestsError:
            # Not sent; the answer stays the same, so the page tells nothing about the address or limits.
            pass
        message = "If this address still takes mail, a link to manage your digests is on its way."
        return web.page(request, "message.html", title="Check your email", message=message)

    return routes


@dataclass(frozen=True, slots=True)
class AlertForm:
    """The alert form as it was posted, and what is wrong with it, field by field (issue 17)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    suggestions: tuple[str, ...] = ()


def manage_page(
    web: Web,
    request: Request,
    token: str,
    status: int = 200,
    *,
    error: str = "",
    alert_form: AlertForm | None = None,
) -> HTMLResponse:
    """The manage page of a manage token's subscriber: the digests, the alerts, the person's data.

    ``error`` is shown above the digests; ``alert_form``, an alert refused, is shown filled in with its
    errors beside the fields, so the reader corrects it on the page (issue 17)."""
    subscriber_id = security.token_id(web.settings.secret_key, MANAGE, token, "u")
    with transaction(web.rt.sessions) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.state == rights.ERASED:
            raise NotFoundError("the data of this link was erased: nothing is stored under it")
        infos = subscribers.subscriptions_of(session, subscriber_id)
        trend_alerts = alerts.of_subscriber(session, subscriber_id)
    now = web.clock()
    next_digests = {info.id: next_digest(info, now) for info in infos if info.state == "active"}
    return web.page(
        request,
        "manage.html",
        status,
        token=token,
        email=subscriber.email,
        subscriptions=infos,
        next_digests=next_digests,
        alerts=trend_alerts,
        periods=alerts.PERIODS,
        note=NOTES.get(request.query_params.get("note", ""), ""),
        error=error,
        alert_form=alert_form or AlertForm(),
        cadences=CADENCES,
        weekdays=WEEKDAYS,
        zones={info.id: zone_choices(info.timezone) for info in infos},
    )


def _next_at(info: SubscriptionInfo, now: datetime) -> str:
    return next_digest(info, now) if info.state == "active" else ""


def next_digest(info: SubscriptionInfo, now: datetime) -> str:
    """When the next digest goes out, in the subscriber's time: the end of the window its next dispatch
    opens (``cadence.window``, as the dispatch and ``digest preview`` compute it)."""
    end = subscribers.next_window(info, now)[1].astimezone(ZoneInfo(info.timezone))
    # Issue 17's wording: "Fri 11 Dec, 07:00 (Europe/Berlin)".
    return f"{end:%a} {end.day} {end:%b}, {end:%H:%M} ({info.timezone})"


def _schedule_changes(fields: Fields) -> subscribers.Changes:
    get = fields.first
    hour, weekday = whole_number(get("hour"), 0, 23), whole_number(get("weekday"), 0, 6)
    # A field the cadence does not use may be missing (forms.js hides it): the stored value stays.
    check_schedule(get("cadence"), hour, weekday, get("timezone"))
    return subscribers.Changes(cadence=get("cadence"), hour=hour, weekday=weekday, timezone=get("timezone"))


def _back(token: str, note: str) -> RedirectResponse:
    return RedirectResponse(f"/manage/{token}?note={note}", status_code=303)
