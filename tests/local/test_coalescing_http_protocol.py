"""The front's HTTP protocol sends a stream's head and first event as one write, and changes nothing else."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from switchyard.front.http_protocol import CoalescingHttpToolsProtocol
from switchyard_agent.serving import serve_in_thread
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class RecordingTransport:
    """The socket's transport, noting each write that reaches it."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]):
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def recording(protocol_class: type, writes: list[bytes]) -> type:
    class Recording(protocol_class):  # type: ignore[misc, valid-type]  # a class given at run time
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
            super().connection_made(RecordingTransport(transport, writes))

    return Recording


def sse_app(second_event: threading.Event):
    """A relay's answer: head and first event back to back, the next event later."""

    async def app(scope, receive, send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        while not second_event.is_set():
            await asyncio.sleep(0.005)
        await send({"type": "http.response.body", "body": b"data: two\n\n", "more_body": False})

    return app


def first_writes(protocol_class: type) -> tuple[list[bytes], list[bytes]]:
    """What reached the socket before the second event was sent, and in all."""
    writes: list[bytes] = []
    second_event = threading.Event()
    with (
        serve_in_thread(sse_app(second_event), http=recording(protocol_class, writes)) as url,
        httpx.Client(trust_env=False, timeout=5) as client,
        client.stream("GET", url) as response,
    ):
        lines = response.iter_lines()
        assert next(lines) == "data: one"
        before_second = list(writes)
        second_event.set()
        assert [line for line in lines if line] == ["data: two"]
    return before_second, writes


def test_a_streams_head_and_first_event_reach_the_socket_in_one_write():
    before_second, in_all = first_writes(CoalescingHttpToolsProtocol)

    assert len(before_second) == 1
    assert before_second[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert before_second[0].endswith(b"\r\n\r\nb\r\ndata: one\n\n\r\n")
    # The later event leaves on its own, with the end of the chunked body it was sent with.
    assert in_all[1:] == [b"b\r\ndata: two\n\n\r\n0\r\n\r\n"]


def test_uvicorns_own_protocol_writes_the_head_alone():
    """Why the front uses its own: the plain protocol sends two segments for the first token."""
    before_second, _ = first_writes(HttpToolsProtocol)

    assert len(before_second) == 2
    assert before_second[1] == b"b\r\ndata: one\n\n\r\n"


@pytest.mark.parametrize("keep_alive", [True, False])
def test_responses_on_a_kept_alive_or_closed_connection_are_whole(keep_alive):
    async def app(scope, receive, send) -> None:
        body = scope["path"].encode() * 1000
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    headers = {} if keep_alive else {"connection": "close"}
    with (
        serve_in_thread(app, http=CoalescingHttpToolsProtocol) as url,
        httpx.Client(trust_env=False) as client,
    ):
        for path in ("/a", "/bb", "/ccc"):
            response = client.get(url + path, headers=headers)
            assert response.status_code == 200
            assert response.content == path.encode() * 1000


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0


@pytest.mark.anyio
async def test_what_is_written_goes_out_before_a_close_and_never_after_an_abort():
    from switchyard.front.http_protocol import CoalescingTransport

    loop = asyncio.get_running_loop()
    closed, aborted = FakeTransport(), FakeTransport()
    for fake in (closed, aborted):
        transport = CoalescingTransport(fake, loop)  # type: ignore[arg-type]  # a duck-typed fake
        transport.write(b"head")
        transport.write(b"body")
        assert fake.writes == []
        assert transport.get_write_buffer_size() == 8
        transport.close() if fake is closed else transport.abort()
    await asyncio.sleep(0)  # the flush scheduled by the first write finds nothing left to send

    assert closed.writes == [b"headbody"] and closed.closed
    assert aborted.writes == [] and aborted.aborted
