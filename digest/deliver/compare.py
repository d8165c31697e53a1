"""Whether a delivery rendered again from its manifest is what was sent, for the admin's delivery page.

    render now -> put the send-time base URL back in place of today's -> hash as stored? identical
    -> else a line diff against the sent copy, where the mailer kept one (Maildir), both with today's base URL

Issue 17: moving the site (a new DIGEST_BASE_URL) changed every link and so the hash, and the page said
"Different from what was sent" with two hashes. The base URL at send time is stored with the manifest
(migration 0016); only the hash of what was sent is kept, so a line diff needs the mailer's own copy.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from digest.deliver.compose import body_hash
from digest.deliver.mail import MaildirMailer, Mailer
from digest.records import ComposedEmail

# Lines of context around each change: enough to place it, few enough to read a long HTML part.
CONTEXT = 2


@dataclass(frozen=True, slots=True)
class Sent:
    """The parts of the message as the mailer kept it."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class Comparison:
    """A re-rendering against what was sent."""

    identical: bool
    # The base URL at send time when it differs from today's (links then began with it), else None.
    moved_from: str | None
    stored_hash: str
    now_hash: str
    # Unified diff lines, sent copy first, with today's base URL in both; None without a sent copy.
    diff: tuple[str, ...] | None


def compare(
    now: ComposedEmail, stored_hash: str, sent_base: str | None, base: str, sent: Sent | None
) -> Comparison:
    """Compare ``now`` (rendered with today's ``base``) with the email that was sent with ``sent_base``."""
    moved = sent_base if sent_base and sent_base != base else None
    as_then = (
        body_hash(*(part.replace(base, moved) for part in (now.subject, now.text, now.html)))
        if moved
        else now.body_hash
    )
    if as_then == stored_hash:
        return Comparison(True, moved, stored_hash, now.body_hash, ())
    diff = None
    if sent is not None:
        old = (
            Sent(*(part.replace(moved, base) for part in (sent.subject, sent.text, sent.html)))
            if moved
            else sent
        )
        diff = tuple(
            _diff("subject", old.subject, now.subject)
            + _diff("text", old.text, now.text)
            + _diff("html", old.html, now.html)
        )
    return Comparison(False, moved, stored_hash, now.body_hash, diff)


def _diff(part: str, sent: str, now: str) -> list[str]:
    return list(
        difflib.unified_diff(
            sent.splitlines(), now.splitlines(), f"sent/{part}", f"now/{part}", n=CONTEXT, lineterm=""
        )
    )


def sent_copy(mailer: Mailer, message_id: str | None) -> Sent | None:
    """The message as the mailer stored it, if it keeps copies (a Maildir) and still has this one."""
    if not message_id or not isinstance(mailer, MaildirMailer):
        return None
    path = mailer.find(message_id)
    if path is None:
        return None
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    if not isinstance(message, EmailMessage):
        return None
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    return Sent(
        " ".join(str(message["Subject"] or "").split()),
        str(text.get_content()) if isinstance(text, EmailMessage) else "",
        str(html.get_content()) if isinstance(html, EmailMessage) else "",
    )
