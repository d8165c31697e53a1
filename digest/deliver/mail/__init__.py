"""The only package that speaks SMTP or writes the maildir: one ``Mailer`` protocol, two transports.

    signing.py   DKIM over the exact bytes a transport hands over
    envelope.py  the envelope sender (a VERP return path, issue 19) a message carries to its transport
    maildir.py   a file per Message-ID (the embedded mode and tests)
    smtp.py      one reused connection, TLS, AUTH, the reply to DATA

Both transports are idempotent per Message-ID where they can be: the maildir names each file after the
message's id, so a message handed over twice is stored once. SMTP cannot know what the server already
accepted; ``docs/design.md`` ("Exactly once") explains that window.

Each transport serialises a message once and, when a DKIM key is configured, signs exactly those bytes:
a signature over anything else breaks as soon as a generator refolds a header.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from digest.deliver.mail.maildir import MaildirMailer
from digest.deliver.mail.signing import DKIM_HEADERS, DkimSigner, signer_for
from digest.deliver.mail.smtp import SMTP_TIMEOUT, SmtpMailer
from digest.errors import ConfigError

__all__ = [
    "DKIM_HEADERS",
    "SMTP_TIMEOUT",
    "DkimSigner",
    "MaildirMailer",
    "Mailer",
    "PacedMailer",
    "SmtpMailer",
    "mailer_for",
    "signer_for",
]


class Mailer(Protocol):
    """Hands finished messages to a mail system."""

    def send(self, message: EmailMessage) -> str | None:
        """Deliver one message or raise ``MailError`` (``permanent`` for 5xx); the server's reply, if any."""

    def close(self) -> None:
        """Release connections."""


class PacedMailer:
    """Hands messages to another mailer at most ``rate`` per second, counted in this process only.

    Providers cap messages per second per account; each worker process paces its own connection, so N
    processes together send up to N × ``rate``. A message waits for its slot here rather than being
    refused, and a refused attempt still uses its slot, because the server counted it.
    """

    def __init__(
        self,
        inner: Mailer,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.inner, self.interval = inner, 1.0 / rate
        self.clock, self.sleep = clock, sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def send(self, message: EmailMessage) -> str | None:
        """Wait for the next free slot, then send."""
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            # Slots are reserved under the lock and slept outside it, so threads queue in order.
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)
        return self.inner.send(message)

    def close(self) -> None:
        """Close the mailer it paces."""
        self.inner.close()


def mailer_for(
    url: str,
    *,
    signer: DkimSigner | None = None,
    ca_file: str = "",
    timeout: float = SMTP_TIMEOUT,
    send_rate: float = 0.0,
) -> Mailer:
    """The transport a ``DIGEST_MAIL_URL`` names, signing with ``signer`` and paced to ``send_rate``/s.

    Only SMTP is paced: the limit protects a relay, and a maildir has none to protect.
    """
    parts = urlsplit(url)
    if parts.scheme == "maildir":
        return MaildirMailer(Path(unquote(parts.netloc + parts.path)), signer=signer)
    security = {"smtp": "none", "smtps": "ssl", "smtp+starttls": "starttls"}.get(parts.scheme)
    if security is None or not parts.hostname:
        raise ConfigError(
            f"DIGEST_MAIL_URL={url!r}: accepts maildir://PATH or smtp[s|+starttls]://[user:pass@]host:port"
        )
    default_port = {"none": 25, "ssl": 465, "starttls": 587}[security]
    mailer = SmtpMailer(
        parts.hostname,
        parts.port or default_port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
        ca_file=ca_file,
        signer=signer,
    )
    return PacedMailer(mailer, send_rate) if send_rate > 0 else mailer
