"""The JSON API under /api/: the signup and manage operations, described by the OpenAPI schema at /docs.

A signup answers 202 and mails the confirmation link, whatever the address (no enumeration); bad input
answers 422 with a message per field, as FastAPI does for pydantic models. The manage token from any
email reads, changes and deletes that subscriber's subscriptions, and only those.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy.orm import Session

from digest.db import transaction
from digest.deliver import rights, subscribers, unsubscribe
from digest.deliver.cadence import Schedule, zone
from digest.deliver.signup import SignupRequest, resolve_skills
from digest.errors import InvalidInputError
from digest.ingest.skills import search_skills
from digest.models import Subscriber
from digest.ops import schedules
from digest.records import SubscriptionInfo
from digest.tokens import MANAGE
from digest.web import security
from digest.web.context import Web
from digest.web.forms import RowId


def one_line(value: str) -> str:
    """``value``, or ``ValueError`` if it holds a line break or NUL (header injection, PostgreSQL text)."""
    if any(char in value for char in security.FORBIDDEN):
        raise ValueError("line breaks are not allowed")
    return value


def _address(value: str) -> str:
    try:
        return subscribers.normalise_email(value)
    except InvalidInputError as exc:
        raise ValueError(str(exc)) from None


Line = Annotated[str, Field(max_length=320), AfterValidator(one_line)]
# An address as the API takes it: one line, then normalised (or refused in the normaliser's words).
EmailAddress = Annotated[Line, AfterValidator(_address)]
Cadence = Literal["hourly", "daily", "weekly"]


def _known_zone(value: str | None) -> str | None:
    if value is not None:
        try:
            zone(value)
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None
    return value


class SignupIn(BaseModel):
    """A signup: who, which skills (names, slugs or ids) and when."""

    email: EmailAddress
    skills: list[Line] = Field(min_length=1, max_length=20)
    cadence: Cadence = "daily"
    timezone: Annotated[Line | None, AfterValidator(_known_zone)] = None
    hour: int | None = Field(default=None, ge=0, le=23, description="Local hour; default set by ops (8)")
    weekday: int | None = Field(
        default=None, ge=0, le=6, description="0 = Monday; used by weekly digests; default set by ops (0)"
    )


class Accepted(BaseModel):
    """A signup was accepted; nothing is sent until the emailed link is confirmed."""

    status: Literal["pending"] = "pending"
    message: str


class SubscriptionOut(BaseModel):
    """One subscription."""

    id: int
    cadence: str
    hour: int
    weekday: int
    timezone: str
    state: str
    skills: list[str]
    next_due_at: datetime


class SubscriberOut(BaseModel):
    """A subscriber and their subscriptions."""

    email: str
    subscriptions: list[SubscriptionOut]


class SubscriptionPatch(BaseModel):
    """Changes to one subscription; omitted fields stay as they are."""

    cadence: Cadence | None = None
    hour: int | None = Field(default=None, ge=0, le=23)
    weekday: int | None = Field(default=None, ge=0, le=6)
    timezone: Annotated[Line | None, AfterValidator(_known_zone)] = None
    state: Literal["active", "paused"] | None = None
    add_skills: list[Line] = Field(default_factory=list, max_length=20)
    remove_skills: list[Line] = Field(default_factory=list, max_length=20)


def _out(info: SubscriptionInfo) -> SubscriptionOut:
    return SubscriptionOut(
        id=info.id,
        cadence=info.cadence,
        hour=info.hour,
        weekday=info.weekday,
        timezone=info.timezone,
        state=info.state,
        skills=list(info.skills),
        next_due_at=info.next_due_at,
    )


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter(prefix="/api", tags=["api"])
    secret = web.settings.secret_key

    def subscriber_of(token: str) -> int:
        return security.token_id(secret, MANAGE, token, "u")

    def skill_ids(field: str, queries: list[str]) -> tuple[str, ...]:
        """Resolve skills, or 422 naming each unknown one with suggestions."""
        with transaction(web.rt.sessions) as session:
            found, unknown = resolve_skills(session, queries)
            errors = []
            for position, query in enumerate(queries):
                if query.strip() in unknown:
                    hits = [hit.name for hit in search_skills(session, query, limit=5)]
                    hint = f"; did you mean {', '.join(hits)}?" if hits else ""
                    errors.append(
                        {
                            "type": "unknown_skill",
                            "loc": ("body", field, position),
                            "msg": f"no skill called {query!r}{hint}",
                            "input": query,
                        }
                    )
        if errors:
            raise RequestValidationError(errors)
        return tuple(skill.id for skill in found)

    @routes.post("/subscriptions", status_code=202)
    def create(request: Request, body: SignupIn) -> Accepted:
        """Sign up; a confirmation link is emailed and nothing is sent before it is used."""
        with transaction(web.rt.sessions) as session:
            hour, weekday = schedules.subscription_defaults(session)
        schedule = Schedule(
            body.cadence,
            hour if body.hour is None else body.hour,
            weekday if body.weekday is None else body.weekday,
            body.timezone or web.settings.default_timezone,
        )
        signup = SignupRequest(body.email, skill_ids("skills", body.skills), schedule)
        now = web.clock()
        web.signups.check_ip(security.client_ip(request), now)
        web.signups.request(signup, now)
        return Accepted(message=f"If {body.email} can receive mail, a confirmation link is on its way.")

    def whole(token: str, act: Callable[[Session, int], list[SubscriptionInfo]]) -> SubscriberOut:
        """``act`` on every subscription of a manage token's subscriber, and show them all."""
        subscriber_id = subscriber_of(token)
        with transaction(web.rt.sessions) as session:
            subscriber = session.get(Subscriber, subscriber_id)
            if subscriber is None or subscriber.state == rights.ERASED:
                raise InvalidInputError("this link is not valid")
            infos = act(session, subscriber_id)
        return SubscriberOut(email=subscriber.email, subscriptions=[_out(info) for info in infos])

    @routes.get("/manage/{token}")
    def read(token: str) -> SubscriberOut:
        """The subscriber of a manage token and every subscription."""
        return whole(token, subscribers.subscriptions_of)

    @routes.patch("/manage/{token}/subscriptions/{subscription_id}")
    def change(token: str, subscription_id: RowId, body: SubscriptionPatch) -> SubscriptionOut:
        """Change schedule, state or skills; a new cadence the subscriber already has merges into it."""
        subscriber_id = subscriber_of(token)
        changes = subscribers.Changes(
            cadence=body.cadence,
            hour=body.hour,
            weekday=body.weekday,
            timezone=body.timezone,
            state=body.state,
            add=skill_ids("add_skills", body.add_skills) if body.add_skills else (),
            remove=skill_ids("remove_skills", body.remove_skills) if body.remove_skills else (),
        )
        with transaction(web.rt.sessions) as session:
            info = subscribers.update(session, subscriber_id, subscription_id, changes, web.clock())
        return _out(info)

    @routes.delete("/manage/{token}/subscriptions/{subscription_id}")
    def delete_one(token: str, subscription_id: RowId) -> SubscriptionOut:
        """Unsubscribe from one subscription."""
        subscriber_id = subscriber_of(token)
        with transaction(web.rt.sessions) as session:
            subscribers.owned(session, subscriber_id, subscription_id)
            return _out(unsubscribe.unsubscribe(session, subscription_id))

    @routes.delete("/manage/{token}")
    def delete_all(token: str) -> SubscriberOut:
        """Unsubscribe from everything: digests, trend alerts and the emails not yet sent (issue 14)."""
        now = web.clock()
        return whole(
            token,
            lambda session, sid: unsubscribe.unsubscribe_all(session, sid, now, secret=secret, source="api"),
        )

    return routes
