"""The agent's HTTP face: the gateway's requests, checked against the shared secret, relayed upstream.

Responses are relayed byte for byte as they arrive, so SSE token streams reach the gateway as the model
server emits them and compressed bodies stay compressed with their headers intact. The head waits for the
first body bytes, so a model server that fails before them is a 502 `upstream_error`, and one that fails
after them is a truncated response (the connection drops).

The relay's HTTP client and its ASGI response are the gateway's own streaming relay's
(`switchyard.front.upstream_client`, `switchyard.front.relayed_response`; the agent is installed by the same
project), not httpx and an anyio task group: those cost the agent twice the CPU per streamed request and
added milliseconds to the first token after a pause (README, "Streaming under real token pacing").
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import logging
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from switchyard.front.relayed_response import RelayedResponse
from switchyard.front.upstream_client import StreamedResponse, TransportError, TransportTimeout, UpstreamPool
from switchyard.ids import provider_request_id

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
# `authorization` carries our secret, which the model server must never see; the client sets host and length.
_DROPPED_REQUEST_HEADERS = HOP_BY_HOP_HEADERS | {"host", "content-length", "authorization"}
# uvicorn writes its own `date` and `server`; forwarding the upstream's as well would duplicate them.
_DROPPED_RESPONSE_HEADERS = HOP_BY_HOP_HEADERS | {"date", "server"}

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


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


def upstream_error(message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "upstream_error"}}, status_code=502)


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
    def __init__(self, settings: ProxySettings, pool: UpstreamPool) -> None:
        self._settings = settings
        self._pool = pool
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
        # The gateway already sends a UUID (what llama-cpp-python's server insists on); mapping it here too
        # keeps an agent in front of an older gateway working. A UUID passes unchanged.
        headers = [
            (name, provider_request_id(value) if name == "x-request-id" else value)
            for name, value in incoming
            if name not in dropped
        ]
        if self._settings.upstream_api_key:
            headers.append(("authorization", f"Bearer {self._settings.upstream_api_key}"))
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
        url, headers = self._upstream_url(request), self._upstream_headers(request)
        await self.slots.acquire()
        try:
            upstream = await self._pool.request(request.method, url, headers, body)
        except TransportError as exc:
            self.slots.release()
            return self._unreachable(exc)
        except BaseException:
            self.slots.release()
            raise
        chunks = upstream.chunks()
        try:
            # The head waits for the first body bytes (or the end): head and first SSE event then leave
            # together, and until then a failure is still a proper 502.
            first_chunk = await anext(chunks, b"")
        except BaseException as exc:
            await chunks.aclose()
            await upstream.aclose()
            self.slots.release()
            if isinstance(exc, TransportError):
                return self._unreachable(exc)
            raise
        return RelayedResponse(
            upstream,
            chunks,
            first_chunk,
            status_code=upstream.status_code,
            headers=_relayed_headers(upstream),
            on_close=self.slots.release,
        )

    def _unreachable(self, error: TransportError) -> JSONResponse:
        reason = "timed out" if isinstance(error, TransportTimeout) else str(error) or type(error).__name__
        log.warning("upstream %s failed: %s", self._base_url, reason)
        return upstream_error(f"The provider's model server did not respond: {reason}")


def _relayed_headers(upstream: StreamedResponse) -> list[tuple[bytes, bytes]]:
    raw = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in upstream.raw_headers]
    dropped = _DROPPED_RESPONSE_HEADERS | _connection_listed(raw)
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in raw
        if name.lower() not in dropped
    ]


def create_proxy_app(settings: ProxySettings, pool: UpstreamPool) -> Starlette:
    """The relay as an ASGI app; `app.state.proxy` is its UpstreamProxy (`proxy.slots.resize(n)`)."""
    proxy = UpstreamProxy(settings, pool)
    app = Starlette(routes=[Route("/{path:path}", proxy.handle, methods=_ALL_METHODS)])
    app.state.proxy = proxy
    return app
