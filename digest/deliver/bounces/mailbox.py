"""The bounce mailbox (``DIGEST_BOUNCE_MAILBOX``, issue 19): a maildir, or an IMAP folder over TLS.

Each message is read, its report applied (``record``) and committed, and only then marked done: a maildir
file moves from ``new/`` to ``cur/`` with the Seen flag (the maildir convention), an IMAP message gets
``\\Seen``. A crash in between reads it again, and ``record`` ignores a report it has seen.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from digest.config import Mailbox
from digest.errors import MailError

# A bounce carries at most the returned message; anything larger is not a report we read.
MAX_MESSAGE = 10 * 1024 * 1024
IMAP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Letter:
    """One unread message of the mailbox and how to mark it done."""

    key: str
    raw: bytes
    done: Callable[[], None]


def letters(box: Mailbox) -> Iterator[Letter]:
    """The unread messages of ``box``, each marked done by its ``done``."""
    if box.maildir is not None:
        yield from _maildir(box.maildir)
    else:
        yield from _imap(box)


def _maildir(path: Path) -> Iterator[Letter]:
    new = path / "new"
    if not new.is_dir():
        raise MailError(f"the bounce mailbox {path} is not a maildir (no new/ folder)", permanent=True)
    (path / "cur").mkdir(exist_ok=True)
    for file in sorted(new.iterdir()):
        if file.name.startswith(".") or not file.is_file():
            continue
        try:
            with file.open("rb") as handle:
                raw = handle.read(MAX_MESSAGE)
        except OSError as exc:
            raise MailError(f"cannot read {file}: {exc.strerror}") from None
        yield Letter(file.name, raw, _seen(file, path / "cur"))


def _seen(file: Path, cur: Path) -> Callable[[], None]:
    def done() -> None:
        # "new/NAME" -> "cur/NAME:2,S": read, as a mail client marks it (the maildir specification).
        os.replace(file, cur / f"{file.name.partition(':')[0]}:2,S")

    return done


def _imap(box: Mailbox) -> Iterator[Letter]:
    """Unseen messages of an IMAP folder over TLS (RFC 9051), peeked so that only ``done`` marks them."""
    try:
        connection = imaplib.IMAP4_SSL(
            box.host, box.port, ssl_context=ssl.create_default_context(), timeout=IMAP_TIMEOUT
        )
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailError(f"cannot connect to the bounce mailbox {box.host}:{box.port}: {exc}") from None
    try:
        _check(connection.login(box.user, box.password), "log in")
        _check(connection.select(_quoted(box.folder)), f"open {box.folder}")
        status, found = connection.uid("SEARCH", "UNSEEN")
        _check((status, found), "search")
        first = found[0] if found else b""
        for uid in (first if isinstance(first, bytes) else b"").decode().split():
            status, data = connection.uid("FETCH", uid, "(BODY.PEEK[])")
            _check((status, data), "fetch")
            raw = next((part[1] for part in data if isinstance(part, tuple)), b"")
            yield Letter(uid, bytes(raw[:MAX_MESSAGE]), _flagger(connection, uid))
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailError(f"the bounce mailbox {box.host}: {exc}") from None
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            connection.logout()


def _flagger(connection: imaplib.IMAP4_SSL, uid: str) -> Callable[[], None]:
    def done() -> None:
        _check(connection.uid("STORE", uid, "+FLAGS", "(\\Seen)"), "mark a message seen")

    return done


def _check(answer: tuple[str, Sequence[object]], what: str) -> None:
    status, data = answer
    if status != "OK":
        raise MailError(f"the bounce mailbox refused to {what}: {data!r}", permanent=True)


def _quoted(folder: str) -> str:
    # A folder name with spaces must be a quoted string (RFC 9051 4.3).
    escaped = folder.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
