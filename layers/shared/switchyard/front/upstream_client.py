"""A lean, pooled HTTP/1.1 client for relaying one request upstream and streaming its answer back.

Two relays use it: the gateway's streaming front (to the provider agent) and the provider agent (to its
model server). Why not httpx.AsyncClient: on the latency-critical streaming path it measured ~3 ms per
request of Python overhead on a 2-core box (time to first byte from a loopback SSE server: raw asyncio
0.7 ms, httpcore 1.6 ms, httpx 3.6 ms), which alone broke the gateway's 5 ms budget. This client does
only what a relay needs: one write per request, h11 for the protocol (framing, chunked bodies,
keep-alive rules), a keep-alive pool per origin, TLS, connect/read timeouts, and, per request, a total
deadline and a cap on the body's size (the gateway's front: a provider that trickles an event every few
seconds, or streams without end, must not hold a connection for ever). Both cost O(1) per read: the
deadline is folded into the read timeout that each read arms anyway, the cap is a counter.

Given an `EndpointGuard` (the gateway's front, whose upstreams are user-supplied provider URLs), it
connects, like the dispatcher's client (adapters/pinned_http.py), only to addresses the endpoint policy
allowed, resolved and checked when each connection opens, and keeps SNI and certificate checks on the
host name. Without one (`guard=None`: the agent, whose upstream is the model server its operator
configured, usually on loopback) it connects wherever the name resolves.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from urllib.parse import urlsplit

import h11

from switchyard.endpoint_policy import EndpointGuard, EndpointRefused, is_ip_literal

# Set by the client itself; a caller's value would contradict the framing h11 writes.
_HOP_BY_HOP = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"}
)
_READ_SIZE = 65536
# Methods whose request carries a body by definition: they always get a content-length, even of 0.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

Origin = tuple[str, str, int]  # scheme, host, port: the key of the keep-alive pool


class TransportError(Exception):
    """The provider could not be reached, timed out, or broke the protocol.

    A transport failure of this client only; the relay answers it as the domain's
    `switchyard.errors.UpstreamError` (502 upstream_error), which is what a client sees.
    """


class TransportTimeout(TransportError):
    pass


class TransportDeadline(TransportTimeout):
    """The response was not complete by the total deadline its request was sent with."""

    def __init__(self, deadline_seconds: float):
        super().__init__(f"the response was not complete within its {deadline_seconds:g} s deadline")
        self.deadline_seconds = deadline_seconds


class ResponseTooLarge(TransportError):
    """The response body outgrew the cap its request was sent with."""

    def __init__(self, max_bytes: int, how: str):
        super().__init__(f"the response is larger than the {max_bytes}-byte limit ({how})")
        self.max_bytes = max_bytes
        self.how = how


class _InvalidRequest(TransportError):
    """The request itself cannot be written (never retried: a fresh connection would not help)."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(our_role=h11.CLIENT)
        # The current request's total deadline (loop time) and its length in seconds, for the message.
        self.deadline: float | None = None
        self.deadline_seconds = 0.0

    def usable(self) -> bool:
        return (
            not self.writer.is_closing() and not self.reader.at_eof() and self.protocol.our_state is h11.IDLE
        )

    def close(self) -> None:
        self.writer.close()


