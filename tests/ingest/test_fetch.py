"""Fetching against real loopback servers only; the guard's refusals happen before any connection."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Any

import brotli
import httpcore
import httpx
import pytest

from digest.errors import FetchError
from digest.ingest.fetch import (
    FetchConfig,
    Fetcher,
    GuardedBackend,
    guard_transport,
    is_public_address,
    user_agent,
)
from tests.support import (
    FeedServer,
    Responder,
    Route,
    ScriptedServer,
    feed_server,
    free_port,
    rss,
    scripted_server,
    write_chunked,
)

FEED = rss(("1", "Rust 1.90", "released"))
# Loopback servers are the only servers here, so the guard is off except where it is under test. The
# timeouts are the defaults: a loaded machine can take over a second to connect even on loopback
# (FIELD-NOTES); the tests of the timeouts set their own.
LOOPBACK = FetchConfig(block_private=False)


@contextmanager
def open_fetcher(**changes: Any) -> Iterator[Fetcher]:
    config = FetchConfig(**{**_fields(LOOPBACK), **changes})
    with Fetcher(config) as fetcher:
        yield fetcher


def _fields(config: FetchConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__slots__}


def fetch_error(fetcher: Fetcher, url: str, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url, **kwargs)
    return caught.value


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with open_fetcher() as opened:
        yield opened


# -- answers ---------------------------------------------------------------------------------------------


def test_it_returns_the_body_validators_and_lower_case_headers(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/feed"] = Route(FEED, headers={"Cache-Control": "max-age=600"}, etag='"v1"')

    result = fetcher.fetch(server.url("/feed"))

    assert (result.status_code, result.content, result.etag, result.permanent_url) == (
        200,
        FEED,
        '"v1"',
        None,
    )
    assert ("cache-control", "max-age=600") in result.headers
    assert all(name == name.lower() for name, _ in result.headers)


def test_it_sends_its_user_agent_accept_and_accept_encoding(server: FeedServer) -> None:
    server.routes["/feed"] = Route(FEED)
    with open_fetcher(user_agent=user_agent("http://127.0.0.1:8000")) as fetcher:
        fetcher.fetch(server.url("/feed"))

    sent = server.requests[0][1]
    assert sent["user-agent"] == "digest/0.1.0 (+http://127.0.0.1:8000)"
    assert sent["accept-encoding"] == "gzip, deflate, br"
    assert "application/rss+xml" in sent["accept"]


def test_a_conditional_get_sends_both_validators_and_reads_304_as_not_modified(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.routes["/feed"] = Route(FEED, etag='"v1"')

    result = fetcher.fetch(server.url("/feed"), etag='"v1"', last_modified="Mon, 16 Nov 2026 08:00:00 GMT")

    assert result.not_modified and result.content == b""
    sent = server.requests[0][1]
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Mon, 16 Nov 2026 08:00:00 GMT"


def test_an_unconditional_get_sends_no_validators(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/feed"] = Route(FEED)

    fetcher.fetch(server.url("/feed"), etag=None, last_modified=None)

    assert "if-none-match" not in server.requests[0][1]
    assert "if-modified-since" not in server.requests[0][1]


def test_410_is_a_permanent_error(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/feed"] = Route(b"gone", status=410)

    error = fetch_error(fetcher, server.url("/feed"))

    assert (error.permanent, error.status, str(error)) == (True, 410, "HTTP 410 Gone: the feed was removed")


@pytest.mark.parametrize("status", [404, 403, 401, 400])
def test_other_4xx_are_permanent_for_the_attempt(server: FeedServer, fetcher: Fetcher, status: int) -> None:
    server.routes["/feed"] = Route(b"no", status=status)

    error = fetch_error(fetcher, server.url("/feed"))

    assert (error.permanent, error.status, error.retry_after) == (True, status, None)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_408_429_and_5xx_are_transient(server: FeedServer, fetcher: Fetcher, status: int) -> None:
    server.routes["/feed"] = Route(b"later", status=status)

    error = fetch_error(fetcher, server.url("/feed"))

    assert (error.permanent, error.status, error.retry_after) == (False, status, None)


def test_retry_after_in_seconds_is_read(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/feed"] = Route(b"slow down", status=429, headers={"Retry-After": "120"})

    assert fetch_error(fetcher, server.url("/feed")).retry_after == 120.0


def test_retry_after_as_an_http_date_becomes_seconds_from_now(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/feed"] = Route(
        b"down", status=503, headers={"Retry-After": formatdate(time.time() + 300, usegmt=True)}
    )

    retry_after = fetch_error(fetcher, server.url("/feed")).retry_after

    # HTTP-dates have one-second resolution.
    assert retry_after is not None and 297 <= retry_after <= 301


def test_a_retry_after_in_the_past_means_now(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/feed"] = Route(
        b"down", status=503, headers={"Retry-After": "Mon, 01 Jan 2001 00:00:00 GMT"}
    )

    assert fetch_error(fetcher, server.url("/feed")).retry_after == 0.0


def test_204_is_an_error(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/feed"] = Route(b"", status=204)

    error = fetch_error(fetcher, server.url("/feed"))

    assert (error.status, str(error)) == (204, "HTTP 204: the server sent no feed")


# -- redirects -------------------------------------------------------------------------------------------


def _moved(status: int, to: str) -> Route:
    return Route(b"", status=status, headers={"Location": to})


@pytest.mark.parametrize("status", [301, 308])
def test_a_chain_of_permanent_redirects_moves_the_feed(
    server: FeedServer, fetcher: Fetcher, status: int
) -> None:
    server.routes["/old"] = _moved(301, "/older")
    server.routes["/older"] = _moved(status, server.url("/feed"))
    server.routes["/feed"] = Route(FEED)

    result = fetcher.fetch(server.url("/old"))

    assert (result.url, result.permanent_url, result.content) == (
        server.url("/feed"),
        server.url("/feed"),
        FEED,
    )


@pytest.mark.parametrize("status", [302, 303, 307])
def test_a_temporary_redirect_anywhere_in_the_chain_keeps_the_feed_where_it_is(
    server: FeedServer, fetcher: Fetcher, status: int
) -> None:
    server.routes["/old"] = _moved(301, "/between")
    server.routes["/between"] = _moved(status, "/feed")
    server.routes["/feed"] = Route(FEED)

    result = fetcher.fetch(server.url("/old"))

    assert (result.url, result.permanent_url) == (server.url("/feed"), None)


def test_a_redirect_loop_is_cut_after_max_redirects(server: FeedServer) -> None:
    server.routes["/a"] = _moved(302, "/b")
    server.routes["/b"] = _moved(302, "/a")

    with open_fetcher(max_redirects=3) as fetcher:
        error = fetch_error(fetcher, server.url("/a"))

    assert str(error) == f"more than 3 redirects from {server.url('/a')}"
    assert len(server.requests) == 4


def test_a_redirect_to_another_scheme_is_refused(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/feed"] = _moved(301, "file:///etc/passwd")

    error = fetch_error(fetcher, server.url("/feed"))

    assert error.permanent and "only http:// and https://" in str(error)


# -- limits ----------------------------------------------------------------------------------------------


def test_a_body_over_the_cap_is_refused_by_its_content_length(server: FeedServer) -> None:
    server.routes["/feed"] = Route(b"x" * 5000)

    with open_fetcher(max_bytes=1000) as fetcher:
        error = fetch_error(fetcher, server.url("/feed"))

    assert str(error) == "feed is 5000 bytes, more than the 1000 allowed"


def _endless(handler: BaseHTTPRequestHandler, server: ScriptedServer) -> None:
    # Ends when the client hangs up (BrokenPipe) or after ~200 MB, so a broken cap fails by time, not memory.
    def chunks() -> Iterator[bytes]:
        for _ in range(3000):
            if server.stopping.is_set():
                return
            yield b"x" * 65536

    handler.send_response(200)
    write_chunked(handler, chunks())


def test_an_endless_body_without_content_length_is_cut_at_the_cap() -> None:
    with (
        scripted_server(_endless) as server,
        open_fetcher(max_bytes=1_000_000, total_timeout=10.0) as fetcher,
    ):
        started = time.monotonic()
        error = fetch_error(fetcher, server.url("/feed"))

    assert str(error) == "feed is larger than the 1000000 bytes allowed"
    assert time.monotonic() - started < 5


def _hang(handler: BaseHTTPRequestHandler, server: ScriptedServer) -> None:
    server.stopping.wait(30)


def test_a_server_that_never_answers_is_cut_by_the_total_timeout() -> None:
    with scripted_server(_hang) as server, open_fetcher(total_timeout=1.0) as fetcher:
        started = time.monotonic()
        error = fetch_error(fetcher, server.url("/feed"))
        elapsed = time.monotonic() - started

    assert str(error) == f"timed out after 1 s fetching {server.url('/feed')}"
    assert not error.permanent
    # Cut at the deadline, long before the server would answer (30 s), with room for a loaded machine.
    assert 0.9 < elapsed < 5


def _trickle(handler: BaseHTTPRequestHandler, server: ScriptedServer) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    for _ in range(100):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        if server.stopping.wait(0.1):
            return


def test_a_server_trickling_bytes_is_cut_by_the_total_timeout() -> None:
    # Each byte comes well within any read timeout; only the deadline over the whole response cuts it.
    with scripted_server(_trickle) as server, open_fetcher(total_timeout=1.0) as fetcher:
        started = time.monotonic()
        error = fetch_error(fetcher, server.url("/feed"))
        elapsed = time.monotonic() - started

    assert str(error) == f"timed out after 1 s fetching {server.url('/feed')}"
    # Cut at the deadline, long before the last byte would come (10 s), with room for a loaded machine.
    assert 0.9 < elapsed < 5


# -- encodings -------------------------------------------------------------------------------------------


def _gzip(handler: BaseHTTPRequestHandler, server: ScriptedServer) -> None:
    body = gzip.compress(FEED)
    handler.send_response(200)
    handler.send_header("Content-Encoding", "gzip")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _brotli_chunked(handler: BaseHTTPRequestHandler, server: ScriptedServer) -> None:
    body = brotli.compress(FEED)
    handler.send_response(200)
    handler.send_header("Content-Encoding", "br")
    write_chunked(handler, [body[:10], body[10:]])


@pytest.mark.parametrize("respond", [_gzip, _brotli_chunked], ids=["gzip", "brotli-chunked"])
def test_compressed_bodies_are_decoded(respond: Any) -> None:
    with scripted_server(respond) as server, open_fetcher() as fetcher:
        assert fetcher.fetch(server.url("/feed")).content == FEED


def test_a_compression_bomb_is_cut_at_the_cap_on_decoded_bytes() -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)

    def respond(handler: BaseHTTPRequestHandler, server: ScriptedServer) -> None:
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(bomb)))
        handler.end_headers()
        handler.wfile.write(bomb)

    with scripted_server(respond) as server, open_fetcher(max_bytes=1_000_000) as fetcher:
        error = fetch_error(fetcher, server.url("/feed"))

    assert str(error) == "feed is larger than the 1000000 bytes allowed"


# -- concurrency -----------------------------------------------------------------------------------------


def _held_until(in_flight: int) -> Responder:
    """A responder that holds each request 0.3 s, time enough for requests past a limit to come in, and
    further until ``in_flight`` requests were in the server at once (10 s at most), so the limit is reached
    however slowly a loaded machine sends them; then it answers the feed."""

    def respond(handler: BaseHTTPRequestHandler, server: ScriptedServer) -> None:
        server.stopping.wait(0.3)
        deadline = time.monotonic() + 10
        while server.peak_total < in_flight and time.monotonic() < deadline:
            if server.stopping.wait(0.01):
                break
        _feed(handler, server)

    return respond


def _feed(handler: BaseHTTPRequestHandler, server: ScriptedServer) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(FEED)))
    handler.end_headers()
    handler.wfile.write(FEED)


def _fetch_all(fetcher: Fetcher, urls: list[str]) -> list[bytes]:
    results: list[bytes] = []
    lock = threading.Lock()

    def one(url: str) -> None:
        content = fetcher.fetch(url).content
        with lock:
            results.append(content)

    threads = [threading.Thread(target=one, args=(url,)) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_six_fetches_to_one_host_never_have_more_than_two_in_flight() -> None:
    with scripted_server(_held_until(2)) as server, open_fetcher(per_host=2) as fetcher:
        results = _fetch_all(fetcher, [server.url(f"/feed{n}") for n in range(6)])

    assert results == [FEED] * 6
    assert server.peak == {"127.0.0.1": 2}


def test_two_hosts_are_limited_separately() -> None:
    with scripted_server(_held_until(4)) as server, open_fetcher(per_host=2) as fetcher:
        urls = [server.url(f"/feed{n}", host) for n in range(3) for host in ("127.0.0.1", "localhost")]
        results = _fetch_all(fetcher, urls)

    assert results == [FEED] * 6
    assert server.peak == {"127.0.0.1": 2, "localhost": 2}
    assert server.peak_total == 4


def test_many_threads_share_one_fetcher() -> None:
    def respond(handler: BaseHTTPRequestHandler, server: ScriptedServer) -> None:
        body = handler.path.encode()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    paths = [f"/feed/{thread}/{n}" for thread in range(16) for n in range(5)]
    with scripted_server(respond) as server, open_fetcher(per_host=4) as fetcher:
        results = _fetch_all(fetcher, [server.url(path) for path in paths])

    assert sorted(results) == sorted(path.encode() for path in paths)
    assert server.peak["127.0.0.1"] <= 4


def test_a_closed_fetcher_refuses_to_fetch_and_closes_twice_harmlessly() -> None:
    fetcher = Fetcher(LOOPBACK)
    fetcher.close()
    fetcher.close()

    with pytest.raises(RuntimeError, match="closed"):
        fetcher.fetch("http://127.0.0.1:1/feed")


# -- errors as sentences ---------------------------------------------------------------------------------


def test_a_refused_connection_reads_as_one_sentence(fetcher: Fetcher) -> None:
    error = fetch_error(fetcher, f"http://127.0.0.1:{free_port()}/feed")

    assert str(error) == "could not connect to 127.0.0.1: connection refused"
    assert not error.permanent


@pytest.mark.parametrize("block_private", [False, True], ids=["plain", "guarded"])
def test_an_unresolvable_host_reads_as_one_sentence(
    monkeypatch: pytest.MonkeyPatch, block_private: bool
) -> None:
    # No resolver is asked: the lookup fails here, as it would for a name that does not exist.
    def no_such_name(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    with open_fetcher(block_private=block_private) as fetcher:
        error = fetch_error(fetcher, "http://feeds.invalid/feed")

    assert str(error) == "cannot resolve feeds.invalid"


def test_a_url_that_is_not_http_is_refused(fetcher: Fetcher) -> None:
    error = fetch_error(fetcher, "ftp://127.0.0.1/feed")

    assert (
        error.permanent
        and str(error) == "cannot fetch ftp://127.0.0.1/feed: only http:// and https:// URLs are supported"
    )


# -- the private-address guard ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_guard_refuses_loopback_before_connecting(server: FeedServer, host: str) -> None:
    server.routes["/feed"] = Route(FEED)
    url = server.url("/feed").replace("127.0.0.1", host)

    with open_fetcher(block_private=True) as fetcher:
        error = fetch_error(fetcher, url)

    assert error.permanent
    assert str(error) == f"refused to connect to {host}: it resolves to the non-public address 127.0.0.1"
    assert server.requests == []


def test_the_guard_is_on_by_default() -> None:
    assert FetchConfig().block_private


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("127.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 - an address to judge, not one to bind
        ("224.0.0.1", False),
        ("100.64.0.1", False),
        ("2002:a00:1::", False),
        ("not an address", False),
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
    ],
)
def test_is_public_address(ip: str, public: bool) -> None:
    assert is_public_address(ip) is public


def test_the_guard_connects_to_the_address_it_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing is contacted: resolution is stubbed and the inner backend only records what it was asked.
    lookups: list[str] = []
    asked: list[str] = []

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    class Recorder(httpcore.NetworkBackend):
        def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
            asked.append(host)
            raise httpcore.ConnectError("recorded, not connected")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(httpcore.ConnectError):
        GuardedBackend(Recorder()).connect_tcp("feeds.example", 443)

    assert (lookups, asked) == (["feeds.example"], ["93.184.216.34"])


def test_the_guard_sits_on_httpx_connection_pools() -> None:
    # Fails if an httpx or httpcore upgrade moves the private attributes guard_transport relies on.
    transport = httpx.HTTPTransport()
    guard_transport(transport)

    assert isinstance(transport._pool._network_backend, GuardedBackend)


def test_the_guard_refuses_to_install_where_it_cannot_see_the_pool() -> None:
    with pytest.raises(RuntimeError, match="private-address guard"):
        guard_transport(httpx.HTTPTransport(proxy="http://127.0.0.1:1"))
