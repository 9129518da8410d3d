"""The clients that call user-supplied URLs, against real sockets on loopback: they connect to the address
the policy checked (resolved again for every new connection), keep SNI and certificate checks on the host
name, stop a trickling answer at its deadline and an oversized one at its cap. A fake resolver stands in
for DNS; the names it answers for exist nowhere else."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import trustme
from switchyard.adapters import pinned_http, upstream
from switchyard.endpoint_policy import EndpointGuard, EndpointPolicy
from switchyard.errors import UpstreamError
from switchyard.front.upstream_client import TransportError, UpstreamPool

NAME = "provider.example.net"
OK_RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


class SequenceResolver:
    """Each call answers the next list of addresses (the last one repeats), and counts the calls."""

    def __init__(self, *answers: list[str]):
        self.answers = answers
        self.calls = 0

    def __call__(self, host: str, port: int) -> list:
        assert host == NAME, host
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [ipaddress.ip_address(a) for a in answer]


class Server:
    """A loopback TCP server (TLS optional); `respond(connection, request_head)` writes each answer."""

    def __init__(self, respond: Callable[[socket.socket, bytes], None], tls: ssl.SSLContext | None = None):
        self.requests: list[bytes] = []
        self.server_names: list[str | None] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                connection = self.request
                if tls is not None:
                    connection = tls.wrap_socket(connection, server_side=True)
                    outer.server_names.append(getattr(connection, "sni", None))
                buffer = b""
                while b"\r\n\r\n" not in buffer:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffer += data
                head = buffer.split(b"\r\n\r\n", 1)[0]
                outer.requests.append(head)
                respond(connection, head)

        if tls is not None:

            def remember_sni(sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
                sock.sni = name  # type: ignore[attr-defined]  # the test notes the SNI it got on the object

            tls.sni_callback = remember_sni
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda _request, _address: None  # refused handshakes are the point
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def answer_and_close(connection: socket.socket, _head: bytes) -> None:
    connection.sendall(OK_RESPONSE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))


def guard(resolver: SequenceResolver) -> EndpointGuard:
    return EndpointGuard(EndpointPolicy.of("loopback"), resolver)


@pytest.fixture(scope="module")
def certificates() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


# ------------------------------------------------------------------ httpx (dispatcher, sync API)


def test_httpx_connects_to_the_checked_address_and_resolves_again_for_each_connection():
    resolver = SequenceResolver(["127.0.0.1"], ["169.254.169.254"])
    with Server(answer_and_close) as server, pinned_http.new_client(guard(resolver), timeout=5) as client:
        # Given a name that first resolves to an allowed address
        first = client.get(f"http://{NAME}:{server.port}/v1/models")
        assert first.status_code == 200
        assert f"host: {NAME}:{server.port}".encode() in server.requests[0].lower()
        # When it rebinds to the metadata service, the next connection is checked and refused, unopened
        with pytest.raises(httpx.ConnectError, match="169.254.169.254 is a link-local address"):
            client.get(f"http://{NAME}:{server.port}/v1/models")
    assert resolver.calls == 2
    assert len(server.requests) == 1


def test_httpx_keeps_sni_and_certificate_checks_on_the_host_name(certificates):
    resolver = SequenceResolver(["127.0.0.1"])
    tls = client_tls(certificates)
    with Server(answer_and_close, tls=server_tls(certificates, NAME)) as server:
        with pinned_http.new_client(guard(resolver), timeout=5, verify=tls) as client:
            assert client.get(f"https://{NAME}:{server.port}/").status_code == 200
        assert server.server_names == [NAME]
    # A certificate for another name is refused, though the address is the one the name resolves to.
    with (
        Server(answer_and_close, tls=server_tls(certificates, "other.example.net")) as server,
        pinned_http.new_client(guard(resolver), timeout=5, verify=tls) as client,
        pytest.raises(httpx.ConnectError, match="certificate"),
    ):
        client.get(f"https://{NAME}:{server.port}/")


def trickle(connection: socket.socket, _head: bytes) -> None:
    connection.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    for _ in range(100):
        try:
            connection.sendall(b"1\r\n \r\n")
        except OSError:
            return
        time.sleep(0.1)


def test_a_trickling_answer_ends_at_the_deadline_not_at_the_read_timeout():
    with (
        Server(trickle) as server,
        pinned_http.new_client(guard(SequenceResolver(["127.0.0.1"])), timeout=30) as client,
    ):
        started = time.monotonic()
        with pytest.raises(UpstreamError, match="not complete within the 0.8 s deadline"):
            upstream.post(
                client, f"http://{NAME}:{server.port}/v1/chat/completions", b"{}", {}, deadline_seconds=0.8
            )
        assert time.monotonic() - started < 5  # each 0.1 s silence was well inside the 30 s read timeout


def big(declare_length: bool) -> Callable[[socket.socket, bytes], None]:
    def respond(connection: socket.socket, _head: bytes) -> None:
        size = 5_000_000
        length = f"Content-Length: {size}\r\n" if declare_length else "Transfer-Encoding: chunked\r\n"
        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n".encode())
        chunk = b"x" * 65536
        try:
            for _ in range(size // len(chunk)):
                connection.sendall(chunk if declare_length else b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the client stopped reading, as it should

    return respond


@pytest.mark.parametrize("declare_length", [True, False])
def test_an_oversized_answer_is_refused_while_it_is_read(declare_length):
    with (
        Server(big(declare_length)) as server,
        pinned_http.new_client(guard(SequenceResolver(["127.0.0.1"])), timeout=10) as client,
        pytest.raises(upstream.AnswerTooLarge, match="larger than the 100000-byte limit"),
    ):
        upstream.post(client, f"http://{NAME}:{server.port}/v1/x", b"{}", {}, max_bytes=100_000)


def test_every_provider_call_carries_the_loop_header_and_asks_for_an_uncompressed_answer():
    headers = upstream.provider_request_headers("secret-0123456789", "application/json")
    assert headers["cdn-loop"] == "switchyard"
    assert headers["accept-encoding"] == "identity"


# ------------------------------------------------------------------ h11 (the streaming front)


@contextmanager
def pool(resolver: SequenceResolver, tls: ssl.SSLContext | None = None) -> Iterator[UpstreamPool]:
    yield UpstreamPool(connect_timeout=5, read_timeout=5, guard=guard(resolver), tls=tls)


async def _post_and_read(upstream_pool: UpstreamPool, url: str) -> bytes:
    response = await upstream_pool.post(url, {"content-type": "application/json"}, b"{}")
    body = b"".join([chunk async for chunk in response.chunks()])
    await response.aclose()
    return body


def test_the_streaming_client_refuses_a_rebound_name_at_connect_time():
    resolver = SequenceResolver(["127.0.0.1"], ["10.0.0.1"])
    with Server(answer_and_close) as server, pool(resolver) as upstream_pool:
        url = f"http://{NAME}:{server.port}/v1/chat/completions"
        assert asyncio.run(_post_and_read(upstream_pool, url)) == b'{"ok":true}'
        with pytest.raises(TransportError, match="10.0.0.1 is a private address"):
            asyncio.run(_post_and_read(upstream_pool, url))
    assert len(server.requests) == 1


def test_the_streaming_client_keeps_sni_and_certificate_checks_on_the_host_name(certificates):
    resolver = SequenceResolver(["127.0.0.1"])
    with Server(answer_and_close, tls=server_tls(certificates, NAME)) as server:
        with pool(resolver, client_tls(certificates)) as upstream_pool:
            assert (
                asyncio.run(_post_and_read(upstream_pool, f"https://{NAME}:{server.port}/")) == b'{"ok":true}'
            )
        assert server.server_names == [NAME]
    with (
        Server(answer_and_close, tls=server_tls(certificates, "other.example.net")) as server,
        pool(resolver, client_tls(certificates)) as upstream_pool,
        pytest.raises(TransportError, match="certificate"),
    ):
        asyncio.run(_post_and_read(upstream_pool, f"https://{NAME}:{server.port}/"))
