"""What an alert would send now, and sending it now.

    POST /api/v1/alerts/{id}/preview  the alert email as it would go now: the trend's figures and the items
                                      behind them as JSON, the HTML and text parts, and why a run now would
                                      send nothing (``reason``); nothing stored (``alerts.preview``)
    POST /api/v1/alerts/{id}/run      today's alert email opened now (``alerts.open_now``) and sent through
                                      the outbox (``alerts.send``); ``Idempotency-Key`` repeats the first
                                      answer, as for a subscription's run

An alert sends at most one email per UTC day, whoever opens it (a run or the beat's check): a run when the
trend is short of the threshold, or after today's email, is 409 with the reason, as a subscription's run
with nothing new since its last digest.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from digest.db import transaction
from digest.deliver import alerts
from digest.errors import MailError
from digest.ops.apikeys import SUBSCRIBE, ApiKeyInfo
from digest.records import AlertFigures, AlertOutcome, DeliveryStatus
from digest.web.api_v1 import idempotency
from digest.web.api_v1.alerts import owned
from digest.web.api_v1.auth import scoped
from digest.web.api_v1.problems import responses
from digest.web.context import Web
from digest.web.forms import RowId


class TrendOut(BaseModel):
    """A skill's mentions in the alert's period against the 4 weeks before it."""

    skill_id: str
    skill_name: str
    skill_slug: str
    period: str
    start: datetime
    end: datetime
    recent: int = Field(description="mentions in the period")
    baseline: float = Field(description="average mentions per period over the 4 weeks before")
    change: float | None = Field(description="percent change; null when the baseline is 0")
    words: str = Field(description='the change as the email says it ("up 120% vs the prior 4 weeks")')


class AlertItemOut(BaseModel):
    """An item behind the change, as the email shows it."""

    title: str
    url: str | None
    source: str


class AlertPreviewOut(BaseModel):
    """The alert email a run would send now, rendered; not sent and not stored."""

    alert_id: int
    would_send: bool
    reason: str | None = Field(description="why a run now would send nothing; null when it would send this")
    threshold: int
    min_count: int
    trend: TrendOut
    items: list[AlertItemOut]
    subject: str
    html: str
    text: str


class AlertRunOut(BaseModel):
    """What became of the alert email a run sent."""

    alert_id: int
    delivery_id: int
    day: date = Field(description="the UTC day the email counts for: one per alert and day")
    status: str = Field(description="sent, skipped (the address refused), pending (a retry) or failed")
    message_id: str | None
    error: str | None


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    # A default, not an annotation: FastAPI reads string annotations in the module, not this closure.
    caller = Depends(scoped(web, SUBSCRIBE))

    @routes.post("/alerts/{alert_id}/preview", responses=responses(404))
    def preview(alert_id: RowId, key: ApiKeyInfo = caller) -> AlertPreviewOut:
        """The alert email a run would send now, and why not if it would not; nothing is stored or sent."""
        rt = web.rt
        with transaction(rt.sessions) as session:
            owned(session, key, alert_id)
        shown = alerts.preview(rt.sessions, alert_id, web.clock(), rt.composer, rt.delivery)
        said = shown.content
        return AlertPreviewOut(
            alert_id=alert_id,
            would_send=shown.refusal is None,
            reason=shown.refusal,
            threshold=said.trend.threshold,
            min_count=shown.min_count,
            trend=_trend(said.trend),
            items=[AlertItemOut(title=i.title, url=i.url, source=i.source) for i in said.items],
            subject=shown.email.subject,
            html=shown.email.html,
            text=shown.email.text,
        )

    @routes.post("/alerts/{alert_id}/run", response_model=AlertRunOut, responses=responses(404, 409))
    def run(
        request: Request,
        alert_id: RowId,
        body: Annotated[bytes, Depends(idempotency.raw_body)],
        idempotency_key: idempotency.KeyHeader = None,
        key: ApiKeyInfo = caller,
    ) -> Any:
        """Send the alert email now if the trend crosses the threshold, once a day."""
        rt = web.rt
        work = partial(send_now, key, alert_id)
        return idempotency.once(rt.sessions, key.id, idempotency_key, request, body, web.clock(), work)

    def send_now(key: ApiKeyInfo, alert_id: int) -> AlertRunOut:
        rt = web.rt
        now = web.clock()
        with transaction(rt.sessions) as session:
            delivery_id = alerts.open_now(session, owned(session, key, alert_id).id, now)
        try:
            outcome = alerts.send(
                rt.sessions, delivery_id, mailer=rt.mailer, composer=rt.composer, config=rt.delivery, now=now
            )
        except MailError as exc:
            # Temporary: the outbox put it back to pending with a retry time, as the beat's send would.
            outcome = AlertOutcome(delivery_id, DeliveryStatus.PENDING, None, str(exc))
        return AlertRunOut(
            alert_id=alert_id,
            delivery_id=delivery_id,
            day=now.date(),
            status=str(outcome.status),
            message_id=outcome.message_id,
            error=outcome.error,
        )

    return routes


def _trend(figures: AlertFigures) -> TrendOut:
    return TrendOut(
        skill_id=figures.skill_id,
        skill_name=figures.skill_name,
        skill_slug=figures.skill_slug,
        period=figures.period,
        start=figures.start,
        end=figures.end,
        recent=figures.recent,
        baseline=figures.baseline,
        change=figures.change,
        words=figures.words,
    )
