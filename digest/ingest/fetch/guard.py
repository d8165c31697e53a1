"""The private-address guard (SSRF): resolve once, refuse non-public addresses, connect to the checked IP."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

from digest.errors import FetchError


def is_public_address(ip: str) -> bool:
    """Whether ``ip`` is a globally routable unicast address (IPv6 forms embedding IPv4 are unwrapped)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        candidates += [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    # fec0::/10 (site-local, RFC 3879) is deprecated but still routed inside some networks, and Python
    # counts it as global: refused by name (issue 14, finding 12).
    return all(
        a.is_global
        and not (a.is_private or a.is_loopback or a.is_link_local or a.is_multicast)
        and not (a.is_reserved or a.is_unspecified)
        and not (isinstance(a, ipaddress.IPv6Address) and a.is_site_local)
        for a in candidates
    )


def _public_addresses(host: str, infos: Iterable[tuple[Any, ...]]) -> list[str]:
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    refused = [address for address in addresses if not is_public_address(address)]
    if refused or not addresses:
        where = f"the non-public address {refused[0]}" if refused else "no address"
        raise FetchError(f"refused to connect to {host}: it resolves to {where}", permanent=True)
    return addresses


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves once, refuses non-public addresses, then connects to the checked IP (no DNS rebinding)."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self.inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}") from exc
        error: Exception | None = None
        for ip in _public_addresses(host, infos):
            try:
                return self.inner.connect_tcp(ip, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed with the private-address guard")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def guard_transport(transport: httpx.HTTPTransport) -> None:
    """Put the private-address guard between ``transport``'s connection pool and the network."""
    wrap_backend(transport, GuardedBackend)


def wrap_backend(
    transport: httpx.HTTPTransport, wrap: Callable[[httpcore.NetworkBackend], httpcore.NetworkBackend]
) -> None:
    """Put ``wrap(backend)`` between ``transport``'s connection pool and the network.

    httpx 0.28 keeps its httpcore pool in the private ``transport._pool``, and the pool hands its
    ``_network_backend`` to every connection it opens (httpcore 1.0 ``connection_pool.py``). TLS still
    uses the URL's host for SNI and certificate checks (``connection.py`` ``start_tls(server_hostname=
    origin.host)``). Neither attribute is public: this raises, and test_fetch fails, if an upgrade moves them.
    """
    pool = getattr(transport, "_pool", None)
    inner = getattr(pool, "_network_backend", None)
    if type(pool) is httpcore.ConnectionPool and isinstance(inner, httpcore.NetworkBackend):
        pool._network_backend = wrap(inner)
    else:
        raise RuntimeError(
            "cannot install the private-address guard or the fetch deadline: "
            f"{type(transport).__name__}._pool is {type(pool).__name__} with backend {type(inner).__name__}; "
            "httpx or httpcore changed"
        )
