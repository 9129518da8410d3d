"""The Starlette app: every request becomes a payload-2.0 event for the API handler, except streaming
completions, which are relayed from the provider as they arrive.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import request_response

from switchyard.api.request_guard import check_idempotency_key, is_json_media_type, refuse_loops
from switchyard.errors import ApiError
from switchyard.front.http_api_event import RequestInfo, build_event, new_request_id, response_from_result
from switchyard.front.lambda_context import LambdaContext
from switchyard.front.relayed_response import RelayedResponse
from switchyard.front.stream_relay import PrepareStream, StreamRelay, error_response, wants_stream
from switchyard.settings import get_settings

log = logging.getLogger(__name__)

ApiHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
# Set by the Lambda Web Adapter on AWS; never forwarded to the handler as client headers.
_LWA_CONTEXT_HEADER = "x-amzn-lambda-context"
_LWA_HEADERS = (b"x-amzn-lambda-context", b"x-amzn-request-context")


def create_app(
    api_handler: ApiHandler,
    *,
    prepare_stream: PrepareStream | None = None,
    warmup: Callable[[], None] | None = None,
    function_name: str | None = None,
    memory_mb: int | None = None,
    timeout_seconds: float = 30,
) -> Starlette:
    """`api_handler(event, context) -> dict` is a Lambda handler for HTTP API payload-2.0 events.

    `prepare_stream` defaults to `switchyard.streaming.prepare_stream`; `warmup` runs once in a worker
    thread at startup (on Lambda that is the init phase, which the first request then does not pay).
    `function_name`, `memory_mb` and `timeout_seconds` shape the context handed to the handler; on Lambda
    the first two come from the runtime's settings.
    """
    relay = StreamRelay(prepare_stream)

    async def handle(request: Request) -> Response | RelayedResponse:
        scope = request.scope
        body = await request.body()
        settings = get_settings()
        running_in_lambda = settings.aws_lambda_function_name is not None
        invocation = (_lambda_context_header(scope) if running_in_lambda else None) or {}
        request_id = invocation.get("request_id") or new_request_id()
        # The Rust runtime serialises `deadline` (epoch ms); the adapter's docs also name `deadline_ms`.
        deadline = invocation.get("deadline") or invocation.get("deadline_ms")
        deadline_ms = int(deadline) if isinstance(deadline, int | float) and deadline > 0 else None

        if wants_stream(scope["method"], scope["path"], body) and is_json_media_type(
            request.headers.get("content-type", "")
        ):
            try:
                refuse_loops(dict(request.headers))  # as the API handler would
                check_idempotency_key(dict(request.headers))
            except ApiError as error:
                return error_response(error)
            return await relay.respond(
                request.headers.get("authorization"),
                scope["path"],
                body,
                request_id,
                invocation_deadline_ms=deadline_ms,
            )

        event = build_event(scope, body, RequestInfo(request_id=request_id))
        for header in _LWA_HEADERS:
            event["headers"].pop(header.decode(), None)
        context = LambdaContext.for_invocation(
            function_name or settings.aws_lambda_function_name or "switchyard-api",
            invoked_function_arn=invocation.get("invoked_function_arn", ""),
            memory_limit_in_mb=memory_mb or settings.aws_lambda_function_memory_size or 128,
            aws_request_id=request_id,
            timeout_seconds=timeout_seconds,
        )
        if deadline_ms is not None:
            context.deadline_ms = deadline_ms
        try:
            result = await run_in_threadpool(api_handler, event, context)
        except Exception:
            # API Gateway's answer when the integration fails.
            log.exception("API handler raised")
            return Response(b'{"message":"Internal Server Error"}', 500, media_type="application/json")
        parts = response_from_result(result)
        response = Response(parts.body, parts.status)
        response.raw_headers = [*parts.headers, (b"content-length", str(len(parts.body)).encode())]
        return response

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if warmup is not None:
            await run_in_threadpool(warmup)
        try:
            yield
        finally:
            await relay.aclose()

    app = Starlette(lifespan=lifespan)
    # Every request, whatever its method or path, goes to the handler, which answers unknown routes and
    # methods itself (404, 405) in the API's envelope. Not a `/{path:path}` route: Starlette matches it
    # with a regex whose `.` stops at a newline, and answered such paths with its own text/plain 404.
    # (request_response only awaits what the handler returns and calls it as an ASGI app, which a
    # RelayedResponse is: its annotation asks for a Starlette Response.)
    app.router.default = request_response(cast(Callable[[Request], Awaitable[Response]], handle))
    return app


def _lambda_context_header(scope: Mapping[str, Any]) -> dict[str, Any] | None:
    """The invocation's real context, which the Lambda Web Adapter passes as a JSON header."""
    for name, value in scope["headers"]:
        if name == _LWA_CONTEXT_HEADER.encode():
            try:
                parsed = json.loads(value)
            except ValueError:
                return None
            return parsed if isinstance(parsed, dict) else None
    return None
