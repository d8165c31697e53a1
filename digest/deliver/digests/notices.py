"""The skill notices a digest carries (issue 15, item 7): followed skills a taxonomy change merged or
dropped (``digest.ingest.taxonomy.notices`` records them). A digest shows a subscription's pending
notices and marks them with its delivery id when its manifest is stored, so they never show again; a
replay reads them back by that id and renders the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.orm import Session

from digest.models import SkillNotice, Subscription
from digest.records import SkillLink, SkillNoticeContent

Shown = tuple[tuple[int, ...], tuple[SkillNoticeContent, ...]]
NONE: Shown = ((), ())


def any_for(delivery_id: int) -> ColumnElement[bool]:
    """A column for the query that reads a delivery's subscription: whether it has a notice to show."""
    return exists().where(
        SkillNotice.subscription_id == Subscription.id,
        (SkillNotice.delivery_id.is_(None)) | (SkillNotice.delivery_id == delivery_id),
    )


def pending(session: Session, subscription_id: int) -> Shown:
    """The notices the next digest of a subscription shows, oldest first, with their ids."""
    return _read(
        session, (SkillNotice.subscription_id == subscription_id) & SkillNotice.delivery_id.is_(None)
    )


def shown_in(session: Session, delivery_id: int) -> Shown:
    """The notices a stored delivery showed."""
    return _read(session, SkillNotice.delivery_id == delivery_id)


def mark_shown(session: Session, ids: Sequence[int], delivery_id: int) -> None:
    """Record that ``delivery_id`` showed these notices, so no later digest repeats them."""
    if ids:
        session.execute(
            update(SkillNotice)
            .where(SkillNotice.id.in_(ids), SkillNotice.delivery_id.is_(None))
            .values(delivery_id=delivery_id)
            .execution_options(synchronize_session=False)
        )


def _read(session: Session, where: ColumnElement[bool]) -> Shown:
    rows = session.execute(
        select(SkillNotice.id, SkillNotice.body).where(where).order_by(SkillNotice.id)
    ).all()
    if not rows:
        return NONE
    return tuple(row.id for row in rows), tuple(_content(row.body) for row in rows)


def _content(body: dict[str, Any]) -> SkillNoticeContent:
    into = body.get("into")
    return SkillNoticeContent(
        skill_name=str(body["skill"]),
        into=SkillLink(str(into["name"]), str(into["slug"])) if into else None,
        offers=tuple(SkillLink(str(link["name"]), str(link["slug"])) for link in body.get("offers") or ()),
    )
