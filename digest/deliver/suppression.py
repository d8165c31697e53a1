"""The global suppression list: addresses that get no email of any kind (issue 14, the people's rights).

An address is suppressed when its owner unsubscribed from everything, when it bounced for good (the
subscriber became ``bouncing``: ``outbox.BOUNCE_LIMIT`` permanent refusals in a row), when its owner
complained (no complaint feed exists: ops run ``digest suppression add ADDRESS --reason complaint``), or
when its data was erased. Suppression wins over every shortcut, as in listmonk and Mailchimp:

    digests and alerts  -> refused at claim time (``digests.send``, ``alerts``: joined by address)
    ops re-import       -> ``digest subscribe`` and ``digest alerts add`` refuse it (exit 1)
    manage page and API -> resuming a subscription of a suppressed person answers 409
    signup form         -> the confirmation email still goes out (the person asked for it on the form),
                           and the person's own new confirmation lifts the suppression
    ``digest suppression remove ADDRESS`` -> lifts it, written to the audit log

Rows are keyed by an HMAC-SHA256 of the lower-cased address with the secret key, so an erased address
keeps only the hash and is still recognised at a re-import. Changing ``DIGEST_SECRET_KEY`` orphans the
hashes of erased addresses (docs/design.md).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, select
from sqlalchemy.orm import Session

from digest.errors import ConflictError, InvalidInputError
from digest.models import Subscriber, Subscription, Suppression

UNSUBSCRIBED, BOUNCE, COMPLAINT, ERASED, MANUAL = "unsubscribed", "bounce", "complaint", "erased", "manual"
REASONS = (UNSUBSCRIBED, BOUNCE, COMPLAINT, ERASED, MANUAL)
# What ``digest suppression add`` may give: an erasure comes only from ``digest subscribers erase``.
ADDABLE = (COMPLAINT, BOUNCE, UNSUBSCRIBED, MANUAL)
WORDS = {
    UNSUBSCRIBED: "unsubscribed from everything",
    BOUNCE: "bounced",
    COMPLAINT: "complained",
    ERASED: "had its data erased",
    MANUAL: "was suppressed by ops",
}


@dataclass(frozen=True, slots=True)
class SuppressionInfo:
    """One entry of the list; ``email`` is None after an erasure (only the hash is kept)."""

    id: int
    address_hash: str
    email: str | None
    reason: str
    source: str
    since: datetime

    def describe(self, address: str) -> str:
        """Why and since when, in words: '<address> unsubscribed from everything on 2026-12-06'."""
        return f"{address} {WORDS.get(self.reason, self.reason)} on {self.since:%Y-%m-%d}"


def address_hash(secret: str, address: str) -> str:
    """The keyed hash of an address (HMAC-SHA256, hex): the same address always gives the same key."""
    return hmac.new(secret.encode(), address.strip().lower().encode(), hashlib.sha256).hexdigest()


def find(session: Session, secret: str, address: str) -> SuppressionInfo | None:
    """The entry for ``address``, if it is suppressed."""
    row = session.scalars(
        select(Suppression).where(Suppression.address_hash == address_hash(secret, address))
    ).first()
    return None if row is None else _info(row)


def refuse(session: Session, secret: str, address: str) -> None:
    """``ConflictError`` (exit 1, HTTP 409) with the reason and date if ``address`` is suppressed."""
    _refuse(find(session, secret, address), address)


def refuse_subscriber(session: Session, email: str) -> None:
    """As ``refuse``, for a stored subscriber's address (matched as stored: no secret needed)."""
    _refuse(of_emails(session, [email]).get(email), email)


def _refuse(entry: SuppressionInfo | None, address: str) -> None:
    if entry is not None:
        raise ConflictError(
            f"{entry.describe(address)}: it is suppressed and gets no email; only the person's own new "
            "confirmation (sign up again) or `digest suppression remove` lifts that"
        )


