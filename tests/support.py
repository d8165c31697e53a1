"""Real services on loopback for tests: a scriptable feed server and an SMTP sink."""

from __future__ import annotations

import asyncio
import email
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from digest.config import settings_env

if TYPE_CHECKING:
    from digest.runtime import Runtime

# How often a test server's loop looks for shutdown(): socketserver's default of 0.5 s made stopping each
# server cost a quarter of a second on average, in hundreds of tests.
SHUTDOWN_POLL = 0.01


def rss(*items: tuple[str, str, str], published: str | None = "Mon, 16 Nov 2026 08:00:00 GMT") -> bytes:
    """An RSS 2.0 document of (guid, title, description) items, written for the test at hand."""
    date = f"<pubDate>{published}</pubDate>" if published else ""
    entries = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>https://example.com/{guid}</link>"
        f"<description>{body}</description>{date}</item>"
        for guid, title, body in items
    )
    channel = f"<channel><title>Test</title>{entries}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


@dataclass
class Route:
    """What the feed server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None


@dataclass
class FeedServer:
    """A loopback HTTP server whose routes tests change between requests; it records every request."""

    base_url: str
    routes: dict[str, Route]
    requests: list[tuple[str, dict[str, str]]]

    def url(self, path: str) -> str:
        """Absolute URL of ``path``."""
        return self.base_url + path


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive responses otherwise wait for Nagle (FIELD-NOTES).
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            headers = {key.lower(): value for key, value in self.headers.items()}
            server.requests.append((self.path, headers))
            route = server.routes.get(self.path)
            if route is None:
                self._answer(404, {}, b"not found")
                return
            if route.etag and headers.get("if-none-match") == route.etag:
                self._answer(304, {"ETag": route.etag}, b"")
                return
            extra = dict(route.headers)
            if route.etag:
                extra["ETag"] = route.etag
            self._answer(route.status, extra, route.body)

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def feed_server() -> Iterator[FeedServer]:
    """Start a feed server on 127.0.0.1 and stop it afterwards."""
    state = FeedServer("", {}, [])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(SHUTDOWN_POLL,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class SmtpSink:
    """Messages an aiosmtpd server on loopback accepted, and how it should answer."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    # Called with each recipient; returns an SMTP reply such as "550 no such user", or None to accept.
    refuse: Callable[[str], str | None] = lambda _rcpt: None
    scheme: str = "smtp"
    # The bytes of each accepted message as they arrived, for checks a parsed message cannot make (DKIM).
    raw: list[bytes] = field(default_factory=list)
    # The envelope sender (MAIL FROM) of each accepted message: a digest's VERP return path (issue 19).
    senders: list[str] = field(default_factory=list)
    # One server-side protocol object per connection that said EHLO or HELO; ``ehlos`` counts greetings.
    connections: list[SMTP] = field(default_factory=list)
    ehlos: int = 0
    # (mechanism, login) of each successful AUTH.
    logins: list[tuple[str, str]] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    # While ``hold`` is set to an unset event, a message that reaches DATA waits for it (``held`` is set
    # meanwhile) before the sink answers: a client killed in that time had nothing accepted.
    hold: threading.Event | None = None
    held: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        """The DIGEST_MAIL_URL of this sink."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def saw_a_client_go(self) -> bool:
        """Whether a client connection has been closed (or is closing), as after its client was killed."""
        return any(server.transport is None or server.transport.is_closing() for server in self.connections)

    def drop_connections(self) -> None:
        """Close every open client connection from the server side, as an idle timeout would."""
        assert self.loop is not None

        async def close_all() -> None:
            for server in self.connections:
                if server.transport is not None:
                    server.transport.close()

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=5)


class _SinkHandler:
    def __init__(self, sink: SmtpSink, accounts: dict[str, str]) -> None:
        self.sink = sink
        self.accounts = accounts

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        # The five-argument hook takes over recording the client's name from aiosmtpd.
        session.host_name = hostname
        self.sink.ehlos += 1
        if not any(seen is server for seen in self.sink.connections):
            self.sink.connections.append(server)
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.sink.refuse(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        hold = self.sink.hold
        if hold is not None:
            self.sink.held.set()
            await asyncio.to_thread(hold.wait, 30)
            if server.transport is None or server.transport.is_closing():
                return "451 the client went away"
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.sink.raw.append(content)
        self.sink.senders.append(envelope.mail_from or "")
        self.sink.messages.append(message)
        return "250 Message accepted"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if self.accounts.get(login) != password:
            return AuthResult(success=False, handled=False)
        self.sink.logins.append((mechanism, login))
        return AuthResult(success=True)


# How long a wait for something a test set going may take on a loaded machine before the test fails.
WAIT = 60.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_sink(
    *,
    tls: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
    accounts: dict[str, str] | None = None,
    mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN"),
) -> Iterator[SmtpSink]:
    """An aiosmtpd server on 127.0.0.1 collecting messages.

    ``tls`` (a server context) offers STARTTLS, or with ``implicit_tls`` speaks TLS from the first byte
    (smtps). ``accounts`` (login → password) makes AUTH required, offered only over TLS and only with
    ``mechanisms``.
    """
    scheme = "smtps" if tls and implicit_tls else "smtp+starttls" if tls else "smtp"
    sink = SmtpSink("127.0.0.1", free_port(), scheme=scheme)
    handler = _SinkHandler(sink, accounts or {})
    options: dict[str, Any] = {}
    if tls and not implicit_tls:
        options["tls_context"] = tls
    if accounts:
        excluded = [name for name in ("LOGIN", "PLAIN") if name not in mechanisms]
        options.update(
            authenticator=handler.authenticate, auth_required=True, auth_exclude_mechanism=excluded
        )
    # server_hostname avoids a getfqdn() DNS lookup per connection (FIELD-NOTES).
    controller = Controller(
        handler,
        hostname=sink.host,
        port=sink.port,
        server_hostname="localhost",
        ssl_context=tls if implicit_tls else None,
        **options,
    )
    controller.start()
    sink.loop = controller.loop
    try:
        yield sink
    finally:
        controller.stop()


# Servers that misbehave on purpose, for test_fetch: each GET is answered by a function of the test's.
Responder = Callable[[BaseHTTPRequestHandler, "ScriptedServer"], None]


@dataclass
class ScriptedServer:
    """A loopback HTTP server answering every GET with one function; it counts requests in flight per host.

    Responders that wait must wait on ``stopping`` so the server can stop; it joins every handler thread.
    """

    port: int
    stopping: threading.Event = field(default_factory=threading.Event)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    peak_total: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """Absolute URL of ``path``, reached through ``host`` (127.0.0.1 or localhost)."""
        return f"http://{host}:{self.port}{path}"

    def enter(self, host: str) -> None:
        """Count a request to ``host`` in flight."""
        with self.lock:
            self.in_flight[host] = self.in_flight.get(host, 0) + 1
            self.peak[host] = max(self.peak.get(host, 0), self.in_flight[host])
            self.peak_total = max(self.peak_total, sum(self.in_flight.values()))

    def leave(self, host: str) -> None:
        """Count a request to ``host`` done."""
        with self.lock:
            self.in_flight[host] -= 1


def write_chunked(handler: BaseHTTPRequestHandler, chunks: Iterator[bytes] | list[bytes]) -> None:
    """Send ``chunks`` with Transfer-Encoding: chunked (no Content-Length); headers must be open."""
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for chunk in chunks:
        if chunk:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()
    handler.wfile.write(b"0\r\n\r\n")


def _scripted_handler(server: ScriptedServer, respond: Responder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"
        # An idle keep-alive connection left open by a client ends after this, so stopping never hangs.
        timeout = 10

        def do_GET(self) -> None:
            headers = {key.lower(): value for key, value in self.headers.items()}
            host = headers.get("host", "").rsplit(":", 1)[0]
            server.requests.append((self.path, headers))
            server.enter(host)
            try:
                respond(self, server)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                server.leave(host)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def scripted_server(respond: Responder) -> Iterator[ScriptedServer]:
    """Start a scripted server on 127.0.0.1 (reachable as localhost too) and stop it afterwards."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = ScriptedServer(port=int(httpd.server_address[1]))
    # Joined on server_close, so no handler thread outlives the test.
    httpd.daemon_threads = False
    httpd.RequestHandlerClass = _scripted_handler(state, respond)
    thread = threading.Thread(target=httpd.serve_forever, args=(SHUTDOWN_POLL,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def digest_child(rt: Runtime, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``digest ARGS`` in a child process on the test's settings, for its real exit code and output; 200
    columns wide unless ``COLUMNS`` is given, so no table folds."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", *args],
        env=base | settings_env(rt.settings) | {"COLUMNS": "200"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def digest_here(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``digest ARGS`` run in this process as ``python -m digest.cli`` runs it (``digest.cli.main``, with its
    one-line errors and exit codes), its output captured, with no DIGEST_ variable but ``env``'s.

    A child process pays about a second of CPU to import the command (issue 13: the suite is CPU-bound);
    tests of a process's own behaviour (start-up, signals, servers) use ``digest_child``. An exception the
    command lets out is printed as a child would print it, so "no traceback" assertions hold here too."""
    from click.testing import CliRunner

    from digest.cli import common, main

    scrubbed: dict[str, str | None] = {name: None for name in os.environ if name.startswith("DIGEST_")}
    wanted = {"COLUMNS": "200"} | dict(env)
    # The command's consoles were made, and sized, when this process imported it (xdist's workers say
    # COLUMNS=80): size them as a new process would be.
    common.out.width = common.err.width = int(wanted["COLUMNS"])
    with CliRunner().isolation(env=scrubbed | wanted) as (out, err, _):
        code = _run_main(main, args)
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return subprocess.CompletedProcess(["digest", *args], code, stdout, stderr)


def _run_main(main: Callable[[list[str]], None], args: tuple[str, ...]) -> int:
    try:
        main(list(args))
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0
        print(exit.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def digest_in(rt: Runtime, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``digest ARGS`` on the test's settings, in this process (``digest_here``); 200 columns wide unless
    ``COLUMNS`` is given."""
    return digest_here(settings_env(rt.settings) | env, *args)