class StreamedResponse:
    """Status and headers are read; `chunks()` streams the body; `aclose()` frees the connection."""

    def __init__(
        self,
        pool: UpstreamPool,
        origin: Origin,
        connection: _Connection,
        response: h11.Response,
        max_bytes: int | None = None,
        sent_at: float = 0.0,
    ):
        self._pool = pool
        # time.perf_counter() when the request's last byte went to the socket: what the server took from
        # there to the first byte of the body is the server's time, not this client's.
        self.sent_at = sent_at
        self._origin = origin
        self._connection: _Connection | None = connection  # None once closed
        self.status_code = response.status_code
        # As received (names lower-cased by h11), repeated headers included: what a relay passes on.
        self.raw_headers: list[tuple[bytes, bytes]] = [(name, value) for name, value in response.headers]
        self.headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in response.headers}
        self._done = False
        self._max_bytes = max_bytes

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives; ResponseTooLarge the moment it outgrows the request's `max_bytes`."""
        connection = self._connection
        if connection is None:
            raise TransportError("the response is closed")
        protocol = connection.protocol
        max_bytes = self._max_bytes if self._max_bytes is not None else sys.maxsize
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(max_bytes, f"it declared {int(declared)} bytes")
        received = 0
        while True:
            event = await self._pool._next_event(connection)
            if isinstance(event, h11.Data):
                received += len(event.data)
                if received > max_bytes:
                    raise ResponseTooLarge(max_bytes, "it kept coming")
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._done = True
                return
            elif isinstance(event, h11.ConnectionClosed):
                raise TransportError("connection closed before the response ended")
            elif protocol.their_state is h11.ERROR:  # pragma: no cover - h11 raises first
                raise TransportError("protocol error")

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if (
            self._done
            and connection.protocol.our_state is h11.DONE
            and connection.protocol.their_state is h11.DONE
        ):
            connection.protocol.start_next_cycle()
            connection.deadline = None
            self._pool._release(self._origin, connection)
        else:
            connection.close()  # a half-read response cannot be reused