def suppress(
    session: Session, secret: str, address: str, reason: str, source: str, now: datetime
) -> SuppressionInfo:
    """Put ``address`` on the list (an address already there keeps its first reason and date)."""
    if reason not in REASONS:
        raise InvalidInputError(f"unknown reason {reason!r}: use {', '.join(ADDABLE)}")
    key = address_hash(secret, address)
    row = session.scalars(select(Suppression).where(Suppression.address_hash == key)).first()
    if row is None:
        email = None if reason == ERASED else address.strip().lower()
        row = Suppression(address_hash=key, email=email, reason=reason, source=source, created_at=now)
        session.add(row)
        session.flush()
    elif reason == ERASED:
        # After an erasure only the hash stays, whatever the entry said before.
        row.email, row.reason, row.source, row.created_at = None, ERASED, source, now
        session.flush()
    return _info(row)


def lift(session: Session, secret: str, address: str) -> SuppressionInfo | None:
    """Take ``address`` off the list; the entry it had, or None if it was not suppressed."""
    entry = find(session, secret, address)
    if entry is not None:
        session.execute(delete(Suppression).where(Suppression.id == entry.id))
        session.flush()
    return entry


def of_emails(session: Session, emails: list[str] | None = None) -> dict[str, SuppressionInfo]:
    """The entries of these addresses (or of every address kept), by address."""
    query = select(Suppression).where(Suppression.email.is_not(None))
    if emails is not None:
        query = query.where(Suppression.email.in_(emails))
    return {row.email: _info(row) for row in session.scalars(query) if row.email is not None}


def person_state() -> Any:
    """A person's state as a SQL expression over ``subscribers`` outer-joined to ``suppressions`` by
    address: ``suppressed`` if the address is on the list; ``unsubscribed`` for someone stored as active
    whose every subscription has ended, since that person gets nothing and must not be counted as active
    (issue 17); else as stored (``pending``, ``active``, ``bouncing``, ``unsubscribed``)."""
    receiving = exists().where(
        Subscription.subscriber_id == Subscriber.id, Subscription.state.in_(("active", "paused", "pending"))
    )
    return case(
        (Suppression.id.is_not(None), "suppressed"),
        (and_(Subscriber.state == "active", ~receiving), "unsubscribed"),
        else_=Subscriber.state,
    )


def person_states(session: Session, ids: list[int] | None = None) -> dict[int, str]:
    """Each subscriber's state by id, all or ``ids`` (issue 14; ``person_state``)."""
    query = select(Subscriber.id, person_state().label("state")).outerjoin(
        Suppression, Suppression.email == Subscriber.email
    )
    if ids is not None:
        query = query.where(Subscriber.id.in_(ids))
    return {row.id: row.state for row in session.execute(query)}


def count_by_state(session: Session) -> dict[str, int]:
    """How many people are in each state (``person_state``), for the admin's overview."""
    state = person_state()
    query = (
        select(state, func.count())
        .select_from(Subscriber)
        .outerjoin(Suppression, Suppression.email == Subscriber.email)
        .group_by(state)
    )
    return dict(session.execute(query).tuples().all())


def entries(session: Session) -> list[SuppressionInfo]:
    """Every entry, newest first."""
    rows = session.scalars(select(Suppression).order_by(Suppression.created_at.desc(), Suppression.id.desc()))
    return [_info(row) for row in rows]


def refusal(reason: str | None, since: datetime | None, **states: str) -> str | None:
    """Why a claimed email must not go out: its address is suppressed (``reason`` and ``since`` of the
    entry joined by address), else the first of ``states`` (name=state) that is not active; or None."""
    if reason is not None and since is not None:
        return f"address suppressed ({WORDS.get(reason, reason)} on {since:%Y-%m-%d})"
    return next((f"{name} is {state}" for name, state in states.items() if state != "active"), None)


def _info(row: Suppression) -> SuppressionInfo:
    return SuppressionInfo(row.id, row.address_hash, row.email, row.reason, row.source, row.created_at)
