"""The only module that speaks SMTP or writes the maildir: one ``Mailer`` protocol, two transports.

Both transports are idempotent per Message-ID where they can be: the maildir names each file after the
message's id, so a message handed over twice is stored once. SMTP cannot know what the server already
accepted; ``docs/design.md`` ("Exactly once") explains that window.

Each transport serialises a message once and, when a DKIM key is configured, signs exactly those bytes:
a signature over anything else breaks as soon as a generator refolds a header.
"""

from __future__ import annotations

import copy
import hashlib
import os
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import SMTPUTF8
from email.utils import getaddresses
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import dkim
import dkim.crypto

from digest.errors import ConfigError, MailError

SMTP_TIMEOUT = 30.0

# RFC 8058 section 4 requires List-Unsubscribe and List-Unsubscribe-Post to be covered by the signature.
# Listing a header the message lacks signs its absence, so nobody can add it on the way.
DKIM_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
)


class Mailer(Protocol):
    """Hands finished messages to a mail system."""

    def send(self, message: EmailMessage) -> str | None:
        """Deliver one message or raise ``MailError`` (``permanent`` for 5xx); the server's reply, if any."""

    def close(self) -> None:
        """Release connections."""


class DkimSigner:
    """Adds a DKIM-Signature (RFC 6376, rsa-sha256, relaxed/relaxed) to serialised messages."""

    def __init__(self, private_key: bytes, *, selector: str, domain: str) -> None:
        try:
            dkim.crypto.parse_pem_private_key(private_key)
        except (dkim.crypto.UnparsableKeyError, ValueError):
            raise ConfigError("DIGEST_DKIM_KEY: not an unencrypted PEM RSA private key") from None
        self.private_key = private_key
        self.selector, self.domain = selector, domain

    def sign(self, data: bytes, *, linesep: bytes = b"\r\n") -> bytes:
        """``data`` with a DKIM-Signature header in front, its lines ending in ``linesep``."""
        try:
            header = dkim.sign(
                data,
                self.selector.encode(),
                self.domain.encode(),
                self.private_key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[name.encode() for name in DKIM_HEADERS],
                linesep=linesep,
            )
        except dkim.DKIMException as exc:
            raise MailError(f"cannot DKIM-sign the message: {exc}", permanent=True) from None
        return bytes(header) + data


def signer_for(key_file: str, *, selector: str, domain: str) -> DkimSigner | None:
    """The signer of ``DIGEST_DKIM_KEY``, or None when it is empty (no signing)."""
    if not key_file:
        return None
    try:
        key = Path(key_file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"DIGEST_DKIM_KEY: cannot read {key_file}: {exc.strerror}") from None
    return DkimSigner(key, selector=selector, domain=domain)


class MaildirMailer:
    """Writes each message into a Maildir (``new/``) that any mail client can open."""

    def __init__(self, path: Path, *, signer: DkimSigner | None = None) -> None:
        self.path = path
        self.signer = signer
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)

    def send(self, message: EmailMessage) -> str | None:
        """Store the message once per Message-ID (tmp/ then rename, as the Maildir spec asks)."""
        name = self.file_name(message)
        if self.find(message["Message-ID"]) is not None:
            return None
        data = message.as_bytes()
        if self.signer is not None:
            # Maildir files keep Unix line ends, so the signature header is folded the same way.
            data = self.signer.sign(data, linesep=b"\n")
        temporary = self.path / "tmp" / f"{name}.{os.getpid()}"
        try:
            temporary.write_bytes(data)
            os.replace(temporary, self.path / "new" / name)
        except OSError as exc:
            raise MailError(f"cannot write to maildir {self.path}: {exc.strerror}") from None
        return None

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


class _Smtp(smtplib.SMTP):
    """Keeps the reply to DATA (``250 2.0.0 queued as ...``), which ``sendmail`` drops: the sent journal and
    the delivery's history record it (issue 18)."""

    last_reply = ""

    def data(self, msg: Any) -> tuple[int, bytes]:
        """DATA, remembering the reply."""
        code, reply = super().data(msg)
        self.last_reply = f"{code} {reply.decode(errors='replace')}"
        return code, reply