class UpstreamPool:
    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        guard: EndpointGuard | None,
        max_idle_per_origin: int = 64,
        tls: ssl.SSLContext | None = None,
    ):
        self._guard = guard
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_idle = max_idle_per_origin
        self._idle: dict[Origin, list[_Connection]] = {}
        self._tls = tls

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        content: bytes,
        *,
        deadline_seconds: float | None = None,
        max_bytes: int | None = None,
    ) -> StreamedResponse:
        """Send a POST and read the response head; the body is left to `StreamedResponse.chunks`."""
        return await self.request(
            "POST", url, headers.items(), content, deadline_seconds=deadline_seconds, max_bytes=max_bytes
        )

    async def request(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        content: bytes = b"",
        *,
        deadline_seconds: float | None = None,
        max_bytes: int | None = None,
    ) -> StreamedResponse:
        """Send the request (a repeated header may appear more than once) and read the response head.

        With `deadline_seconds`, the whole exchange, head and body, must be over that long after this call
        (else TransportDeadline: every read waits at most until then, the read timeout bounds each silence);
        with `max_bytes`, the body may hold no more (else ResponseTooLarge). A response cut short by either
        is never put back in the pool: `aclose()` closes its connection."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"unsupported URL {url!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as error:  # a port out of range or not a number
            raise TransportError(f"unsupported URL {url!r}") from error
        origin = (parts.scheme, parts.hostname, port)
        host_header = parts.netloc.rpartition("@")[2]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request_headers = [("host", host_header)]
        if content or method in _BODY_METHODS:
            request_headers.append(("content-length", str(len(content))))
        request_headers += [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]

        deadline = None
        if deadline_seconds is not None:
            deadline = asyncio.get_running_loop().time() + deadline_seconds
        connection = self._take_idle(origin)
        reused = connection is not None
        while True:
            if connection is None:
                connection = await self._connect(origin)
            connection.deadline, connection.deadline_seconds = deadline, deadline_seconds or 0.0
            try:
                response, sent_at = await self._exchange(connection, method, target, request_headers, content)
                return StreamedResponse(self, origin, connection, response, max_bytes, sent_at)
            except (TransportError, OSError) as error:
                connection.close()
                # A kept-alive connection the server closed meanwhile fails before any response byte:
                # retry once on a fresh connection, as every HTTP client does.
                if reused and not isinstance(error, TransportTimeout | _InvalidRequest):
                    connection, reused = None, False
                    continue
                if isinstance(error, TransportError):
                    raise
                raise TransportError(str(error) or type(error).__name__) from error

    async def _exchange(
        self,
        connection: _Connection,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        content: bytes,
    ) -> tuple[h11.Response, float]:
        """The response head, and when the request was written (perf_counter)."""
        protocol = connection.protocol
        try:
            data = protocol.send(h11.Request(method=method, target=target, headers=headers))
        except h11.LocalProtocolError as error:  # e.g. a header value with a line break in it
            raise _InvalidRequest(f"cannot send this request: {error}") from error
        data += protocol.send(h11.Data(data=content)) if content else b""
        data += protocol.send(h11.EndOfMessage())
        connection.writer.write(data)  # one write: head and body leave in one segment
        sent_at = time.perf_counter()
        until, cut = self._read_until(connection)
        try:
            # Only a large body waits here, for a server that reads it slowly (or not at all).
            async with asyncio.timeout_at(until):
                await connection.writer.drain()
        except TimeoutError as error:
            if cut:
                raise TransportDeadline(connection.deadline_seconds) from error
            raise TransportTimeout(f"the upstream took no data for {self._read_timeout:g} s") from error
        while True:
            event = await self._next_event(connection)
            if isinstance(event, h11.Response):
                return event, sent_at
            if isinstance(event, h11.ConnectionClosed):
                raise TransportError("connection closed before a response")
            # h11.InformationalResponse (100 Continue and friends): keep reading

    async def _next_event(
        self, connection: _Connection
    ) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        # Never NEED_DATA in fact; the annotation keeps it because mypy cannot narrow the `is not` below.
        protocol = connection.protocol
        while True:
            try:
                event = protocol.next_event()
            except h11.RemoteProtocolError as error:
                raise TransportError(f"invalid HTTP from upstream: {error}") from error
            if event is not h11.NEED_DATA:
                return event
            until, cut = self._read_until(connection)
            try:
                async with asyncio.timeout_at(until):
                    data = await connection.reader.read(_READ_SIZE)
            except TimeoutError as error:
                if cut:
                    raise TransportDeadline(connection.deadline_seconds) from error
                raise TransportTimeout(f"no data for {self._read_timeout:g} s") from error
            protocol.receive_data(data)

    def _read_until(self, connection: _Connection) -> tuple[float, bool]:
        """When the next read gives up (loop time), and whether that is the request's total deadline
        rather than the read timeout. A deadline already past ends the exchange here: a read of data
        already buffered would return without ever waiting, so its timer would never fire."""
        now = asyncio.get_running_loop().time()
        until = now + self._read_timeout
        deadline = connection.deadline
        if deadline is None or deadline > until:
            return until, False
        if deadline <= now:
            raise TransportDeadline(connection.deadline_seconds)
        return deadline, True

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        tls = self._tls_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(self._connect_timeout):
                addresses = await self._addresses(host, port)
                failure: OSError | None = None
                for address in addresses:
                    try:
                        reader, writer = await asyncio.open_connection(
                            address,
                            port,
                            ssl=tls,
                            server_hostname=host if tls else None,  # SNI and the certificate: the name
                            limit=_READ_SIZE,
                        )
                    except OSError as error:
                        failure = error
                        continue
                    return _Connection(reader, writer)
                raise failure or OSError(f"'{host}' has no address")
        except EndpointRefused as refused:
            raise TransportError(str(refused)) from None
        except TimeoutError as error:
            raise TransportTimeout(f"connect timed out after {self._connect_timeout:g} s") from error
        except OSError as error:
            raise TransportError(f"connection failed ({error.strerror or error})") from error

    async def _addresses(self, host: str, port: int) -> list[str]:
        """Where a new connection to host:port may go: with a guard, the addresses it checked (a resolver
        call blocks: in a worker thread); without one, the name itself (asyncio resolves it)."""
        guard = self._guard
        if guard is None:
            return [host]
        if is_ip_literal(host):
            return [str(address) for address in guard.addresses_for(host, port)]
        return [str(address) for address in await asyncio.to_thread(guard.addresses_for, host, port)]

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    def _release(self, origin: Origin, connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < self._max_idle and connection.usable():
            idle.append(connection)
        else:
            connection.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
