"""The pre-filled signup form and the confirmation link (double opt-in).

``/subscribe?skill=python&cadence=daily`` opens the form filled in; POST records a pending signup and
mails a confirmation link, answering with the same page whatever the address (``digest.signup``).
``/confirm/{token}``: GET shows a button, POST confirms (mail scanners follow links, people press buttons).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from digest.db import transaction
from digest.deliver.cadence import Schedule
from digest.deliver.signup import SignupRequest, describe_schedule, resolve_skills
from digest.deliver.subscribers import normalise_email
from digest.errors import InvalidInputError
from digest.ingest.skills import SkillHit, popular_names, search_skills
from digest.ops import schedules
from digest.records import SubscriptionInfo
from digest.tokens import MANAGE, make_token
from digest.vocabulary import CADENCES, MAX_SKILLS_PER_REQUEST, WEEKDAYS, limit_skills
from digest.web import security
from digest.web.context import Web
from digest.web.forms import Fields, check_schedule, email_problem, form_reader, whole_number
from digest.web.manage import next_digest
from digest.web.zones import is_zone, zone_choices

HONEYPOT = "website"
# Skills the autocomplete offers before anything is typed (issue 17).
POPULAR = 20


@dataclass
class SignupForm:
    """The signup form's values and what is wrong with them."""

    email: str = ""
    skills: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[tuple[str, list[SkillHit]]] = field(default_factory=list)
    cadence: str = "daily"
    hour: int = 8
    weekday: int = 0
    timezone: str = "UTC"
    timezone_given: bool = False
    errors: dict[str, str] = field(default_factory=dict)


def _number(text: str, low: int, high: int, default: int) -> int:
    value = whole_number(text, low, high)
    return default if value is None else value


def _fill(session: Session, form: SignupForm, queries: list[str]) -> None:
    """Resolve skill queries into the form: known ones as checked boxes, unknown ones with suggestions.

    Past MAX_SKILLS_PER_REQUEST only the first ones are resolved, and the form says why (issue 14)."""
    try:
        limit_skills(queries)
    except InvalidInputError as exc:
        form.errors["skills"] = str(exc).capitalize()
    skills, unknown = resolve_skills(session, queries[:MAX_SKILLS_PER_REQUEST])
    form.skills += [(skill.id, skill.name) for skill in skills if skill.id not in dict(form.skills)]
    form.unknown += [(query[:100], search_skills(session, query, limit=5)) for query in unknown]


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    signup_form = Depends(form_reader(web.settings.secret_key, "subscribe"))

    def show(request: Request, form: SignupForm, status: int = 200) -> HTMLResponse:
        with transaction(web.rt.sessions) as session:
            popular = popular_names(session, POPULAR)
        return web.page(
            request,
            "subscribe.html",
            status,
            form=form,
            cadences=CADENCES,
            weekdays=WEEKDAYS,
            zones=zone_choices(form.timezone if is_zone(form.timezone) else web.settings.default_timezone),
            popular=popular,
        )

    @routes.get("/subscribe", response_class=HTMLResponse)
    def subscribe_form(request: Request) -> HTMLResponse:
        query = request.query_params
        security.refuse_line_breaks(query.values())
        zone = query.get("timezone", "")
        with transaction(web.rt.sessions) as session:
            # Ops choose the defaults at run time (``digest cadence set default-hour 7``).
            hour, weekday = schedules.subscription_defaults(session)
            form = SignupForm(
                email=query.get("email", "")[:320],
                cadence=query.get("cadence", "daily") if query.get("cadence") in CADENCES else "daily",
                hour=_number(query.get("hour", ""), 0, 23, hour),
                weekday=_number(query.get("weekday", ""), 0, 6, weekday),
                timezone=zone if is_zone(zone) else web.settings.default_timezone,
                timezone_given=is_zone(zone),
            )
            _fill(session, form, query.getlist("skill"))
        return show(request, form)

    @routes.post("/subscribe", response_class=HTMLResponse)
    def subscribe(request: Request, fields: Fields = signup_form) -> HTMLResponse:
        get = fields.first
        form = SignupForm(
            email=get("email")[:320],
            cadence=get("cadence"),
            hour=_number(get("hour"), 0, 23, -1),
            weekday=_number(get("weekday"), 0, 6, -1),
            timezone=get("timezone"),
            timezone_given=True,
        )
        more = [text for text in get("more").split(",") if text.strip()]
        with transaction(web.rt.sessions) as session:
            _fill(session, form, [*fields.all("skill"), *more])
        request_ = _validate(form)
        if request_ is None:
            return show(request, form, 400)
        if get(HONEYPOT):
            # A bot filled the hidden field: answer as if all went well, do nothing.
            return web.page(request, "check_email.html", email=request_.email)
        now = web.clock()
        web.signups.check_ip(security.client_ip(request), now)
        web.signups.request(request_, now)
        return web.page(request, "check_email.html", email=request_.email)

    @routes.get("/confirm/{token}", response_class=HTMLResponse)
    def confirm_form(request: Request, token: str) -> HTMLResponse:
        signup, names = web.signups.read(token)
        before = web.signups.applied(signup)
        if before is not None:
            return confirmed(request, token, before, already=True)
        return web.page(
            request,
            "confirm.html",
            token=token,
            email=signup.email,
            skills=names,
            cadence=signup.schedule.cadence,
            when=describe_schedule(signup.schedule),
            done=False,
        )

    @routes.post("/confirm/{token}", response_class=HTMLResponse)
    def confirm(request: Request, token: str) -> HTMLResponse:
        # No form field is needed: the signed token is the proof (issue 5).
        outcome = web.signups.confirm(token, web.clock())
        return confirmed(request, token, outcome.info, already=outcome.already)

    def confirmed(request: Request, token: str, info: SubscriptionInfo, *, already: bool) -> HTMLResponse:
        manage = make_token(web.settings.secret_key, MANAGE, {"u": info.subscriber_id})
        schedule = Schedule(info.cadence, info.hour, info.weekday, info.timezone)
        return web.page(
            request,
            "confirm.html",
            token=token,
            email=info.email,
            skills=list(info.skills),
            cadence=info.cadence,
            when=describe_schedule(schedule),
            done=True,
            already=already,
            manage_url=f"/manage/{manage}",
            # Issue 17: when the first digest comes, from the window the dispatch uses.
            next_at=next_digest(info, web.clock()) if info.state == "active" else "",
        )

    return routes


def _validate(form: SignupForm) -> SignupRequest | None:
    """The request the form describes, or None with ``form.errors`` filled in."""
    address = ""
    try:
        address = normalise_email(form.email)
    except InvalidInputError:
        form.errors["email"] = email_problem(form.email)
    if "skills" in form.errors:
        pass  # too many skills: ``_fill`` said so while resolving them
    elif form.unknown:
        form.errors["skills"] = "We do not know some of these skills: pick a suggestion or remove them."
    elif not form.skills:
        form.errors["skills"] = "Choose at least one skill."
    hour, weekday = (None if value < 0 else value for value in (form.hour, form.weekday))
    try:
        check_schedule(form.cadence, hour, weekday, form.timezone)
    except InvalidInputError as exc:
        form.errors["schedule"] = str(exc)
    if form.errors:
        return None
    # A field the cadence does not use may be missing: any valid value will do, the slots ignore it.
    schedule = Schedule(form.cadence, hour or 0, weekday or 0, form.timezone)
    return SignupRequest(address, tuple(skill_id for skill_id, _ in form.skills), schedule)
