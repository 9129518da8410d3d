"""The front's pooled HTTP/1.1 upstream client against raw loopback servers it cannot fool itself about."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from switchyard.endpoint_policy import EndpointGuard, EndpointPolicy
from switchyard.front.upstream_client import (
    ResponseTooLarge,
    TransportDeadline,
    TransportError,
    TransportTimeout,
    UpstreamPool,
)

Responder = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    return head, await reader.readexactly(length)


async def with_server(respond: Responder, scenario: Callable[[str, list], Awaitable[None]]) -> list:
    """Run `respond` for every connection of a loopback server while `scenario(url, connections)` runs."""
    connections: list = []

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername"))
        try:
            await respond(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await scenario(f"http://127.0.0.1:{port}/v1/chat/completions?x=1", connections)
    return connections


def pool(read_timeout: float = 5) -> UpstreamPool:
    return UpstreamPool(
        connect_timeout=2, read_timeout=read_timeout, guard=EndpointGuard(EndpointPolicy.of("loopback"))
    )


async def collect(upstream) -> bytes:
    body = b"".join([chunk async for chunk in upstream.chunks()])
    await upstream.aclose()
    return body


def test_requests_on_one_origin_reuse_a_kept_alive_connection() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def respond(reader, writer) -> None:
        while True:  # keep-alive: serve until the client hangs up
            head, body = await read_request(reader)
            seen.append((head, body))
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            writer.write(b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n")
            await writer.drain()

    async def scenario(url: str, connections: list) -> None:
        client = pool()
        for _ in range(3):
            upstream = await client.post(url, {"authorization": "Bearer s", "Host": "evil"}, b'{"a":1}')
            assert upstream.status_code == 200 and upstream.headers["content-type"] == "text/event-stream"
            assert await collect(upstream) == b"data: 1\n\ndata: 2\n\n"
        await client.aclose()

    connections = asyncio.run(with_server(respond, scenario))
    assert len(connections) == 1
    head, body = seen[0]
    assert head.startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")
    assert b"authorization: Bearer s" in head and b"evil" not in head  # the client owns the Host header
    assert body == b'{"a":1}'


def test_a_server_that_closes_after_each_answer_still_serves_every_request() -> None:
    async def respond(reader, writer) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()

    async def scenario(url: str, connections: list) -> None:
        client = pool()
        for _ in range(3):
            assert await collect(await client.post(url, {}, b"{}")) == b"ok"
            await asyncio.sleep(0.01)
        await client.aclose()

    assert len(asyncio.run(with_server(respond, scenario))) == 3


def test_a_close_delimited_body_is_read_to_the_end() -> None:
    async def respond(reader, writer) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        await writer.drain()

    async def scenario(url: str, connections: list) -> None:
        assert await collect(await pool().post(url, {}, b"")) == b"until the end"

    asyncio.run(with_server(respond, scenario))


def test_a_silent_upstream_times_out() -> None:
    async def respond(reader, writer) -> None:
        await read_request(reader)
        await asyncio.sleep(2)

    async def scenario(url: str, connections: list) -> None:
        with pytest.raises(TransportTimeout):
            await pool(read_timeout=0.2).post(url, {}, b"{}")

    asyncio.run(with_server(respond, scenario))


def test_a_stream_that_breaks_off_raises() -> None:
    async def respond(reader, writer) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()

    async def scenario(url: str, connections: list) -> None:
        upstream = await pool().post(url, {}, b"{}")
        with pytest.raises(TransportError):
            await collect(upstream)

    asyncio.run(with_server(respond, scenario))


def test_an_unreachable_upstream_is_a_transport_error() -> None:
    async def scenario() -> None:
        with pytest.raises(TransportError, match="connection failed"):
            await pool().post("http://127.0.0.1:1/v1/completions", {}, b"{}")

    asyncio.run(scenario())


def test_any_method_with_repeated_headers_and_the_answer_s_raw_headers() -> None:
    """What the agent's relay needs: GET without a body, repeated headers both ways, HEAD without a body."""
    seen: list[bytes] = []
    answer = b"HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 2\r\n\r\n"

    async def respond(reader, writer) -> None:
        while True:
            head, _ = await read_request(reader)
            seen.append(head)
            # A HEAD answer's content-length describes a body that is never sent.
            writer.write(answer if head.startswith(b"HEAD") else answer + b"ok")
            await writer.drain()

    async def scenario(url: str, connections: list) -> None:
        client = pool()
        upstream = await client.request("GET", url, [("accept", "a/b"), ("accept", "c/d")])
        assert upstream.raw_headers[:2] == [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
        assert await collect(upstream) == b"ok"
        assert await collect(await client.request("HEAD", url, [])) == b""
        assert await collect(await client.request("DELETE", url, [], b"")) == b"ok"
        await client.aclose()

    connections = asyncio.run(with_server(respond, scenario))
    assert len(connections) == 1  # the HEAD answer left the connection in step
    get, head, delete = seen
    assert get.startswith(b"GET /v1/chat/completions?x=1 HTTP/1.1\r\n")
    assert b"accept: a/b\r\naccept: c/d\r\n" in get
    assert b"content-length" not in get.lower() and b"content-length" not in delete.lower()
    assert head.startswith(b"HEAD ")


def test_a_header_that_cannot_be_sent_is_a_transport_error_and_not_retried() -> None:
    async def respond(reader, writer) -> None:
        await reader.read()

    async def scenario(url: str, connections: list) -> None:
        with pytest.raises(TransportError, match="cannot send this request"):
            await pool().request("POST", url, [("x-bad", "line\r\nbreak")], b"{}")

    assert len(asyncio.run(with_server(respond, scenario))) == 1


# ------------------------------------------------------------------ the total deadline and the size cap

SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
WELL_BEHAVED = SSE_HEAD + b"9\r\ndata: 1\n\n\r\n0\r\n\r\n"


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def first_request_then_well_behaved(first: Responder) -> Responder:
    """Keep-alive: the first request of the server gets `first`'s answer, every later one a short stream."""
    served = 0

    async def respond(reader, writer) -> None:
        nonlocal served
        while True:
            await read_request(reader)
            served += 1
            if served == 1:
                await first(reader, writer)
            else:
                writer.write(WELL_BEHAVED)
                await writer.drain()

    return respond


async def trickle_forever(reader, writer) -> None:
    """Every silence well under the read timeout, and no end."""
    writer.write(SSE_HEAD)
    while True:
        writer.write(chunked(b"data: tick\n\n"))
        await writer.drain()
        await asyncio.sleep(0.05)


def test_a_trickling_upstream_is_cut_at_the_total_deadline_and_its_connection_is_not_reused() -> None:
    async def scenario(url: str, connections: list) -> None:
        client = pool(read_timeout=1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        upstream = await client.post(url, {}, b"{}", deadline_seconds=0.4)
        received = []
        with pytest.raises(TransportDeadline, match="within its 0.4 s deadline") as cut:
            async for chunk in upstream.chunks():
                received.append(chunk)
        elapsed = loop.time() - started
        await upstream.aclose()
        assert isinstance(cut.value, TransportTimeout)  # a deadline is a timeout: never retried
        assert len(received) > 2 and 0.4 <= elapsed < 0.9
        assert await collect(await client.post(url, {}, b"{}", deadline_seconds=5)) == b"data: 1\n\n"
        await client.aclose()

    respond = first_request_then_well_behaved(trickle_forever)
    assert len(asyncio.run(with_server(respond, scenario))) == 2  # the cut connection was closed, not pooled


def test_the_deadline_also_bounds_the_wait_for_the_response_head() -> None:
    async def respond(reader, writer) -> None:
        await read_request(reader)
        await asyncio.sleep(3)

    async def scenario(url: str, connections: list) -> None:
        with pytest.raises(TransportDeadline):
            await pool(read_timeout=5).post(url, {}, b"{}", deadline_seconds=0.2)

    asyncio.run(with_server(respond, scenario))


def test_a_body_past_the_size_cap_is_cut_and_its_connection_is_not_reused() -> None:
    async def oversized(reader, writer) -> None:
        writer.write(SSE_HEAD + chunked(b"x" * 100) * 10 + b"0\r\n\r\n")  # complete, and reusable
        await writer.drain()

    async def scenario(url: str, connections: list) -> None:
        client = pool()
        upstream = await client.post(url, {}, b"{}", max_bytes=250)
        received = b""
        with pytest.raises(ResponseTooLarge, match="larger than the 250-byte limit"):
            async for chunk in upstream.chunks():
                received += chunk
        await upstream.aclose()
        assert len(received) <= 250  # what went past the cap was never handed on
        assert await collect(await client.post(url, {}, b"{}", max_bytes=250)) == b"data: 1\n\n"
        await client.aclose()

    respond = first_request_then_well_behaved(oversized)
    assert len(asyncio.run(with_server(respond, scenario))) == 2


def test_a_declared_length_past_the_size_cap_is_refused_before_reading_the_body() -> None:
    async def respond(reader, writer) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(2)  # the body never comes: nothing may wait for it

    async def scenario(url: str, connections: list) -> None:
        upstream = await pool().post(url, {}, b"{}", max_bytes=999)
        with pytest.raises(ResponseTooLarge, match="it declared 1000 bytes"):
            await collect(upstream)
        await upstream.aclose()

    asyncio.run(with_server(respond, scenario))


def test_answers_within_the_limits_are_read_whole_and_keep_their_connection() -> None:
    async def scenario(url: str, connections: list) -> None:
        client = pool()
        for _ in range(3):
            upstream = await client.post(url, {}, b"{}", deadline_seconds=5, max_bytes=9)
            assert await collect(upstream) == b"data: 1\n\n"  # exactly the cap is allowed
        await client.aclose()

    respond = first_request_then_well_behaved(lambda reader, writer: _write(writer, WELL_BEHAVED))
    assert len(asyncio.run(with_server(respond, scenario))) == 1


async def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()
