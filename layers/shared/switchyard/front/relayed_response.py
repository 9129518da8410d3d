"""An ASGI response that streams an upstream answer (`upstream_client.StreamedResponse`) to the client.

Shared by the two relays, the gateway's streaming front and the provider agent. Both read the first body
bytes before they build it, so that a provider failing before then still gets a proper 502; from there on
every chunk is sent the moment it arrives, and the connection to the provider is closed (which tells it to
stop generating) when the client hangs up. An upstream that fails mid-response leaves the response
unfinished (the server drops the connection: the client can tell it was cut short), after whatever last
words the relay's `report_failure` gives (the gateway's front: an SSE error event when it cut the stream
itself, at its deadline or size cap).

Why not Starlette's StreamingResponse: under uvicorn (ASGI spec 2.3) it runs the body and a disconnect
listener in an anyio task group, which measured ~50 us before the first chunk and ~200 us per response
in all on this project's machine; here the relay runs in the request's own task with one plain asyncio
task beside it. And an async generator's cleanup may run late (or never) when the client goes away,
while this one's `finally` always runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from starlette.types import Receive, Scope, Send

from switchyard.front.upstream_client import StreamedResponse, TransportError

log = logging.getLogger(__name__)

# `report_failure(error, last_chunk)`: logs an upstream failure after the response started and returns what
# to send the client before the connection drops (b"": nothing). `last_chunk` is the last chunk sent.
ReportFailure = Callable[[TransportError, bytes], bytes]


def log_failure(error: TransportError, last_chunk: bytes) -> bytes:
    log.warning("upstream failed mid-response: %s", str(error) or type(error).__name__)
    return b""


class RelayedResponse:
    def __init__(
        self,
        upstream: StreamedResponse,
        chunks: AsyncGenerator[bytes, None],
        first_chunk: bytes,
        *,
        status_code: int,
        headers: Sequence[tuple[bytes, bytes]],
        on_close: Callable[[], None] | None = None,
        report_failure: ReportFailure = log_failure,
        on_first_byte: Callable[[], None] | None = None,
    ) -> None:
        """`chunks` is `upstream.chunks()` with `first_chunk` already taken from it (b"" if the body is
        empty); `on_close` runs once the upstream is closed, however the response ended; `on_first_byte`
        once the head and the first chunk are written to the client's connection (or the response ended
        before they could be)."""
        self.upstream = upstream
        self.status_code = status_code
        self.raw_headers = list(headers)
        self._chunks = chunks
        self._first_chunk = first_chunk
        self._on_close = on_close
        self._report_failure = report_failure
        self._complete = False
        self._client_left = False
        self._on_first_byte = on_first_byte

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = asyncio.current_task()
        watcher = asyncio.get_running_loop().create_task(self._stop_when_client_leaves(receive, relay))
        try:
            await self._relay(send)
        except asyncio.CancelledError:
            if not self._client_left:
                raise  # the server is shutting down: not ours to swallow
            if relay is not None:
                relay.uncancel()
        finally:
            watcher.cancel()
            self._first_byte_written()  # if it never was
            try:
                await self._chunks.aclose()
                await self.upstream.aclose()
            finally:
                if self._on_close is not None:
                    self._on_close()

    async def _relay(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if self._first_chunk:
            await send({"type": "http.response.body", "body": self._first_chunk, "more_body": True})
        if self._on_first_byte is not None:
            # After the loop's callbacks already queued, so after the front's transport has flushed what it
            # coalesced of this pass (http_protocol): the bytes are on the socket when it runs.
            asyncio.get_running_loop().call_soon(self._first_byte_written)
        chunk = self._first_chunk  # after a failure: the last chunk sent (no bookkeeping per chunk)
        try:
            async for chunk in self._chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except TransportError as error:
            # Too late for a status code: leaving the body unfinished makes the server drop the connection,
            # which tells the client the response is truncated.
            last_words = self._report_failure(error, chunk)
            if last_words:
                await send({"type": "http.response.body", "body": last_words, "more_body": True})
            return
        self._complete = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _first_byte_written(self) -> None:
        on_first_byte, self._on_first_byte = self._on_first_byte, None
        if on_first_byte is not None:
            on_first_byte()

    async def _stop_when_client_leaves(self, receive: Receive, relay: asyncio.Task[Any] | None) -> None:
        # The request body was already read, so the next message can only be the disconnect (which servers
        # also report once the response is complete).
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self._complete and relay is not None:
            log.info("client went away mid-response; closing the upstream response")
            self._client_left = True
            relay.cancel()
