"""The agent's HTTP face: the gateway's requests, checked against the shared secret, relayed upstream.

Responses are relayed byte for byte as they arrive (`aiter_raw`), so SSE token streams reach the gateway as
the model server emits them and compressed bodies stay compressed with their headers intact.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# `authorization` carries our secret, which the model server must never see; httpx sets host and length.
_DROPPED_REQUEST_HEADERS = HOP_BY_HOP_HEADERS | {"host", "content-length", "authorization"}
# uvicorn writes its own `date` and `server`; forwarding the upstream's as well would duplicate them.
_DROPPED_RESPONSE_HEADERS = HOP_BY_HOP_HEADERS | {"date", "server"}

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_REQUEST_ID_NAMESPACE = uuid.UUID("6f1d7c52-3a0e-4b8e-9a44-5d0c2b7e9f10")  # fixed: derived ids are stable


@dataclass(frozen=True)
class ProxySettings:
    upstream_url: str
    secret: str
    max_concurrency: int = 4
    upstream_api_key: str | None = None


def _connection_listed(headers: list[tuple[str, str]]) -> set[str]:
    """Headers named in `Connection` are hop-by-hop for this message too (RFC 9110 §7.6.1)."""
    listed: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            listed.update(token.strip().lower() for token in value.split(",") if token.strip())
    return listed


def _as_uuid(request_id: str) -> str:
    """The request id in UUID form, which some model servers insist on.

    llama-cpp-python's server answers 400 with an empty body to an `X-Request-ID` that is not a UUID; the
    gateway sends job ids ("job_...") for async work. Anything else becomes a UUID derived from it, the
    same for every retry of one job.
    """
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        return str(uuid.uuid5(_REQUEST_ID_NAMESPACE, request_id))


def upstream_error(message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "upstream_error"}}, status_code=502)


class RelayedResponse:
    """An ASGI response that streams an open upstream response and releases its concurrency slot when done.

    Starlette's StreamingResponse would do for the bytes, but a generator's cleanup may run late (or never)
    when the client goes away; here the slot and the upstream connection are freed in a `finally` that always
    runs.
    """

    def __init__(self, upstream: httpx.Response, release: Callable[[], None]) -> None:
        self.upstream = upstream
        self._release = release
        self._complete = False
        raw = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in upstream.headers.raw]
        dropped = _DROPPED_RESPONSE_HEADERS | _connection_listed(raw)
        self.raw_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in raw
            if name.lower() not in dropped
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tasks:

                async def relay() -> None:
                    await self._relay(send)
                    tasks.cancel_scope.cancel()

                async def stop_when_client_leaves() -> None:
                    # The request body was already read, so the next message can only be the disconnect
                    # (which servers also report once the response is complete).
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    if not self._complete:
                        log.info("client went away mid-response; closing the upstream response")
                    tasks.cancel_scope.cancel()

                tasks.start_soon(relay)
                tasks.start_soon(stop_when_client_leaves)
        finally:
            try:
                await self.upstream.aclose()
            finally:
                self._release()

    async def _relay(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.upstream.status_code, "headers": self.raw_headers}
        )
        try:
            async for chunk in self.upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as exc:
            # Too late for a status code: leaving the body unfinished makes the server drop the connection,
            # which tells the client the response is truncated.
            log.warning("upstream failed mid-response: %s", str(exc) or type(exc).__name__)
            return
        self._complete = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class ConcurrencyLimit:
    """At most `limit` holders at once, first come first served; the limit may change while some wait
    (the agent learns llama-server's slot count from the server itself, after it has started serving)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> None:
        if self._held < self.limit and not self._waiters:
            self._held += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # resolved by _wake, which counts it as held
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # woken and cancelled at once: hand the slot on
            else:
                with contextlib.suppress(ValueError):  # _wake may have dropped it already
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self._held -= 1
        self._wake()

    def resize(self, limit: int) -> None:
        self.limit = limit
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._held < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._held += 1
                waiter.set_result(None)


class UpstreamProxy:
    def __init__(self, settings: ProxySettings, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        self._base_url = settings.upstream_url.rstrip("/")
        self._expected = f"Bearer {settings.secret}".encode()
        # Excess requests wait here rather than piling onto a model server sized for max_concurrency.
        self.slots = ConcurrencyLimit(settings.max_concurrency)

    def _authorized(self, request: Request) -> bool:
        presented = request.headers.get("authorization", "").encode("latin-1", "replace")
        return hmac.compare_digest(presented, self._expected)  # constant time: no secret-guessing by timing

    def _upstream_headers(self, request: Request) -> list[tuple[str, str]]:
        incoming = request.headers.items()
        dropped = _DROPPED_REQUEST_HEADERS | _connection_listed(incoming)
        headers = [
            (name, _as_uuid(value) if name == "x-request-id" else value)
            for name, value in incoming
            if name not in dropped
        ]
        if self._settings.upstream_api_key:
            headers.append(("authorization", f"Bearer {self._settings.upstream_api_key}"))
        if not any(name == "accept-encoding" for name, _ in headers):
            # Otherwise httpx would ask for gzip on the client's behalf, and the raw relay would hand a
            # compressed body to a client that never asked for one.
            headers.append(("accept-encoding", "identity"))
        return headers

    def _upstream_url(self, request: Request) -> str:
        # raw_path keeps the client's exact encoding of the path (scope["path"] is percent-decoded).
        path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        return self._base_url + path + (f"?{query}" if query else "")

    @staticmethod
    def _relayable(path: str) -> bool:
        # The gateway only ever sends the /v1/... API (CONTRACTS.md). Refusing the rest keeps a leaked secret
        # from reaching a model server's admin routes (Ollama's /api/pull, /api/delete); dot segments are
        # refused because the upstream would resolve "/v1/../api/..." back out of /v1.
        return path.startswith("/v1/") and not any(segment in (".", "..") for segment in path.split("/"))

    async def handle(self, request: Request) -> RelayedResponse | Response:
        if not self._authorized(request):
            return JSONResponse({"detail": "Invalid or missing agent secret."}, status_code=401)
        if not self._relayable(request.scope["path"]):
            return JSONResponse({"detail": "Not found."}, status_code=404)
        # Bodies are read whole before a slot is taken: a slow upload should not hold model capacity, and a
        # known length keeps picky upstreams (no chunked request support) happy.
        try:
            body = await request.body()
        except ClientDisconnect:  # gone mid-upload: nobody is left to answer
            return Response(status_code=400)
        upstream_request = self._client.build_request(
            request.method, self._upstream_url(request), headers=self._upstream_headers(request), content=body
        )
        await self.slots.acquire()
        try:
            upstream = await self._client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            self.slots.release()
            reason = str(exc) or type(exc).__name__
            log.warning("upstream %s unreachable: %s", self._base_url, reason)
            return upstream_error(f"The provider's model server did not respond: {reason}")
        except BaseException:
            self.slots.release()
            raise
        return RelayedResponse(upstream, self.slots.release)


def create_proxy_app(settings: ProxySettings, client: httpx.AsyncClient) -> Starlette:
    """The relay as an ASGI app; `app.state.proxy` is its UpstreamProxy (`proxy.slots.resize(n)`)."""
    proxy = UpstreamProxy(settings, client)
    app = Starlette(routes=[Route("/{path:path}", proxy.handle, methods=_ALL_METHODS)])
    app.state.proxy = proxy
    return app
