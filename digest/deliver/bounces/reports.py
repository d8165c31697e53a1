"""Reading bounce and complaint reports (issue 19) with the standard library's ``email`` package.

    multipart/report; report-type=delivery-status   RFC 3464 DSN: per recipient an Action and a Status
        Action failed, Status 5.x.x                 -> hard (the address does not exist or refuses us)
        Action delayed, or Status 4.x.x             -> soft (full mailbox, greylisting, a server down)
        delivered, relayed, expanded                -> nothing to do
    multipart/report; report-type=feedback-report   RFC 5965 ARF: the recipient pressed "this is spam"
                                                    -> complaint

Which delivery a report is about is read only from a signed VERP address (``deliver.verp``): the bounce
is addressed to it, and a returned original or an ARF report's copy of the message carries it in its
``Return-Path``. Nothing else in a report is trusted: anyone can mail the bounce mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from email.parser import BytesHeaderParser

from digest.deliver import verp

HARD, SOFT, COMPLAINT = "hard", "soft", "complaint"
# Where the bounce of a VERP address names it: the envelope recipient, as the receiving MTA records it.
ADDRESSED = ("Delivered-To", "X-Original-To", "Envelope-To", "To")


@dataclass(frozen=True, slots=True)
class Report:
    """One bounce or complaint, read from a report or a provider's webhook.

    ``delivery_id`` comes from a signed VERP address; ``message_id`` (a webhook's copy of our Message-ID) and
    ``recipient`` are used only when ``authenticated``. ``reason`` is what the delivery's history shows.
    """

    kind: str
    reason: str
    source: str
    delivery_id: int | None = None
    message_id: str | None = None
    recipient: str | None = None
    # A provider's verified webhook vouches for ``message_id`` and ``recipient``; a mailbox report does not.
    authenticated: bool = False


def read_report(raw: bytes, secret: str, source: str) -> Report | None:
    """The report in a message of the bounce mailbox, or None if it is neither a DSN nor an ARF report
    with a failure in it (an out-of-office reply, a "delivered" notice, spam)."""
    message = message_from_bytes(raw, policy=policy.compat32)
    if message.get_content_type() != "multipart/report":
        return None
    report_type = str(message.get_param("report-type", "", header="content-type")).lower()
    parts = list(message.walk())
    if report_type == "delivery-status":
        found = _delivery_status(parts)
    elif report_type == "feedback-report":
        found = _feedback(parts)
    else:
        return None
    if found is None:
        return None
    kind, reason, recipient = found
    return Report(kind, reason, source, delivery_id=_verp(message, raw, secret), recipient=recipient)


def _delivery_status(parts: list[Message]) -> tuple[str, str, str | None] | None:
    """The worst outcome among the recipients of an RFC 3464 report (section 2.3): hard before soft."""
    status_parts = [part for part in parts if part.get_content_type() == "message/delivery-status"]
    outcomes: list[tuple[str, str, str | None]] = []
    for part in status_parts:
        payload = part.get_payload()
        # The first block is per message, the rest per recipient (RFC 3464 2.1).
        blocks = (
            [block for block in payload[1:] if isinstance(block, Message)]
            if isinstance(payload, list)
            else []
        )
        outcomes.extend(outcome for block in blocks if (outcome := _recipient_outcome(block)) is not None)
    outcomes.sort(key=lambda outcome: outcome[0] != HARD)
    return outcomes[0] if outcomes else None


def _recipient_outcome(block: Message) -> tuple[str, str, str | None] | None:
    action = str(block.get("Action", "")).strip().lower()
    status = str(block.get("Status", "")).strip()
    diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
    recipient = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
    if action == "delayed" or (action == "failed" and status.startswith("4.")):
        kind = SOFT
    elif action == "failed":
        # A failure without a 4.x.x status is permanent (RFC 3464 2.3.3: "failed" is final).
        kind = HARD
    else:
        return None
    reason = f"{action} {status}".strip() + (f": {diagnostic}" if diagnostic else "")
    return kind, reason, recipient


def _feedback(parts: list[Message]) -> tuple[str, str, str | None] | None:
    """An RFC 5965 feedback report: its Feedback-Type and the recipient who complained."""
    for part in parts:
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = _fields(part)
        feedback = str(fields.get("Feedback-Type", "abuse")).strip().lower() or "abuse"
        recipient = _address(fields.get("Original-Rcpt-To"))
        return COMPLAINT, f"complaint ({feedback}) via a feedback report", recipient
    return None


def _fields(part: Message) -> Message:
    """The fields of a report part, whether the parser split them into blocks or left them as text."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    data = part.get_payload(decode=True)
    return BytesHeaderParser().parsebytes(data if isinstance(data, bytes) else b"")


def _address(field: object) -> str | None:
    """The address of ``rfc822; user@example.org`` (RFC 3464 2.3.2), lower-cased."""
    if field is None:
        return None
    address = str(field).rpartition(";")[2].strip().strip("<>").lower()
    return address or None


def _verp(message: Message, raw: bytes, secret: str) -> int | None:
    """The delivery named by a signed VERP address: where the report was addressed, else anywhere in it
    (the returned message's headers)."""
    for name in ADDRESSED:
        for value in message.get_all(name, []):
            if (delivery_id := verp.find_in(str(value), secret)) is not None:
                return delivery_id
    return verp.find_in(raw.decode("latin-1"), secret)