class _SmtpSsl(_Smtp, smtplib.SMTP_SSL):
    """Implicit TLS, keeping the reply the same way."""


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
        timeout: float = SMTP_TIMEOUT,
        ca_file: str = "",
        signer: DkimSigner | None = None,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        # Named, because smtplib otherwise calls getfqdn() per connection (FIELD-NOTES).
        self.local_hostname = local_hostname
        self.timeout = timeout
        # A CA file replaces the system's trust store (a private relay's own CA); verification stays on.
        self.ssl_context = ssl.create_default_context(cafile=ca_file or None)
        self.signer = signer
        self._connection: _Smtp | None = None

    def send(self, message: EmailMessage) -> str | None:
        """Send one message, reconnecting once if a kept connection went stale; the reply to DATA."""
        reused = self._connection is not None
        try:
            return self._send(message)
        except smtplib.SMTPServerDisconnected as exc:
            self._connection = None
            # Servers close connections left idle past their timeout (RFC 5321 4.5.3.2.7); that deserves
            # one new connection. A fresh connection that fails, or a server that stopped answering, does not.
            if not reused or _timed_out(exc):
                raise _mail_error(exc) from None
            return self._send_or_raise(message)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop_unless_reusable(exc)
            raise _mail_error(exc) from None

    def _send_or_raise(self, message: EmailMessage) -> str:
        try:
            return self._send(message)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop_unless_reusable(exc)
            raise _mail_error(exc) from None

    def _send(self, message: EmailMessage) -> str:
        connection = self._connection or self._connect()
        self._connection = connection
        sender, recipients, data, options = self._envelope(connection, message)
        if self.signer is not None:
            data = self.signer.sign(data)
        refused = connection.sendmail(sender, recipients, data, options)
        if refused:
            code, reply = next(iter(refused.values()))
            raise MailError(
                f"SMTP {code}: {reply.decode(errors='replace')}", permanent=code >= 500, code=code
            )
        return connection.last_reply

    @staticmethod
    def _envelope(connection: _Smtp, message: EmailMessage) -> tuple[str, list[str], bytes, list[str]]:
        """What ``smtplib.SMTP.send_message`` sends, as bytes we can sign before they go out."""
        connection.ehlo_or_helo_if_needed()
        sender = getaddresses([str(message["Sender"] or message["From"] or "")])[0][1]
        fields = [str(value) for name in ("To", "Cc", "Bcc") for value in message.get_all(name, [])]
        recipients = [address for _name, address in getaddresses(fields)]
        visible = copy.copy(message)
        del visible["Bcc"]
        del visible["Resent-Bcc"]
        options: list[str] = []
        policy = message.policy
        if not "".join([sender, *recipients]).isascii():
            # RFC 6531: an address outside ASCII needs SMTPUTF8, and then the headers travel as UTF-8.
            if not connection.has_extn("smtputf8"):
                raise MailError(
                    "the SMTP server cannot take non-ASCII addresses (no SMTPUTF8)", permanent=True
                )
            options, policy = ["SMTPUTF8", "BODY=8BITMIME"], SMTPUTF8
        with BytesIO() as buffer:
            BytesGenerator(buffer, policy=policy).flatten(visible, linesep="\r\n")
            return sender, recipients, buffer.getvalue(), options

    def _connect(self) -> _Smtp:
        connection: _Smtp
        if self.security == "ssl":
            connection = _SmtpSsl(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self.ssl_context,
            )
        else:
            connection = _Smtp(self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout)
        try:
            if self.security == "starttls":
                connection.starttls(context=self.ssl_context)
            if self.username:
                connection.login(self.username, self.password or "")
        except BaseException:
            # Not yet kept, so nothing else would close it.
            connection.close()
            raise
        return connection

    def _drop_unless_reusable(self, exc: BaseException) -> None:
        # smtplib sends RSET after a refused sender, recipients or body, so the connection is good for the
        # next message: a bounced address must not cost a new TLS handshake and login. 421 means the server
        # is closing (RFC 5321 4.2.2); after any other failure the connection's state is unknown.
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            reusable = all(code != 421 for code, _reply in exc.recipients.values())
        else:
            reusable = (
                isinstance(exc, smtplib.SMTPSenderRefused | smtplib.SMTPDataError) and exc.smtp_code != 421
            )
        if not reusable and self._connection is not None:
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
        # smtplib raises 535 from login(); saying so tells ops to check the credentials, not the address.
        during = " while logging in" if isinstance(exc, smtplib.SMTPAuthenticationError) else ""
        return MailError(
            f"SMTP {exc.smtp_code}{during}: {text}", permanent=exc.smtp_code >= 500, code=exc.smtp_code
        )
    if _timed_out(exc):
        return MailError("SMTP server timed out")
    if isinstance(exc, ssl.SSLCertVerificationError):
        # Retrying cannot fix a certificate we do not trust; DIGEST_SMTP_CA_FILE can.
        return MailError(f"SMTP server certificate not trusted: {exc.verify_message}", permanent=True)
    return MailError(f"SMTP failed: {exc}")


def _timed_out(exc: BaseException) -> bool:
    # smtplib turns a read timeout into SMTPServerDisconnected; the timeout survives as its context.
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)
