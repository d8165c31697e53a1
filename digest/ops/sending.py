"""Sending paused or not: ``digest sending pause|resume``, kept in the ``settings`` table and audited.

A dispatch that finds sending paused opens no windows; due digests wait, and the first dispatch after a
resume sends each subscriber one digest covering the pause (windows start where the last one ended).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from digest.models import Setting
from digest.ops import audit
from digest.ops.schedules import iso_utc

SENDING = "sending"


@dataclass(frozen=True, slots=True)
class SendingState:
    """Whether digests are being sent, since when, and whether the last request changed it."""

    paused: bool
    updated_at: datetime | None
    changed: bool = False

    def as_json(self) -> dict[str, Any]:
        """The shape scripts read."""
        return {
            "paused": self.paused,
            "updated_at": iso_utc(self.updated_at),
            "changed": self.changed,
        }


def state(session: Session) -> SendingState:
    """Whether sending is paused (``digest sending pause``), and since when."""
    row = session.get(Setting, SENDING)
    if row is None:
        return SendingState(paused=False, updated_at=None)
    return SendingState(paused=bool(row.value.get("paused")), updated_at=row.updated_at)


def paused(session: Session) -> bool:
    """True while ops have paused sending: a dispatch then opens no windows and due digests wait."""
    return state(session).paused


def set_paused(session: Session, *, paused: bool, actor: str, now: datetime) -> SendingState:
    """Pause or resume sending and audit it (``sending.pause`` or ``sending.resume``). Idempotent: asking
    for the state already in force changes nothing and says so (``changed`` is False), but is audited.

    Resuming needs no catching up here: every due subscription's next window starts where its last one
    ended, so the first dispatch after it sends each subscriber one digest covering the pause.
    """
    current = state(session)
    changed = current.paused != paused
    if changed:
        session.merge(Setting(key=SENDING, value={"paused": paused}, updated_at=now))
        session.flush()
    audit.record(
        session,
        actor,
        "sending.pause" if paused else "sending.resume",
        {},
        now,
        result="changed" if changed else "already " + ("paused" if paused else "sending"),
    )
    return SendingState(paused=paused, updated_at=now if changed else current.updated_at, changed=changed)
