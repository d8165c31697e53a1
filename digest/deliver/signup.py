"""Signup orchestrator: a request, its confirmation email, and the confirmation (double opt-in).

    request: per-IP limit -> pending subscriber + subscription (commit) -> per-address limit
             -> compose the confirmation (a signed link carrying the request) -> send
    confirm: read the link (7 days) -> address suppressed? a link sent after the suppression lifts it
             (audited), an older one is refused -> already applied? say so : apply the request as confirmed

The caller answers a request the same way whether the address was new, known, confirmed or over its
limit, so the form cannot be used to learn who subscribes (no account enumeration). Nothing is delivered
before confirmation: the rows stay ``pending`` and an active subscription is never changed by a request
(``subscribers.subscribe(confirmed=False)``); the link carries the request and applies it when POSTed.

A suppressed address (``suppression``) still gets the confirmation email it asked for on the form, as in
listmonk and Mailchimp; its new confirmation is the only click that lifts the suppression. It gets no
manage-link email: that one can be asked for by anyone holding a forwarded digest.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.deliver import subscribers, suppression
from digest.deliver.cadence import Schedule
from digest.deliver.compose import Composer
from digest.deliver.mail import Mailer
from digest.errors import ConflictError, DigestError, InvalidInputError
from digest.ingest.skills import resolve_skill
from digest.models import Skill, Subscriber, SubscriptionSkill
from digest.ops import audit
from digest.ops.ratelimit import Limiter, retry_after
from digest.records import ComposedEmail, SubscriptionInfo
from digest.tokens import CONFIRM, MANAGE, make_token, read_token
from digest.vocabulary import WEEKDAYS

CONFIRM_DAYS = 7
ADDRESS_LIMIT, ADDRESS_WINDOW = 3, timedelta(days=1)
IP_LIMIT, IP_WINDOW = 30, timedelta(hours=1)


class TooManyRequestsError(DigestError):
    """One network asked too often; try again in ``retry_after`` seconds (HTTP 429 with Retry-After)."""

    permanent = False

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class SignupRequest:
    """What someone asked for: an address (normalised), skills (ids) and when to send."""

    email: str
    skill_ids: tuple[str, ...]
    schedule: Schedule
    # When the link was mailed (seconds since the epoch): only a link newer than a suppression lifts it.
    issued: int = 0


@dataclass(frozen=True, slots=True)
class SignupConfig:
    """What signup needs from the settings."""

    sender: str
    base_url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The outcome of a confirmation: the subscription, and whether the link had been used already."""

    info: SubscriptionInfo
    already: bool


def describe_schedule(schedule: Schedule) -> str:
    """When a digest is sent, in plain words."""
    at = f"{schedule.hour:02d}:00 ({schedule.timezone})"
    if schedule.cadence == "hourly":
        return "every hour"
    if schedule.cadence == "daily":
        return f"every day at {at}"
    return f"every {WEEKDAYS[schedule.weekday].capitalize()} at {at}"


def resolve_skills(session: Session, queries: Sequence[str]) -> tuple[list[Skill], list[str]]:
    """The skills ``queries`` name (ids, slugs, names, aliases), without repeats, and the unknown ones."""
    found: dict[str, Skill] = {}
    unknown: list[str] = []
    for query in queries:
        if not query.strip():
            continue
        try:
            skill = resolve_skill(session, query)
        except DigestError:
            unknown.append(query.strip())
            continue
        found.setdefault(skill.id, skill)
    return list(found.values()), unknown


