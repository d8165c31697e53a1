"""The web app on a real uvicorn server on loopback, and the Maildir outbox it writes to."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import uvicorn
from fastapi import FastAPI

from digest.config import Settings
from digest.web.edge import UVICORN_OPTIONS
from tests.support import WAIT, free_port


@contextmanager
def serve(app: FastAPI) -> Iterator[httpx.Client]:
    """Run ``app`` on 127.0.0.1 and yield a client (with a cookie jar, like a browser) for it."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **UVICORN_OPTIONS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        # httpx's default 5 s timeout is not enough for a page on a loaded machine (issue 13).
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def outbox(settings: Settings) -> list[EmailMessage]:
    """Every message in the Maildir of ``settings.mail_url``, oldest first."""
    parts = urlsplit(settings.mail_url)
    folder = Path(unquote(parts.netloc + parts.path)) / "new"
    if not folder.is_dir():
        return []
    messages = []
    for path in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def text_of(message: EmailMessage) -> str:
    """The plain-text part."""
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def link(message: EmailMessage, kind: str) -> str:
    """The path of the first ``/kind/TOKEN`` link in a message's text."""
    found = re.search(rf"https?://[^/\s]+(/{kind}/[\w.\-]+)", text_of(message))
    assert found, f"no /{kind}/ link in the message"
    return found.group(1)


def csrf(page: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)
