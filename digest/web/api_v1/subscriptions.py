"""Subscriptions a platform makes for its own users: create, read, change and delete.

    POST   /api/v1/subscriptions        "verified": true -> active at once, the key named as who vouched
                                        (audited); a suppressed address is 409. Otherwise double opt-in,
                                        as the signup form: 202, pending until the emailed link is used
    GET    /api/v1/subscriptions/{id}
    PATCH  /api/v1/subscriptions/{id}   cadence, hour, weekday, timezone, state, skills (the whole list)
    DELETE /api/v1/subscriptions/{id}   unsubscribed at once

A key with ``subscribe`` reaches the subscriptions it made; one with ``admin`` reaches every one. Any other
is 404, as if it did not exist, so ids cannot be probed. An address's subscription at a cadence is one row
(``subscribers``): a second create for the same address and cadence adds the skills to it, and one made by
another key is 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db import transaction
from digest.deliver import subscribers, suppression, unsubscribe
from digest.deliver.cadence import Schedule, zone
from digest.deliver.signup import SignupRequest, resolve_skills
from digest.errors import ConflictError, InvalidInputError, NotFoundError
from digest.ingest.skills import unknown_skill
from digest.models import Subscription, SubscriptionSkill
from digest.ops import audit, schedules
from digest.ops.apikeys import ADMIN, SUBSCRIBE, ApiKeyInfo
from digest.records import SubscriptionInfo
from digest.web.api import EmailAddress, Line
from digest.web.api_v1.auth import scoped
from digest.web.api_v1.problems import responses
from digest.web.context import Web
from digest.web.forms import RowId

Cadence = Literal["hourly", "daily", "weekly"]


def _known_zone(value: str) -> str:
    try:
        zone(value)
    except InvalidInputError as exc:
        raise ValueError(str(exc)) from None
    return value


Zone = Annotated[Line, AfterValidator(_known_zone)]
Skills = list[Line]


class SubscriptionIn(BaseModel):
    """A subscription for one address: which skills (names, slugs or ids) and when."""

    email: EmailAddress
    skills: Skills = Field(min_length=1, max_length=20)
    cadence: Cadence = "daily"
    hour: int | None = Field(default=None, ge=0, le=23, description="local hour; default set by ops (8)")
    weekday: int | None = Field(default=None, ge=0, le=6, description="0 = Monday; default set by ops (0)")
    timezone: Zone | None = Field(default=None, description="IANA timezone; default DIGEST_DEFAULT_TIMEZONE")
    verified: bool = Field(
        default=False,
        description="the platform vouches for the address: active at once, no confirmation email",
    )


class SubscriptionPatch(BaseModel):
    """Changes to a subscription; omitted fields stay as they are. ``skills`` replaces the list."""

    cadence: Cadence | None = None
    hour: int | None = Field(default=None, ge=0, le=23)
    weekday: int | None = Field(default=None, ge=0, le=6)
    timezone: Zone | None = None
    state: Literal["active", "paused"] | None = None
    skills: Skills | None = Field(default=None, min_length=1, max_length=20)


class SubscriptionOut(BaseModel):
    """A subscription as the platform sees it."""

    id: int
    email: str
    cadence: str
    hour: int
    weekday: int = Field(description="0 = Monday")
    timezone: str
    state: str = Field(description="pending (waiting for confirmation), active, paused or unsubscribed")
    skills: list[str]
    next_due_at: datetime
    vouched_by: str | None = Field(description="the API key that vouched for the address, if one did")


def owned(session: Session, key: ApiKeyInfo, subscription_id: int) -> Subscription:
    """The subscription, if ``key`` may reach it (it made it, or is an admin key); else ``NotFoundError``."""
    row = session.get(Subscription, subscription_id)
    if row is None or not (key.allows(ADMIN) or row.api_key_id == key.id):
        raise NotFoundError(f"no subscription with id {subscription_id} made with this API key")
    return row


def subscription_out(session: Session, subscription_id: int) -> SubscriptionOut:
    """The API's view of one subscription."""
    info: SubscriptionInfo = subscribers.describe(session, subscription_id)
    row = session.get(Subscription, subscription_id)
    return SubscriptionOut(
        id=info.id,
        email=info.email,
        cadence=info.cadence,
        hour=info.hour,
        weekday=info.weekday,
        timezone=info.timezone,
        state=info.state,
        skills=list(info.skills),
        next_due_at=info.next_due_at,
        vouched_by=row.vouched_by if row is not None else None,
    )


