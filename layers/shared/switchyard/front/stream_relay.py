"""Streaming completions: let the gateway plan the provider call, then relay its bytes as they arrive.

A buffered Lambda response cannot stream, so `stream: true` chat/completions requests bypass the API
handler: `prepare_stream` (authentication, validation, provider choice) runs on the event loop when all
it needs is cached and in a worker thread when it has to read DynamoDB, and the provider's response is
copied to the client chunk by chunk (`RelayedResponse`) through one shared, pooled HTTP client (see
upstream_client for why it is not httpx).

What the client gets, by what the provider did (docs/CONTRACTS.md): a 2xx stream, relayed as it comes; a
4xx, passed through as it is (status, content type, body: the caller's request was refused); a 5xx, no
answer, an empty stream, or a failure before the first byte, `502 upstream_error` in the API's envelope,
as on the synchronous path; a failure after the first byte, a truncated response (the connection drops).

Every stream is also bounded as a whole, like every other provider answer: it must be over within
STREAM_DEADLINE_SECONDS (template parameter StreamDeadlineSeconds; on Lambda, also a second before the
invocation's own deadline, whatever the parameters say) and hold at most PROVIDER_RESPONSE_MAX_BYTES
(MaxProviderResponseBytes, the cap of every provider answer). Either limit hit before the first byte is that
502 upstream_error, saying which; after it, the client gets a last SSE event `data: {"error": {...}}` with
the same message (the official SDKs raise it as an APIError) and then the same truncation. The provider's
connection is closed, never pooled again, and the cut is logged with the provider and counted as a
provider timeout or error (ProviderTimeouts / ProviderErrors, CallPath sync).

Every stream is one provider call in the metrics (ProviderCalls, CallPath sync, as a synchronous call is),
recorded once when it ends: ok, rejected (a 4xx passed through), error (a 5xx, a failure before the first
byte or mid-stream) or timeout; ProviderLatency is the call's whole length, up to its last byte. A stream
whose client went away counts as ok: the provider did nothing wrong, and it was cut off early. A relayed
stream's request (Requests, by the status it started with) is recorded then too, in the same EMF document:
nothing is written between the provider's first byte and the client's (on Lambda an EMF line costs
~40 us of serialising and a write to the log pipe).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from switchyard import metrics
from switchyard.adapters.pinned_http import get_endpoint_guard
from switchyard.errors import ApiError, UpstreamError, to_http
from switchyard.first_byte_windows import Window, open_window
from switchyard.front.relayed_response import RelayedResponse
from switchyard.front.upstream_client import (
    ResponseTooLarge,
    StreamedResponse,
    TransportDeadline,
    TransportError,
    TransportTimeout,
    UpstreamPool,
)
from switchyard.settings import get_settings
from switchyard.ttl_cache import WouldLoad, cached_only

log = logging.getLogger(__name__)

STREAMING_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
# Response headers worth passing on besides the status: how to read the body, and not to cache it.
_RELAYED_HEADERS = (b"content-type", b"cache-control")
# How much of a provider's 5xx answer is read to quote it (the message keeps its first 300 characters).
_QUOTED_ERROR_BYTES = 4096
# What a stream on Lambda keeps of its invocation for the last event and the close: a stream still running
# when the invocation ends is cut by Lambda, with no event and no log line of ours.
_LAMBDA_END_RESERVE_SECONDS = 1.0
# The blank lines that end an SSE event, with any of the three line endings the format allows.
_EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")

PrepareStream = Callable[..., Any]


def wants_stream(method: str, path: str, body: bytes) -> bool:
    """True for a streaming (and not async) chat/completions request."""
    if method != "POST" or path not in STREAMING_PATHS or b'"stream"' not in body:
        return False  # the substring test spares a JSON parse on every non-streaming request
    try:
        payload = json.loads(body)
    except ValueError:
        return False  # malformed JSON: the API handler answers it with the usual 400
    return isinstance(payload, dict) and payload.get("stream") is True and payload.get("async") is not True


def default_prepare_stream(*args: Any, **kwargs: Any) -> Any:
    from switchyard.streaming import prepare_stream

    return prepare_stream(*args, **kwargs)


class StreamRelay:
    """Owns the shared upstream client; created lazily inside the event loop that uses it."""

    def __init__(self, prepare_stream: PrepareStream | None = None):
        self._prepare_stream = prepare_stream or default_prepare_stream
        self._pool: UpstreamPool | None = None
        self._prepared_once = False

    def _upstream(self) -> UpstreamPool:
        if self._pool is None:
            settings = get_settings()
            # Read timeout: the longest silence between two chunks, not the length of the whole stream.
            read_timeout = settings.upstream_timeout_seconds
            connect_timeout = settings.upstream_connect_timeout_seconds
            self._pool = UpstreamPool(
                connect_timeout=min(connect_timeout, read_timeout),
                read_timeout=read_timeout,
                guard=get_endpoint_guard(),
            )
        return self._pool

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def respond(
        self,
        authorization: str | None,
        path: str,
        body: bytes,
        request_id: str,
        *,
        invocation_deadline_ms: int | None = None,
    ) -> Response | RelayedResponse:
        """`invocation_deadline_ms`: on Lambda, when the invocation ends (epoch ms): the stream ends first."""
        # Streams bypass the API handler, which counts every other request: counted here, by the status
        # they start with (no latency: a stream's length is the model's, not the gateway's). A relayed
        # stream is counted when it ends, with its provider call (_ProviderCall), not on its way to the
        # first token.
        received_at = time.perf_counter()
        # Background cache reloads wait until the stream's first byte is out (first_byte_windows); a relayed
        # stream closes its window once that byte is written, any other answer here.
        window = open_window()
        try:
            with metrics.measured_request(metrics.RouteGroup.SYNC_INFERENCE):
                response = await self._respond(
                    authorization, path, body, request_id, invocation_deadline_ms, received_at, window
                )
                if not isinstance(response, RelayedResponse):
                    metrics.record_request(response.status_code, 0.0)
        except BaseException:
            window.close()
            raise
        if not isinstance(response, RelayedResponse):
            window.close()
        return response

    async def _respond(
        self,
        authorization: str | None,
        path: str,
        body: bytes,
        request_id: str,
        invocation_deadline_ms: int | None,
        received_at: float,
        window: Window,
    ) -> Response | RelayedResponse:
        try:
            call = await self._prepare(authorization, path, body, request_id)
        except Exception as error:  # every failure must become an HTTP answer
            if not isinstance(error, ApiError):
                log.exception("prepare_stream failed", exc_info=error)
            return error_response(error)
        return await self._relay(call, invocation_deadline_ms, received_at, window)

    async def _prepare(self, authorization: str | None, path: str, body: bytes, request_id: str) -> Any:
        if self._prepared_once:
            # Warm (key and providers cached) this is a few hundred microseconds of CPU: done here, it
            # spares the hand-off to a worker thread and back, two wake-ups on the way to the first token
            # that a busy machine stretches to milliseconds. A cache miss would block the loop on
            # DynamoDB: that request goes to a thread (so does one whose rate-limit lease ran out:
            # switchyard/streaming.py).
            try:
                with cached_only():
                    return self._prepare_stream(authorization, path, body, request_id=request_id)
            except WouldLoad:
                pass
        # The first call also imports and builds the services (boto3 clients): never on the loop.
        call = await run_in_threadpool(self._prepare_stream, authorization, path, body, request_id=request_id)
        self._prepared_once = True
        return call

    async def _relay(
        self, call: Any, invocation_deadline_ms: int | None, received_at: float, window: Window
    ) -> Response | RelayedResponse:
        settings = get_settings()
        deadline_seconds = settings.stream_deadline_seconds
        if invocation_deadline_ms:
            left = invocation_deadline_ms / 1000 - time.time() - _LAMBDA_END_RESERVE_SECONDS
            deadline_seconds = max(0.0, min(deadline_seconds, round(left, 1)))
        provider_call = _ProviderCall()
        upstream: StreamedResponse | None = None
        try:
            upstream = await self._upstream().post(
                call.url,
                call.headers,
                call.content,
                deadline_seconds=deadline_seconds,
                max_bytes=settings.provider_response_max_bytes,
            )
            chunks = upstream.chunks()
            if upstream.status_code >= 500:
                # As on the synchronous path, the provider's own failure is the gateway's 502 in the API's
                # envelope, quoting the start of its answer; a 4xx is the caller's to see, passed through.
                answer = await _start_of(chunks, _QUOTED_ERROR_BYTES)
                await upstream.aclose()
                log.warning("Upstream %s answered HTTP %d", call.url, upstream.status_code)
                provider_call.end(metrics.ProviderOutcome.ERROR)
                return _error_response(UpstreamError.provider_status(upstream.status_code, answer), call)
            # Wait for the first byte before committing to a status: until then a failure is still a 502.
            first_chunk = await anext(chunks, b"")
            first_byte_at = time.perf_counter()
            if not first_chunk and 200 <= upstream.status_code < 300:
                # A stream always carries at least `data: [DONE]`; an empty one is a provider that failed
                # after its status line (llama-cpp-python does so when the prompt overflows its context).
                raise TransportError("the provider ended the stream before sending any event")
        except BaseException as error:
            if upstream is not None:
                await upstream.aclose()
            if not isinstance(error, TransportError):
                raise
            cut = _cut_by_limit(error)
            _report_failure(call, error, cut, provider_call, "before the first byte")
            if cut is not None:
                return _error_response(cut, call)
            failed = UpstreamError(f"Upstream provider failed: {_describe(error)}")
            return _error_response(failed, call)
        headers = [(name, value) for name, value in upstream.raw_headers if name in _RELAYED_HEADERS]
        headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in _limit_headers(call)]
        headers.append((b"server-timing", _server_timing(received_at, upstream.sent_at, first_byte_at)))
        is_event_stream = upstream.headers.get("content-type", "").startswith("text/event-stream")
        relayed_to_its_end = _outcome_of_answer(upstream.status_code)
        provider_call.relayed_status = upstream.status_code

        def report_failure(error: TransportError, last_chunk: bytes) -> bytes:
            cut = _cut_by_limit(error)
            _report_failure(call, error, cut, provider_call, "mid-stream")
            if cut is None or not is_event_stream:
                return b""  # the truncation alone says it (no event fits in another body)
            # A chunk that stopped inside an event gets that event ended first, so that ours is one of its own.
            separator = b"" if last_chunk.endswith(_EVENT_ENDS) else b"\n\n"
            return separator + b"data: " + json.dumps(cut.to_body()).encode() + b"\n\n"

        return RelayedResponse(
            upstream,
            chunks,
            first_chunk,
            status_code=upstream.status_code,
            headers=headers,
            # Runs after report_failure, if that ran: the first outcome recorded is the call's.
            on_close=lambda: provider_call.end(relayed_to_its_end),
            report_failure=report_failure,
            on_first_byte=window.close,
        )


def _server_timing(received_at: float, sent_at: float, first_byte_at: float) -> bytes:
    """W3C Server-Timing (browsers' developer tools show it; benchmarks read it): `gateway`, the time from
    the request's arrival to the provider call's last byte sent; `provider`, from there to the provider's
    first body byte. What a client sees beyond their sum is the network's and the relay's."""
    gateway_ms, provider_ms = (sent_at - received_at) * 1000, (first_byte_at - sent_at) * 1000
    return f"gateway;dur={gateway_ms:.3f}, provider;dur={provider_ms:.3f}".encode()


async def _start_of(chunks: AsyncGenerator[bytes, None], limit: int) -> str:
    """The first `limit` bytes of a body (less if it ends sooner), as text."""
    data = b""
    async for chunk in chunks:
        data += chunk
        if len(data) >= limit:
            break
    await chunks.aclose()
    return data[:limit].decode("utf-8", "replace")


def error_response(error: BaseException) -> Response:
    """`to_http`'s answer as a Starlette response."""
    answer = to_http(error)
    return Response(answer.body, answer.status, headers=dict(answer.headers))


def _limit_headers(call: Any) -> list[tuple[str, str]]:
    """The account's rate-limit headers, which every answer to a limited request carries."""
    return list(getattr(call, "response_headers", {}).items())


def _error_response(error: ApiError, call: Any) -> Response:
    """A failure once the request was admitted: still with its rate-limit headers."""
    error.extra_headers.update(_limit_headers(call))
    return error_response(error)


def _cut_by_limit(error: TransportError) -> UpstreamError | None:
    """The client's error when the stream was cut by its deadline or size cap, else None."""
    if isinstance(error, TransportDeadline):
        return UpstreamError.past_deadline(error.deadline_seconds)
    if isinstance(error, ResponseTooLarge):
        return UpstreamError.too_large(error.max_bytes, error.how)
    return None


class _ProviderCall:
    """A stream's provider call in the metrics: timed from its start, recorded once, at its first end.

    Once the stream is relayed (`relayed_status`, the status it started with), its request is recorded
    with it, in the same document (the stream's only one)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.recorded = False
        self.relayed_status: int | None = None

    def end(self, outcome: metrics.ProviderOutcome) -> None:
        if self.recorded:
            return
        self.recorded = True
        elapsed_ms = (time.perf_counter() - self.started) * 1000
        if self.relayed_status is None:
            metrics.record_provider_call(metrics.CallPath.SYNC, outcome, elapsed_ms)
        else:
            metrics.record_relayed_stream(self.relayed_status, outcome, elapsed_ms)


def _outcome_of(error: TransportError) -> metrics.ProviderOutcome:
    timed_out = isinstance(error, TransportTimeout)
    return metrics.ProviderOutcome.TIMEOUT if timed_out else metrics.ProviderOutcome.ERROR


def _outcome_of_answer(status_code: int) -> metrics.ProviderOutcome:
    """A stream relayed to its end (or to its client's leaving): a 4xx is the provider refusing it."""
    return metrics.ProviderOutcome.REJECTED if status_code >= 400 else metrics.ProviderOutcome.OK


def _report_failure(
    call: Any, error: TransportError, cut: UpstreamError | None, provider_call: _ProviderCall, when: str
) -> None:
    """Which provider failed and how, for the operator (a metric cannot name the provider): the synchronous
    path's "provider call failed" line, or "provider stream cut off" when the front cut it (`cut`, the
    client's error for it); and the call counted, as a timeout or an error."""
    provider = getattr(call, "provider", None)
    title, detail = (
        ("provider stream cut off", cut.message) if cut else ("provider call failed", _describe(error))
    )
    log.warning(
        "%s %s: %s",
        title,
        when,
        detail,
        extra={
            "account_id": getattr(provider, "account_id", None),
            "provider_id": getattr(provider, "provider_id", None),
            "url": call.url,
            "error": detail,
        },
    )
    provider_call.end(_outcome_of(error))


def _describe(error: TransportError) -> str:
    return "timed out" if isinstance(error, TransportTimeout) else str(error)
