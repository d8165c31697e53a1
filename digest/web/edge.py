"""What every request passes before a route: the client's address, a refusal of NUL bytes and of oversized
JSON bodies, and the security headers on every answer. Plain ASGI, so a body is counted as it streams in
and never read whole before it is refused (issue 14, findings 6, 7, 8, 11).

    ClientAddress    X-Forwarded-For believed only from DIGEST_TRUSTED_PROXIES (default: nobody)
    InputGuard       NUL in the path or query: 400; a JSON API body over 64 KiB: 413
    SecurityHeaders  CSP without inline script, no framing, nosniff; no-store and no-referrer on token pages
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.web.api_v1 import problems

API_PREFIX = "/api/"
PLATFORM_PREFIX = "/api/v1/"
# A signup or a change is a few hundred bytes; 64 KiB leaves room for any honest one (issue 14, finding 7).
MAX_API_BODY = 64 * 1024
# Pages whose URL is a signed token: the token must not leak in a Referer nor stay in a shared cache.
TOKEN_PAGES = ("/manage/", "/u/", "/confirm/", "/alerts/off/", "/api/manage/", "/admin", "/view/")
# 'self' only: no inline script or style (they live in /static), no other site's code; forms post here.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# The admin's delivery page shows the digest as sent in a sandboxed iframe (no script runs there); its
# srcdoc inherits this policy, and emails carry inline styles (css-inline), so that page allows them.
PREVIEW_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
PREVIEW_PAGES = "/admin/deliveries/"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# How uvicorn must run this app: it believes X-Forwarded-For from 127.0.0.1 by default, so a request from
# loopback could name any client and escape every per-address limit. ``ClientAddress`` decides instead,
# from DIGEST_TRUSTED_PROXIES (issue 14, finding 11).
UVICORN_OPTIONS: dict[str, Any] = {"proxy_headers": False, "forwarded_allow_ips": ""}


async def refuse(send: Send, scope: Scope, status: int, message: str) -> None:
    """Answer ``status`` with ``message``: an RFC 9457 problem under /api/v1/ (issue 19), JSON under /api/,
    plain text elsewhere."""
    path = str(scope.get("path", ""))
    if path.startswith(PLATFORM_PREFIX):
        body, kind = bytes(problems.problem(status, message).body), problems.MEDIA_TYPE.encode()
    elif path.startswith(API_PREFIX):
        body, kind = json.dumps({"detail": message}).encode(), b"application/json"
    else:
        body, kind = message.encode(), b"text/plain; charset=utf-8"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    if status == 413:
        # The rest of the body is not read: the connection cannot be reused (RFC 9110 §15.5.14).
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class InputGuard:
    """Refuse NUL bytes in the URL (PostgreSQL text cannot hold them) and JSON API bodies past the limit."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_API_BODY) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = bytes(scope.get("query_string", b"")).lower()
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            await refuse(send, scope, 400, "the address holds a NUL character, which no field accepts")
            return
        if not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and len(declared) < 20 and int(declared) > self.max_body:
            await refuse(send, scope, 413, f"the request body is over {self.max_body // 1024} KiB")
            return
        seen, started, refused = 0, False, False

        async def counted() -> Message:
            # Past the limit: answer 413 at once and tell the app the client left, so it stops reading
            # and whatever it answers is dropped (FastAPI would turn an exception here into a 400).
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body and not started:
                    refused = True
                    await refuse(send, scope, 413, f"the request body is over {self.max_body // 1024} KiB")
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, watched)


class ClientAddress:
    """Replace the peer address by the client's from ``X-Forwarded-For`` when the peer is a trusted proxy.

    Walks the header from the right (the address our proxy saw) past every trusted proxy: the first
    untrusted address is the client. Nothing to the left of it can be believed, since a client writes
    what it likes there. With no trusted proxy, the header is ignored and every limit counts the peer.
    """

    def __init__(self, app: ASGIApp, proxies: Sequence[Network]) -> None:
        self.app, self.proxies = app, tuple(proxies)

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and self.proxies and client and self.trusted(client[0]):
            forwarded = b",".join(value for name, value in scope["headers"] if name == b"x-forwarded-for")
            hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",") if hop.strip()]
            address = client[0]
            while hops and self.trusted(address):
                address = hops.pop()
            if _is_ip(address):
                scope = {**scope, "client": (address, 0)}
        await self.app(scope, receive, send)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class SecurityHeaders:
    """The headers every answer carries (issue 14, finding 8), set where a route has not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        policy = PREVIEW_CSP if path.startswith(PREVIEW_PAGES) else CSP
        extra: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
        ]
        if path.startswith(TOKEN_PAGES):
            extra += [(b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store")]
        else:
            extra.append((b"referrer-policy", b"same-origin"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers: list[Any] = list(message.get("headers", []))
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
