"""Trend alerts on the web: add and remove them on the manage page or the JSON API, and the one-click
"turn this alert off" link every alert email carries (RFC 8058: POST acts, GET only shows the button)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import AfterValidator, BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from digest.db import transaction
from digest.deliver import alerts, suppression
from digest.errors import ConflictError, NotFoundError
from digest.ingest.skills import resolve_skill, search_skills
from digest.models import Alert, Skill, Subscriber
from digest.tokens import MANAGE
from digest.web import security
from digest.web.api import one_line
from digest.web.context import Web
from digest.web.forms import MAX_ID, Fields, RowId, form_reader, whole_number
from digest.web.manage import AlertForm, manage_page


class AlertIn(BaseModel):
    """A new alert (or new figures for an existing one on the same skill and period)."""

    skill: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(one_line)] = Field(
        description="Skill name, slug, id or alias."
    )
    period: str = Field(default="24h", pattern="^(24h|7d)$", description="24h or 7d.")
    threshold: int = Field(default=50, ge=1, le=1000, description="Percent change, up or down, that alerts.")
    min_count: int = Field(default=10, ge=1, le=100_000, description="Fewest mentions that may alert.")


class AlertOut(BaseModel):
    """An alert as its subscriber sees it."""

    id: int
    skill: str
    skill_slug: str
    period: str
    threshold: int
    min_count: int
    state: str


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    secret = web.settings.secret_key
    manage_form = Depends(form_reader(secret, "manage"))

    def add(subscriber_id: int, body: AlertIn) -> AlertOut:
        with transaction(web.rt.sessions) as session:
            subscriber = session.get(Subscriber, subscriber_id)
            if subscriber is not None:
                # A suppressed person starts no alert from a link (issue 14): 409, with the reason and date.
                suppression.refuse_subscriber(session, subscriber.email)
            skill = resolve_skill(session, body.skill)
            alert = alerts.add(
                session, subscriber_id, skill, body.period, body.threshold, body.min_count, web.clock()
            )
            return _out(alert, skill)

    @routes.get("/api/manage/{token}/alerts", tags=["api"])
    def list_alerts(token: str) -> list[AlertOut]:
        """The trend alerts of a manage token's subscriber."""
        subscriber_id = security.token_id(secret, MANAGE, token, "u")
        with transaction(web.rt.sessions) as session:
            return [AlertOut(**asdict(info)) for info in alerts.of_subscriber(session, subscriber_id)]

    @routes.post("/api/manage/{token}/alerts", tags=["api"], status_code=201)
    def create_alert(token: str, body: AlertIn) -> AlertOut:
        """Add a trend alert: one email on a day a skill's mentions rise or fall past the threshold."""
        return add(security.token_id(secret, MANAGE, token, "u"), body)

    @routes.delete("/api/manage/{token}/alerts/{alert_id}", tags=["api"])
    def delete_alert(token: str, alert_id: RowId) -> AlertOut:
        """Turn an alert off."""
        subscriber_id = security.token_id(secret, MANAGE, token, "u")
        with transaction(web.rt.sessions) as session:
            alert = alerts.remove(session, alert_id, subscriber_id)
            skill = session.get(Skill, alert.skill_id)
            assert skill is not None
            return _out(alert, skill)

    @routes.post("/manage/{token}/alerts", response_class=HTMLResponse)
    def alert_form(request: Request, token: str, fields: Fields = manage_form) -> Response:
        subscriber_id = security.token_id(secret, MANAGE, token, "u")
        get = fields.first
        if get("action") == "alert_off":
            with transaction(web.rt.sessions) as session:
                alerts.remove(session, whole_number(get("alert"), 1, MAX_ID) or 0, subscriber_id)
            return RedirectResponse(f"/manage/{token}?note=alert_off", status_code=303)
        # A refused alert keeps the person on the manage page, the form filled in and each error beside
        # its field (issue 17), instead of a page of its own.
        form = AlertForm({name: get(name)[:1000] for name in ALERT_FIELDS})
        body = _form_alert(form)
        if body is not None:
            try:
                add(subscriber_id, body)
            except NotFoundError:
                form.errors["skill"] = f"We do not know the skill “{body.skill}”."
                with transaction(web.rt.sessions) as session:
                    hits = search_skills(session, body.skill, limit=5)
                form = replace(form, suggestions=tuple(hit.name for hit in hits))
            except ConflictError as exc:
                return manage_page(web, request, token, 409, error=str(exc), alert_form=form)
        if form.errors:
            return manage_page(web, request, token, 400, alert_form=form)
        return RedirectResponse(f"/manage/{token}?note=alert_added", status_code=303)

    @routes.get("/alerts/off/{token}", response_class=HTMLResponse)
    def off_form(request: Request, token: str) -> HTMLResponse:
        alert_id = security.token_id(secret, alerts.ALERT_OFF, token, "a")
        with transaction(web.rt.sessions) as session:
            name = _skill_name(session, alert_id)
        return web.page(request, "alert_off.html", token=token, skill=name, done=False)

    @routes.post("/alerts/off/{token}", response_class=HTMLResponse)
    def off(request: Request, token: str) -> HTMLResponse:
        # RFC 8058: the body is "List-Unsubscribe=One-Click" from a mail client, or empty from our button.
        alert_id = security.token_id(secret, alerts.ALERT_OFF, token, "a")
        with transaction(web.rt.sessions) as session:
            alerts.remove(session, alert_id)
            name = _skill_name(session, alert_id)
        return web.page(request, "alert_off.html", token=token, skill=name, done=True)

    return routes


ALERT_FIELDS = ("skill", "period", "threshold", "min_count")
# What to do about each field, in words (issue 17): the limits are AlertIn's.
FIX = {
    "skill": "Name a skill, such as Python or Kubernetes.",
    "period": "Choose “last 24 hours” or “last 7 days”.",
    "threshold": "Enter a whole number of percent from 1 to 1000.",
    "min_count": "Enter a whole number of mentions from 1 to 100000.",
}


def _form_alert(form: AlertForm) -> AlertIn | None:
    """The alert the manage page's form asks for, checked by the model the API uses; None with
    ``form.errors`` filled in, one per field. A value out of range or not a number is refused in words,
    never replaced by a default (issue 14, finding 6)."""
    values: dict[str, object] = {
        "skill": form.values["skill"].strip(),
        "period": form.values["period"] or "24h",
    }
    for name in ("threshold", "min_count"):
        # Left empty: the model's default. Anything else must be a whole number.
        if text := form.values[name].strip():
            number = whole_number(text, 0, 10**9)
            if number is None:
                form.errors[name] = FIX[name]
            values[name] = number
    try:
        body = AlertIn.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "skill"
            form.errors.setdefault(name, FIX.get(name, "Check this field."))
        return None
    return None if form.errors else body


def _skill_name(session: Session, alert_id: int) -> str:
    alert = session.get(Alert, alert_id)
    skill = session.get(Skill, alert.skill_id) if alert is not None else None
    return skill.name if skill is not None else "this skill"


def _out(alert: Alert, skill: Skill) -> AlertOut:
    return AlertOut(
        id=alert.id,
        skill=skill.name,
        skill_slug=skill.slug,
        period=alert.period,
        threshold=alert.threshold,
        min_count=alert.min_count,
        state=alert.state,
    )
