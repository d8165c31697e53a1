"""What a subscription would send now, and sending it now.

    POST /api/v1/subscriptions/{id}/preview  the digest as it would go now: sections as JSON, the HTML and
                                             text parts; nothing stored (``digests.preview``, as
                                             ``digest preview``)
    POST /api/v1/subscriptions/{id}/run      the open window closed now (``digests.open_now``) and sent
                                             through the outbox (``digests.send_delivery``): once, as
                                             every delivery; ``Idempotency-Key`` repeats the first answer

A run's window starts where the last digest ended and ends now (no later than the matcher's progress);
the next scheduled digest starts where it ends, so nothing is lost or sent twice. A temporary mail failure
leaves the delivery pending, and the outbox retries it as any other (``status`` says so).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from digest.db import transaction
from digest.deliver import digests, subscribers
from digest.errors import MailError
from digest.models import Delivery
from digest.ops.apikeys import SUBSCRIBE, ApiKeyInfo
from digest.records import DeliveryOutcome, DeliveryStatus, DigestSection, ItemForDigest
from digest.web.api_v1 import idempotency
from digest.web.api_v1.auth import scoped
from digest.web.api_v1.problems import responses
from digest.web.api_v1.subscriptions import owned
from digest.web.context import Web
from digest.web.forms import RowId


class ItemOut(BaseModel):
    """An item in a digest section, and why it is there."""

    id: int
    title: str
    url: str | None
    source: str
    published_at: datetime | None
    matched: list[str]
    score: float


class SectionOut(BaseModel):
    """The items of one skill; ``more`` were left out by the cap ("+N more")."""

    skill_id: str
    skill_name: str
    skill_slug: str
    items: list[ItemOut]
    more: int


class PreviewOut(BaseModel):
    """The digest the subscription would get now, rendered; not sent and not stored."""

    subscription_id: int
    window_start: datetime
    window_end: datetime
    subject: str
    sections: list[SectionOut]
    more: int
    html: str
    text: str


class RunOut(BaseModel):
    """What became of the digest a run sent."""

    subscription_id: int
    delivery_id: int
    status: str = Field(
        description="sent, skipped (nothing to send, or the address refused), pending or failed"
    )
    items: int
    window_start: datetime
    window_end: datetime
    message_id: str | None
    error: str | None


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    # A default, not an annotation: FastAPI reads string annotations in the module, not this closure.
    caller = Depends(scoped(web, SUBSCRIBE))

    @routes.post("/subscriptions/{subscription_id}/preview", responses=responses(404))
    def preview(subscription_id: RowId, key: ApiKeyInfo = caller) -> PreviewOut:
        """The digest that would be sent now: sections and rendered parts; nothing is stored or sent."""
        with transaction(web.rt.sessions) as session:
            info = subscribers.describe(session, owned(session, key, subscription_id).id)
        address, cadence = info.email, info.cadence
        rt = web.rt
        shown = digests.preview(rt.sessions, address, cadence, web.clock(), rt.composer, rt.delivery)
        said = shown.content
        return PreviewOut(
            subscription_id=subscription_id,
            window_start=said.window_start,
            window_end=said.window_end,
            subject=shown.email.subject,
            sections=[_section(section) for section in said.sections],
            more=said.more,
            html=shown.email.html,
            text=shown.email.text,
        )

    @routes.post("/subscriptions/{subscription_id}/run", response_model=RunOut, responses=responses(404, 409))
    def run(
        request: Request,
        subscription_id: RowId,
        body: Annotated[bytes, Depends(idempotency.raw_body)],
        idempotency_key: idempotency.KeyHeader = None,
        key: ApiKeyInfo = caller,
    ) -> Any:
        """Send the open window now, once."""
        rt = web.rt
        work = partial(send_now, key, subscription_id)
        return idempotency.once(rt.sessions, key.id, idempotency_key, request, body, web.clock(), work)

    def send_now(key: ApiKeyInfo, subscription_id: int) -> RunOut:
        rt = web.rt
        with transaction(rt.sessions) as session:
            delivery_id = digests.open_now(session, owned(session, key, subscription_id).id, web.clock())
        try:
            outcome = digests.send_delivery(
                rt.sessions,
                delivery_id,
                mailer=rt.mailer,
                composer=rt.composer,
                config=rt.delivery,
                now=web.clock(),
                cache=rt.windows,
            )
        except MailError as exc:
            # Temporary: the outbox put it back to pending with a retry time (as `send-due`, issue 17).
            outcome = DeliveryOutcome(delivery_id, DeliveryStatus.PENDING, 0, None, str(exc))
        with transaction(rt.sessions) as session:
            delivery = session.get(Delivery, delivery_id)
            assert delivery is not None  # deliveries are never deleted while a run reads them
            window = delivery.window_start, delivery.window_end
        return RunOut(
            subscription_id=subscription_id,
            delivery_id=delivery_id,
            status=str(outcome.status),
            items=outcome.items,
            window_start=window[0],
            window_end=window[1],
            message_id=outcome.message_id,
            error=outcome.error,
        )

    return routes


def _section(section: DigestSection) -> SectionOut:
    return SectionOut(
        skill_id=section.skill_id,
        skill_name=section.skill_name,
        skill_slug=section.skill_slug,
        items=[_item(item) for item in section.items],
        more=section.more,
    )


def _item(item: ItemForDigest) -> ItemOut:
    return ItemOut(
        id=item.item_id,
        title=item.title,
        url=item.url,
        source=item.source_name,
        published_at=item.published_at,
        matched=list(item.matched),
        score=item.score,
    )