def skill_ids(session: Session, field: str, queries: list[str]) -> tuple[str, ...]:
    """The skills named, or a 422 naming each unknown one with suggestions (as ``/api`` does)."""
    found, unknown = resolve_skills(session, queries)
    errors = [
        {"type": "unknown_skill", "loc": ("body", field, position), "msg": unknown_skill(session, query)}
        for position, query in enumerate(queries)
        if query.strip() in unknown or not query.strip()
    ]
    if errors:
        raise RequestValidationError(errors)
    return tuple(skill.id for skill in found)


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    # A default, not an annotation: FastAPI reads string annotations in the module, not this closure.
    caller = Depends(scoped(web, SUBSCRIBE))

    def claim(session: Session, key: ApiKeyInfo, email: str, cadence: str) -> None:
        """409 if this address's subscription at ``cadence`` is another key's; else it becomes ours."""
        existing = subscribers.find(session, subscribers.subscriber_id(session, email) or 0, cadence)
        if existing is None:
            return
        if existing.api_key_id not in (None, key.id) and not key.allows(ADMIN):
            raise ConflictError(f"the {cadence} subscription of this address is managed by another API key")

    def own(session: Session, key: ApiKeyInfo, email: str, cadence: str, vouched: bool) -> int:
        row = subscribers.find(session, subscribers.subscriber_id(session, email) or 0, cadence)
        if row is None:
            raise NotFoundError(f"no {cadence} subscription for {email}")
        row.api_key_id = row.api_key_id or key.id
        if vouched:
            row.vouched_by = key.name
        session.flush()
        return row.id

    @routes.post(
        "/subscriptions",
        status_code=201,
        responses={**responses(409), 202: {"model": SubscriptionOut, "description": "pending confirmation"}},
    )
    def create(body: SubscriptionIn, response: Response, key: ApiKeyInfo = caller) -> SubscriptionOut:
        """Subscribe an address: at once with `"verified": true`, else by double opt-in (202)."""
        now = web.clock()
        with transaction(web.rt.sessions) as session:
            ids = skill_ids(session, "skills", body.skills)
            claim(session, key, body.email, body.cadence)
            hour, weekday = schedules.subscription_defaults(session)
            schedule = Schedule(
                body.cadence,
                hour if body.hour is None else body.hour,
                weekday if body.weekday is None else body.weekday,
                body.timezone or web.settings.default_timezone,
            )
            if body.verified:
                # Suppression wins over every shortcut (issue 14): a platform cannot vouch past it.
                suppression.refuse(session, web.settings.secret_key, body.email)
                subscribers.subscribe(session, body.email, ids, schedule, now, confirmed=True)
                subscription_id = own(session, key, body.email, body.cadence, vouched=True)
                arguments = {"subscription": subscription_id, "cadence": body.cadence, "key": key.name}
                audit.record(session, f"api:{key.name}", "subscription.vouch", arguments, now)
                return subscription_out(session, subscription_id)
        web.signups.request(SignupRequest(body.email, ids, schedule), now)
        response.status_code = 202
        with transaction(web.rt.sessions) as session:
            return subscription_out(session, own(session, key, body.email, body.cadence, vouched=False))

    @routes.get("/subscriptions/{subscription_id}", responses=responses(404))
    def read(subscription_id: RowId, key: ApiKeyInfo = caller) -> SubscriptionOut:
        """One subscription this key made."""
        with transaction(web.rt.sessions) as session:
            return subscription_out(session, owned(session, key, subscription_id).id)

    @routes.patch("/subscriptions/{subscription_id}", responses=responses(404, 409))
    def change(subscription_id: RowId, body: SubscriptionPatch, key: ApiKeyInfo = caller) -> SubscriptionOut:
        """Change the schedule, state or skills; a cadence the address already has merges into it."""
        with transaction(web.rt.sessions) as session:
            row = owned(session, key, subscription_id)
            wanted = skill_ids(session, "skills", body.skills) if body.skills is not None else None
            have = set(
                session.scalars(
                    select(SubscriptionSkill.skill_id).where(SubscriptionSkill.subscription_id == row.id)
                )
            )
            changes = subscribers.Changes(
                cadence=body.cadence,
                hour=body.hour,
                weekday=body.weekday,
                timezone=body.timezone,
                state=body.state,
                add=tuple(s for s in wanted or () if s not in have),
                remove=tuple(s for s in have if wanted is not None and s not in wanted),
            )
            info = subscribers.update(session, row.subscriber_id, row.id, changes, web.clock())
            return subscription_out(session, info.id)

    @routes.delete("/subscriptions/{subscription_id}", responses=responses(404))
    def delete(subscription_id: RowId, key: ApiKeyInfo = caller) -> SubscriptionOut:
        """Unsubscribe at once; deleting twice is not an error."""
        with transaction(web.rt.sessions) as session:
            unsubscribe.unsubscribe(session, owned(session, key, subscription_id).id)
            return subscription_out(session, subscription_id)

    return routes
