"""The maildir transport: each message a file named after its Message-ID, so one handed over twice is stored
once. The envelope sender goes on top as ``Return-Path``, as a delivery agent writes it (RFC 5321 4.4)."""

from __future__ import annotations

import hashlib
import os
from email.message import EmailMessage
from pathlib import Path

from digest.deliver.mail.envelope import return_path
from digest.deliver.mail.signing import DkimSigner
from digest.errors import MailError


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
        sender, message = return_path(message)
        data = message.as_bytes()
        if self.signer is not None:
            # Maildir files keep Unix line ends, so the signature header is folded the same way.
            data = self.signer.sign(data, linesep=b"\n")
        if sender is not None:
            data = f"Return-Path: <{sender}>\n".encode() + data
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
