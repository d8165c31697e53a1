"""SMTP: one connection reused across messages; STARTTLS, implicit TLS and AUTH; the reply to DATA kept.

The envelope sender (MAIL FROM) is the message's ``Return-Path`` when it has one (a VERP address, issue 19),
which is taken off the bytes sent: RFC 5321 4.4 leaves that header to the final delivery.
"""

from __future__ import annotations

import copy
import smtplib
import ssl
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import SMTPUTF8
from email.utils import getaddresses
from io import BytesIO
from typing import Any

from digest.deliver.mail.envelope import return_path
from digest.deliver.mail.signing import DkimSigner
from digest.errors import MailError

SMTP_TIMEOUT = 30.0


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
        envelope_sender, message = return_path(message)
        sender = envelope_sender or getaddresses([str(message["Sender"] or message["From"] or "")])[0][1]
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
