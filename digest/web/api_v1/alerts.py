"""Trend alerts a platform makes for its users: create, read, change (threshold, period, minimum), delete.

    POST   /api/v1/alerts        for an address that already gets mail from us (an active subscriber: a
                                 verified subscription made one); anyone else is 409, since an alert has no
                                 confirmation email of its own. A suppressed address is 409.
    GET    /api/v1/alerts/{id}
    PATCH  /api/v1/alerts/{id}   threshold, period, min_count; another alert on the same skill and period
                                 is 409
    DELETE /api/v1/alerts/{id}   turned off (kept, with its deliveries, for replays)

Ownership as for subscriptions: a ``subscribe`` key reaches the alerts it made, ``admin`` every one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db import transaction
from digest.deliver import alerts, suppression
from digest.errors import ConflictError, NotFoundError
from digest.ingest.skills import resolve_skill
from digest.models import Alert, Skill, Subscriber
from digest.ops.apikeys import ADMIN, SUBSCRIBE, ApiKeyInfo
from digest.web.api import EmailAddress, Line
from digest.web.api_v1.auth import scoped
from digest.web.api_v1.problems import responses
from digest.web.api_v1.subscriptions import skill_ids
from digest.web.context import Web
from digest.web.forms import RowId

Period = Literal["24h", "7d"]
Threshold = Annotated[int, Field(ge=1, le=1000, description="percent change, up or down, that alerts")]
MinCount = Annotated[int, Field(ge=1, le=100_000, description="fewest mentions that may alert")]


class AlertIn(BaseModel):
    """A new alert: whose, on which skill, and when it fires."""

    email: EmailAddress
    skill: Annotated[Line, Field(min_length=1, description="skill name, slug, id or alias")]
    period: Period = "24h"
    threshold: Threshold = 50
    min_count: MinCount = 10


class AlertPatch(BaseModel):
    """Changes to an alert; omitted fields stay as they are."""

    period: Period | None = None
    threshold: Threshold | None = None
    min_count: MinCount | None = None


class AlertOut(BaseModel):
    """An alert as the platform sees it."""

    id: int
    email: str
    skill: str
    skill_slug: str
    period: str
    threshold: int
    min_count: int
    state: str = Field(description="active or off")


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    # A default, not an annotation: FastAPI reads string annotations in the module, not this closure.
    caller = Depends(scoped(web, SUBSCRIBE))

    @routes.post("/alerts", status_code=201, responses=responses(409))
    def create(body: AlertIn, key: ApiKeyInfo = caller) -> AlertOut:
        """Add a trend alert for an address that gets our mail; the same skill and period again updates it."""
        with transaction(web.rt.sessions) as session:
            [skill_id] = skill_ids(session, "skill", [body.skill])
            skill = resolve_skill(session, skill_id)
            suppression.refuse(session, web.settings.secret_key, body.email)
            person = session.scalars(select(Subscriber).where(Subscriber.email == body.email)).first()
            if person is None or person.state != "active":
                raise ConflictError(
                    f"{body.email} gets no mail from us yet: create a verified subscription first"
                )
            existing = _find(session, person.id, skill.id, body.period)
            if existing is not None and existing.api_key_id not in (None, key.id) and not key.allows(ADMIN):
                raise ConflictError("this alert of the address is managed by another API key")
            alert = alerts.add(
                session, person.id, skill, body.period, body.threshold, body.min_count, web.clock()
            )
            alert.api_key_id = alert.api_key_id or key.id
            return _out(session, alert)

    @routes.get("/alerts/{alert_id}", responses=responses(404))
    def read(alert_id: RowId, key: ApiKeyInfo = caller) -> AlertOut:
        """One alert this key made."""
        with transaction(web.rt.sessions) as session:
            return _out(session, owned(session, key, alert_id))

    @routes.patch("/alerts/{alert_id}", responses=responses(404, 409))
    def change(alert_id: RowId, body: AlertPatch, key: ApiKeyInfo = caller) -> AlertOut:
        """Change the threshold, period or minimum count."""
        with transaction(web.rt.sessions) as session:
            alert = owned(session, key, alert_id)
            if body.period is not None and body.period != alert.period:
                if _find(session, alert.subscriber_id, alert.skill_id, body.period) is not None:
                    raise ConflictError(f"the address has a {body.period} alert on this skill already")
                alert.period = body.period
            alert.threshold = body.threshold or alert.threshold
            alert.min_count = body.min_count or alert.min_count
            session.flush()
            return _out(session, alert)

    @routes.delete("/alerts/{alert_id}", responses=responses(404))
    def delete(alert_id: RowId, key: ApiKeyInfo = caller) -> AlertOut:
        """Turn the alert off; deleting twice is not an error."""
        with transaction(web.rt.sessions) as session:
            alert = alerts.remove(session, owned(session, key, alert_id).id)
            return _out(session, alert)

    return routes


def owned(session: Session, key: ApiKeyInfo, alert_id: int) -> Alert:
    """The alert, if ``key`` may reach it (it made it, or is an admin key); else ``NotFoundError``."""
    alert = session.get(Alert, alert_id)
    if alert is None or not (key.allows(ADMIN) or alert.api_key_id == key.id):
        raise NotFoundError(f"no alert with id {alert_id} made with this API key")
    return alert


def _find(session: Session, subscriber_id: int, skill_id: str, period: str) -> Alert | None:
    mine = (Alert.subscriber_id == subscriber_id) & (Alert.skill_id == skill_id) & (Alert.period == period)
    return session.scalars(select(Alert).where(mine)).first()


def _out(session: Session, alert: Alert) -> AlertOut:
    skill = session.get(Skill, alert.skill_id)
    person = session.get(Subscriber, alert.subscriber_id)
    # Foreign keys: an alert always has its skill and its subscriber.
    assert skill is not None
    assert person is not None
    return AlertOut(
        id=alert.id,
        email=person.email,
        skill=skill.name,
        skill_slug=skill.slug,
        period=alert.period,
        threshold=alert.threshold,
        min_count=alert.min_count,
        state=alert.state,
    )