class Signups:
    """Requests and confirmations, with the runtime's mailer, composer and limiter."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        limiter: Limiter,
        mailer: Mailer,
        composer: Composer,
        config: SignupConfig,
    ) -> None:
        self.sessions, self.limiter, self.mailer = sessions, limiter, mailer
        self.composer, self.config = composer, config
        # One SMTP connection is shared by the web server's worker threads.
        self._send_lock = threading.Lock()

    def check_ip(self, ip: str, now: datetime) -> None:
        """Count a request from ``ip``; ``TooManyRequestsError`` past the hourly limit."""
        if self.limiter.hit(f"ip:{ip}", IP_WINDOW, now) > IP_LIMIT:
            raise TooManyRequestsError(
                "too many signups from your network: please try again in an hour",
                retry_after=retry_after(IP_WINDOW, now),
            )

    def request(self, request: SignupRequest, now: datetime) -> bool:
        """Record a pending signup and mail its confirmation link; False if the address is over its limit.

        Callers must not show the result to the requester (see the module docstring).
        """
        with transaction(self.sessions) as session:
            subscribers.subscribe(
                session, request.email, request.skill_ids, request.schedule, now, confirmed=False
            )
            names = _names(session, request.skill_ids)
        if self._over_address_limit(request.email, now):
            return False
        token = make_token(self.config.secret, CONFIRM, _payload(request) | {"t": int(now.timestamp())})
        email = self.composer.confirmation(
            email=request.email,
            skills=names,
            cadence=request.schedule.cadence,
            when=describe_schedule(request.schedule),
            confirm_url=f"{self.config.base_url}/confirm/{token}",
            base_url=self.config.base_url,
            days=CONFIRM_DAYS,
        )
        message = confirmation_message(email, sender=self.config.sender, recipient=request.email, date=now)
        with self._send_lock:
            self.mailer.send(message)
        return True

    def mail_manage_link(self, subscriber_id: int, now: datetime) -> bool:
        """Mail the subscriber's manage link to the address on file; False if there is no such subscriber
        or the address is over its limit. Callers answer the same either way (as for ``request``)."""
        with transaction(self.sessions) as session:
            subscriber = session.get(Subscriber, subscriber_id)
            address = None if subscriber is None else subscriber.email
            if address is not None and suppression.find(session, self.config.secret, address) is not None:
                address = None
        if address is None or self._over_address_limit(address, now):
            return False
        token = make_token(self.config.secret, MANAGE, {"u": subscriber_id})
        email = self.composer.manage_link(
            email=address, manage_url=f"{self.config.base_url}/manage/{token}", base_url=self.config.base_url
        )
        message = confirmation_message(email, sender=self.config.sender, recipient=address, date=now)
        with self._send_lock:
            self.mailer.send(message)
        return True

    def _over_address_limit(self, address: str, now: datetime) -> bool:
        """Count a mail to ``address``; True past its daily limit (shared by signups and manage links)."""
        # The address is hashed so the counters (possibly in Redis) hold no addresses.
        address_key = "address:" + hashlib.sha256(address.encode()).hexdigest()[:32]
        return self.limiter.hit(address_key, ADDRESS_WINDOW, now) > ADDRESS_LIMIT

    def read(self, token: str) -> tuple[SignupRequest, list[str]]:
        """The request a confirmation link carries, and its skill names; ``InvalidInputError`` if bad."""
        request = _request(read_token(self.config.secret, CONFIRM, token, max_age=CONFIRM_DAYS * 86400))
        with transaction(self.sessions) as session:
            return request, _names(session, request.skill_ids)

    def applied(self, request: SignupRequest) -> SubscriptionInfo | None:
        """The subscription this request made if its link was used before, else None (issue 17: a reused
        link says so instead of offering the button again). A suppressed address is None: only a new
        confirmation lifts the suppression (see ``confirm``)."""
        with transaction(self.sessions) as session:
            if suppression.find(session, self.config.secret, request.email) is not None:
                return None
            return _already_applied(session, request)

    def confirm(self, token: str, now: datetime) -> Confirmed:
        """Apply the request of a confirmation link; a second POST changes nothing and says so."""
        request, _ = self.read(token)
        with transaction(self.sessions) as session:
            lifted = self._lift(session, request, now)
            done = None if lifted else _already_applied(session, request)
            if done is not None:
                return Confirmed(done, already=True)
            info = subscribers.subscribe(
                session, request.email, request.skill_ids, request.schedule, now, confirmed=True
            )
        return Confirmed(info, already=False)

    def _lift(self, session: Session, request: SignupRequest, now: datetime) -> bool:
        """Lift the address's suppression with this confirmation, if it is newer than the suppression
        (the person's own new double opt-in, issue 14); ``ConflictError`` for a link sent before it."""
        entry = suppression.find(session, self.config.secret, request.email)
        if entry is None:
            return False
        if request.issued < int(entry.since.timestamp()):
            raise ConflictError(
                "this link was sent before the address stopped getting mail: sign up again for a new link"
            )
        suppression.lift(session, self.config.secret, request.email)
        arguments = {"address_hash": entry.address_hash, "reason": entry.reason}
        audit.record(session, "subscriber", "suppression.lift", arguments, now, "their own new confirmation")
        return True


def confirmation_message(
    email: ComposedEmail, *, sender: str, recipient: str, date: datetime
) -> EmailMessage:
    """A transactional message: no List-Unsubscribe or Precedence (nothing is subscribed yet).

    Each send is a new message, so its Message-ID is random; header values go through ``email.message``,
    which refuses CR/LF.
    """
    domain = sender.rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = Address(display_name="Skill digest", addr_spec=sender)
    message["To"] = recipient
    message["Subject"] = email.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = make_msgid(idstring="confirm", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(email.text, cte="quoted-printable")
    message.add_alternative(email.html, subtype="html", cte="quoted-printable")
    return message


def _payload(request: SignupRequest) -> dict[str, Any]:
    s = request.schedule
    return {
        "e": request.email,
        "k": list(request.skill_ids),
        "c": s.cadence,
        "h": s.hour,
        "w": s.weekday,
        "z": s.timezone,
    }


def _request(payload: dict[str, Any]) -> SignupRequest:
    try:
        schedule = Schedule(str(payload["c"]), int(payload["h"]), int(payload["w"]), str(payload["z"]))
        skill_ids = tuple(str(k) for k in payload["k"])
        return SignupRequest(str(payload["e"]), skill_ids, schedule, int(payload.get("t", 0)))
    except (KeyError, TypeError, ValueError):
        raise InvalidInputError("this link is not valid") from None


def _names(session: Session, skill_ids: Sequence[str]) -> list[str]:
    return [resolve_skill(session, skill_id).name for skill_id in skill_ids]


def _already_applied(session: Session, request: SignupRequest) -> SubscriptionInfo | None:
    """The subscription if this request was confirmed before (live or since stopped), else None."""
    subscriber_id = subscribers.subscriber_id(session, request.email)
    subscription = (
        None if subscriber_id is None else subscribers.find(session, subscriber_id, request.schedule.cadence)
    )
    if subscription is None or subscription.state == "pending":
        return None
    have = set(
        session.scalars(
            select(SubscriptionSkill.skill_id).where(SubscriptionSkill.subscription_id == subscription.id)
        )
    )
    wanted = {resolve_skill(session, skill_id).id for skill_id in request.skill_ids}
    return subscribers.describe(session, subscription.id) if wanted <= have else None
