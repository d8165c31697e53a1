"""The envelope sender a message carries to its transport (issue 19).

A digest's bounces must come back to a VERP address naming its delivery (``deliver.verp``), not to the From
address. The message carries that address in ``Return-Path`` from composition to the transport, which
makes it the SMTP ``MAIL FROM`` and takes it off the bytes sent (RFC 5321 4.4: the final delivery writes
``Return-Path``; a message that already has one should not be sent), or, as a delivery agent does, writes it
on top of the maildir file. Without one, the envelope sender is the From address, as before.
"""

from __future__ import annotations

import copy
from email.message import EmailMessage
from email.utils import parseaddr

RETURN_PATH = "Return-Path"


def return_path(message: EmailMessage) -> tuple[str | None, EmailMessage]:
    """The envelope sender ``message`` carries (None: none) and the message without it."""
    value = message[RETURN_PATH]
    if value is None:
        return None, message
    bare = copy.copy(message)
    del bare[RETURN_PATH]
    return parseaddr(str(value))[1] or None, bare
