"""HTTP clients for user-supplied URLs: every connection goes to an address checked just before it opens.

Checking a URL's host when it is registered is not enough: a name with a 0-second TTL can resolve to a
public address then and to 169.254.169.254 a second later (DNS rebinding), and httpx (like any client)
resolves again when it connects. Here the resolution that is checked is the one that is used: the
transport's network backend resolves the host itself, refuses the connection unless every address is
allowed (`endpoint_policy.EndpointGuard.addresses_for`), and connects to the checked address. TLS still
sends the host name (SNI) and verifies the certificate against it: httpcore takes both from the URL, not
from the address the socket was opened to. A kept-alive connection stays pinned to the address it was
opened to; each new connection is checked anew.

The same backend enforces a call's total deadline (`deadline(seconds)`): each socket operation may wait
at most until the deadline, so a provider that trickles a byte every few seconds cannot stretch a call
past it, however short its silences. The streaming front's client (`front/upstream_client.py`) applies
the same guard with asyncio.

`new_client(guard, ...)` is the one way to build such a client (provider calls, webhook deliveries).
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

from switchyard.caches import cached
from switchyard.endpoint_policy import EndpointGuard, EndpointPolicy, EndpointRefused
from switchyard.settings import get_settings

# The monotonic time by which the current call must be done (None: no deadline).
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "switchyard_http_deadline", default=None
)


class ConnectionRefusedByPolicy(httpcore.ConnectError):
    """httpx reports it as an httpx.ConnectError carrying the policy's reason."""


class DeadlineExceeded(httpcore.ReadTimeout):
    """The call's total deadline passed (httpx reports it as an httpx.ReadTimeout)."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Every connection made or used inside this block gives up when `seconds` have passed."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def deadline_passed() -> bool:
    until = _deadline.get()
    return until is not None and time.monotonic() >= until


def _bounded(timeout: float | None) -> float | None:
    """A socket operation's timeout, cut to what is left before the deadline."""
    until = _deadline.get()
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the call's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._inner.read(max_bytes, _bounded(timeout))
        except httpcore.ReadTimeout:
            if deadline_passed():
                raise DeadlineExceeded("the call's deadline passed") from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Resolves and checks the host itself, then connects to the checked address."""

    def __init__(self, guard: EndpointGuard):
        self._guard = guard
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._guard.addresses_for(host, port)
        except EndpointRefused as refused:
            raise ConnectionRefusedByPolicy(str(refused)) from None
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = self._sockets.connect_tcp(
                    str(address), port, _bounded(timeout), local_address, socket_options
                )
            except httpcore.ConnectError as error:
                failure = error  # try the host's next address, as socket.create_connection would
                continue
            return _DeadlineStream(stream)
        raise failure or ConnectionRefusedByPolicy(f"'{host}' has no address to connect to")

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise ConnectionRefusedByPolicy("unix sockets are not user-supplied URLs")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """httpx's own transport, its connection pool built on the pinned backend."""

    def __init__(
        self,
        guard: EndpointGuard,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
    ):
        limits = limits or httpx.Limits(max_connections=200, max_keepalive_connections=50)
        super().__init__(verify=verify, trust_env=False, limits=limits)
        # httpx builds a pool without a network backend of our choosing; this is that pool with one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            # httpx writes a request's headers and body separately; without TCP_NODELAY, Nagle holds the
            # body until the peer's delayed ACK (~40 ms on Linux) on a reused connection.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            network_backend=PinnedBackend(guard),
        )


def new_client(
    guard: EndpointGuard,
    *,
    timeout: httpx.Timeout | float,
    verify: ssl.SSLContext | bool = True,
    limits: httpx.Limits | None = None,
) -> httpx.Client:
    """A client for user-supplied URLs: pinned, checked connections; no redirects (a redirect could point
    anywhere) and no proxy or other settings from the environment."""
    transport = PinnedTransport(guard, verify=verify, limits=limits)
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)


@cached
def get_endpoint_guard() -> EndpointGuard:
    """The deployment's policy for user-supplied URLs, with the system's DNS."""
    settings = get_settings()
    return EndpointGuard(EndpointPolicy.of(settings.provider_endpoint_policy, settings.gateway_host_names))
