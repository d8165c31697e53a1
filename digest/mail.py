"""The only module that speaks SMTP or writes the maildir: one ``Mailer`` protocol, two transports.

Both transports are idempotent per Message-ID where they can be: the maildir names each file after the
message's id, so a message handed over twice is stored once. SMTP cannot know what the server already
accepted; ``docs/design.md`` ("Exactly once") explains that window.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import socket
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from digest.errors import ConfigError, MailError

SMTP_TIMEOUT = 30.0


class Mailer(Protocol):
    """Hands finished messages to a mail system."""

    def send(self, message: EmailMessage) -> None:
        """Deliver one message or raise ``MailError`` (``permanent`` for 5xx)."""

    def close(self) -> None:
        """Release connections."""


class MaildirMailer:
    """Writes each message into a Maildir (``new/``) that any mail client can open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)

    def send(self, message: EmailMessage) -> None:
        """Store the message once per Message-ID (tmp/ then rename, as the Maildir spec asks)."""
        name = self.file_name(message)
        if self.find(message["Message-ID"]) is not None:
            return
        temporary = self.path / "tmp" / f"{name}.{os.getpid()}"
        try:
            temporary.write_bytes(message.as_bytes())
            os.replace(temporary, self.path / "new" / name)
        except OSError as exc:
            raise MailError(f"cannot write to maildir {self.path}: {exc.strerror}") from None

    def find(self, message_id: str) -> Path | None:
        """The stored file of a message, in ``new/`` or (once a client has read it) ``cur/``."""
        name = self._name(message_id)
        if (self.path / "new" / name).exists():
            return self.path / "new" / name
        return next((self.path / "cur").glob(f"{name}:*"), None)

    def file_name(self, message: EmailMessage) -> str:
        """The file name a message gets: derived from its Message-ID."""
        return self._name(message["Message-ID"])

    @staticmethod
    def _name(message_id: str | None) -> str:
        if not message_id:
            raise MailError("a message without Message-ID cannot be stored idempotently", permanent=True)
        return hashlib.sha256(message_id.encode()).hexdigest()[:24] + ".digest"

    def close(self) -> None:
        """Nothing to release."""


class SmtpMailer:
    """SMTP with one connection reused across messages; STARTTLS, implicit TLS and AUTH."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str,
        username: str | None,
        password: str | None,
        local_hostname: str = "localhost",
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        # Named, because smtplib otherwise calls getfqdn() per connection (FIELD-NOTES).
        self.local_hostname = local_hostname
        self._connection: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        """Send one message, reconnecting once if a kept connection went stale."""
        try:
            self._send(message)
        except smtplib.SMTPServerDisconnected:
            self._connection = None
            self._send_or_raise(message)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise _mail_error(exc) from None

    def _send_or_raise(self, message: EmailMessage) -> None:
        try:
            self._send(message)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise _mail_error(exc) from None

    def _send(self, message: EmailMessage) -> None:
        connection = self._connection or self._connect()
        self._connection = connection
        refused = connection.send_message(message)
        if refused:
            code, reply = next(iter(refused.values()))
            raise MailError(
                f"SMTP {code}: {reply.decode(errors='replace')}", permanent=code >= 500, code=code
            )

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        connection: smtplib.SMTP
        if self.security == "ssl":
            connection = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=SMTP_TIMEOUT,
                context=context,
            )
        else:
            connection = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=SMTP_TIMEOUT
            )
            if self.security == "starttls":
                connection.starttls(context=context)
        if self.username:
            connection.login(self.username, self.password or "")
        return connection

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def close(self) -> None:
        """Say QUIT and close the kept connection."""
        if self._connection is None:
            return
        try:
            self._connection.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            self._connection = None


def mailer_for(url: str) -> Mailer:
    """The transport a ``DIGEST_MAIL_URL`` names."""
    parts = urlsplit(url)
    if parts.scheme == "maildir":
        return MaildirMailer(Path(unquote(parts.netloc + parts.path)))
    security = {"smtp": "none", "smtps": "ssl", "smtp+starttls": "starttls"}.get(parts.scheme)
    if security is None or not parts.hostname:
        raise ConfigError(
            f"DIGEST_MAIL_URL={url!r}: accepts maildir://PATH or smtp[s|+starttls]://[user:pass@]host:port"
        )
    default_port = {"none": 25, "ssl": 465, "starttls": 587}[security]
    return SmtpMailer(
        parts.hostname,
        parts.port or default_port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _mail_error(exc: BaseException) -> MailError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        return MailError(f"SMTP {code}: {reply.decode(errors='replace')}", permanent=code >= 500, code=code)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return MailError(f"SMTP {exc.smtp_code}: {text}", permanent=exc.smtp_code >= 500, code=exc.smtp_code)
    if isinstance(exc, socket.timeout | TimeoutError):
        return MailError("SMTP server timed out")
    return MailError(f"SMTP failed: {exc}")
