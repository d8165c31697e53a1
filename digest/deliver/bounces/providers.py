"""Email providers' bounce webhooks (issue 19), each verified by the provider's documented scheme, then
turned into ``Report``s. A body whose signature does not verify raises ``SignatureError`` before a byte of it
is believed; a verified body that is malformed raises ``InvalidInputError``.

    Mailgun   HMAC-SHA256 of timestamp + token with the webhook signing key, the timestamp fresh
              (documentation.mailgun.com, "Securing webhooks")
    Postmark  HTTP basic auth with the credentials put in the webhook's URL (postmarkapp.com, "Webhooks
              overview": Postmark signs nothing, so the URL's credentials are the secret)
    SendGrid  ECDSA P-256 / SHA-256 over timestamp + raw body, the key from the "Signed Event Webhook"
              settings (docs.sendgrid.com, "Getting started with the event webhook security features")
    SES       through SNS: ``sns`` verifies the SNS message signature

Which delivery an event is about: a signed VERP address when the provider reports the envelope sender (SES
``mail.source``, Mailgun ``envelope.sender``), else our Message-ID, else the recipient's latest digest;
the provider's signature vouches for those.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from digest.deliver import verp
from digest.deliver.bounces.reports import COMPLAINT, HARD, SOFT, Report
from digest.errors import InvalidInputError, SignatureError

# A signed request older than this is refused: a captured one cannot be replayed later (Mailgun's advice).
FRESH = timedelta(minutes=15)


def mailgun(body: bytes, signing_key: str, secret: str, now: datetime) -> list[Report]:
    """The report of a Mailgun webhook (one event per call)."""
    payload = _json(body)
    signature = payload.get("signature")
    if not isinstance(signature, dict):
        raise SignatureError("no signature")
    timestamp, token = str(signature.get("timestamp", "")), str(signature.get("token", ""))
    expected = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature.get("signature", ""))):
        raise SignatureError("the signature does not match")
    _fresh(timestamp, now)
    event = payload.get("event-data")
    if not isinstance(event, dict):
        raise InvalidInputError("no event-data")
    kind = _mailgun_kind(event)
    if kind is None:
        return []
    status = _dict(event.get("delivery-status"))
    reason = " ".join(
        str(part)
        for part in (status.get("code", ""), status.get("description") or status.get("message", ""))
        if part
    )
    headers = _dict(_dict(event.get("message")).get("headers"))
    envelope = _dict(event.get("envelope"))
    return [
        _report(
            kind,
            f"mailgun {event.get('event')}: {reason or event.get('reason', '')}".strip(),
            "webhook:mailgun",
            sender=str(envelope.get("sender", "")),
            message_id=str(headers.get("message-id", "")),
            recipient=str(event.get("recipient", "")),
            secret=secret,
        )
    ]


def _mailgun_kind(event: dict[str, Any]) -> str | None:
    if event.get("event") == "complained":
        return COMPLAINT
    if event.get("event") == "failed":
        return HARD if event.get("severity") == "permanent" else SOFT
    return None


def postmark(body: bytes, authorization: str | None, credentials: str, secret: str) -> list[Report]:
    """The report of a Postmark bounce or spam complaint webhook, its basic auth checked."""
    expected = "Basic " + base64.b64encode(credentials.encode()).decode()
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise SignatureError("wrong or missing basic auth credentials")
    payload = _json(body)
    record_type = payload.get("RecordType")
    if record_type == "SpamComplaint":
        kind: str | None = COMPLAINT
    elif record_type == "Bounce":
        # HardBounce and BadEmailAddress are permanent (Postmark's bounce types); the rest may pass.
        kind = (
            HARD if payload.get("Type") in ("HardBounce", "BadEmailAddress", "ManuallyDeactivated") else SOFT
        )
    else:
        kind = None
    if kind is None:
        return []
    reason = f"postmark {payload.get('Type', record_type)}: {payload.get('Description', '')}".strip()
    details = str(payload.get("Details", "")).strip()
    return [
        _report(
            kind,
            f"{reason} ({details})" if details else reason,
            "webhook:postmark",
            recipient=str(payload.get("Email", "")),
            secret=secret,
        )
    ]


def sendgrid(
    body: bytes, signature: str | None, timestamp: str | None, public_key: str, secret: str, now: datetime
) -> list[Report]:
    """The reports of a SendGrid signed event webhook (a batch of events per call)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    if not signature or not timestamp:
        raise SignatureError("no signature or timestamp header")
    try:
        key = load_der_public_key(base64.b64decode(public_key))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("not an EC key")
        key.verify(base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not verify") from None
    _fresh(timestamp, now)
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        events = None
    if not isinstance(events, list):
        raise InvalidInputError("the body is not a JSON array of events")
    reports = []
    for event in events:
        kind = _sendgrid_kind(event) if isinstance(event, dict) else None
        if kind is None:
            continue
        reason = " ".join(str(event.get(name, "")) for name in ("status", "reason") if event.get(name))
        reports.append(
            _report(
                kind,
                f"sendgrid {event.get('event')}: {reason}".strip(),
                "webhook:sendgrid",
                message_id=str(event.get("smtp-id", "")),
                recipient=str(event.get("email", "")),
                secret=secret,
            )
        )
    return reports


def _sendgrid_kind(event: dict[str, Any]) -> str | None:
    name = event.get("event")
    if name == "spamreport":
        return COMPLAINT
    if name == "bounce":
        # "blocked" is a refusal for reputation or content, not an address that does not exist.
        return SOFT if event.get("type") == "blocked" else HARD
    if name == "deferred":
        return SOFT
    return None


def ses(message: dict[str, Any], secret: str) -> list[Report]:
    """The reports of an SES notification (the ``Message`` of an SNS notification ``sns`` verified)."""
    kind_of = message.get("notificationType") or message.get("eventType")
    mail = _dict(message.get("mail"))
    headers = _dict(mail.get("commonHeaders"))
    sender, message_id = str(mail.get("source", "")), str(headers.get("messageId", ""))
    if kind_of == "Bounce":
        bounce = _dict(message.get("bounce"))
        kind = HARD if bounce.get("bounceType") == "Permanent" else SOFT
        return [
            _report(
                kind,
                f"ses {bounce.get('bounceType')}/{bounce.get('bounceSubType')}: "
                f"{person.get('status', '')} {person.get('diagnosticCode', '')}".strip(),
                "webhook:ses",
                sender=sender,
                message_id=message_id,
                recipient=str(person.get("emailAddress", "")),
                secret=secret,
            )
            for person in _list(bounce.get("bouncedRecipients"))
            if isinstance(person, dict)
        ]
    if kind_of == "Complaint":
        complaint = _dict(message.get("complaint"))
        feedback = complaint.get("complaintFeedbackType") or "abuse"
        return [
            _report(
                COMPLAINT,
                f"complaint ({feedback}) via ses",
                "webhook:ses",
                sender=sender,
                message_id=message_id,
                recipient=str(person.get("emailAddress", "")),
                secret=secret,
            )
            for person in _list(complaint.get("complainedRecipients"))
            if isinstance(person, dict)
        ]
    return []


def _report(
    kind: str,
    reason: str,
    source: str,
    *,
    secret: str,
    sender: str = "",
    message_id: str = "",
    recipient: str = "",
) -> Report:
    return Report(
        kind,
        " ".join(reason.split())[:1000],
        source,
        delivery_id=verp.delivery_of(sender, secret) if sender else None,
        message_id=message_id or None,
        recipient=recipient.strip().lower() or None,
        authenticated=True,
    )


def _dict(value: object) -> dict[str, Any]:
    # A verified body can still be malformed: a field of the wrong shape reads as absent, never a 500.
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidInputError("the body is not a JSON object")
    return payload


def _fresh(timestamp: str, now: datetime) -> None:
    try:
        moment = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        raise SignatureError("the timestamp is not a Unix time") from None
    if abs(now - moment) > FRESH:
        raise SignatureError("the timestamp is not fresh (a replayed request?)")
