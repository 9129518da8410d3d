"""The one place webhook deliveries go out over HTTP.

Every delivery attempt is one call of `post_webhook`. Its connections go through `pinned_http`, like the
dispatcher's provider calls: the receiver's host is resolved and every address checked against the endpoint
policy when each connection opens, and the socket goes to the address that was checked (a name that
rebinds to 169.254.169.254 after registration is refused, not called); TLS keeps SNI and the certificate
check on the name. An attempt ends within `timeout_seconds` in total, however slowly the receiver trickles
its answer, and only the first MAX_ERROR_BODY bytes of a refusal are ever read. Redirects are never
followed (a 3xx is the receiver's answer, and following it could lead past the policy); nothing is read
from the environment (no proxies).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from switchyard.adapters import pinned_http
from switchyard.adapters.upstream import LOOP_CDN_ID, LOOP_HEADER
from switchyard.caches import on_reset
from switchyard.endpoint_policy import parse_endpoint_url
from switchyard.errors import InvalidRequest

USER_AGENT = "Switchyard-Webhooks/1 (+https://www.standardwebhooks.com)"
MAX_ERROR_BODY = 200  # bytes of a refusal's body read and kept in the delivery log

_lock = threading.Lock()
_client: httpx.Client | None = None


@dataclass(frozen=True)
class WebhookResponse:
    """What one attempt came to: an HTTP answer (`status_code`), or none (`error` says why)."""

    status_code: int | None
    error: str | None
    retry_after: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _shared_client() -> httpx.Client:
    """The process's pinned client, on the deployment's endpoint policy (built on first use)."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                client = pinned_http.new_client(
                    pinned_http.get_endpoint_guard(),
                    timeout=15.0,  # each call passes its own
                    limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                )
                # CDN-Loop as on provider calls: a receiver URL that leads back into a gateway is refused there.
                client.headers.update({"user-agent": USER_AGENT, LOOP_HEADER: LOOP_CDN_ID})
                _client = client
    return _client


def _forget_client() -> None:
    global _client
    with _lock:
        _client = None


on_reset(_forget_client)  # a new policy (tests, the local stack) needs a new client


def post_webhook(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_seconds: float,
) -> WebhookResponse:
    """POST one delivery and say how it went (never raises for the receiver's sake)."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        # A URL stored under older, looser rules is refused before anything is sent.
        parse_endpoint_url(url, field="url", allow_query=True)
    except InvalidRequest as refused:
        return WebhookResponse(None, f"refused by the endpoint policy: {refused.message}", None, elapsed())
    try:
        # Streamed, so that only the start of a receiver's answer is ever read, however large it is.
        with (
            pinned_http.deadline(timeout_seconds),
            _shared_client().stream(
                "POST", url, content=body, headers=headers, timeout=timeout_seconds
            ) as response,
        ):
            status = response.status_code
            retry_after = response.headers.get("retry-after")
            location = response.headers.get("location")
            head = b""
            if not 200 <= status < 300:
                for chunk in response.iter_bytes():
                    head += chunk
                    if len(head) >= MAX_ERROR_BODY:
                        break
    except httpx.TimeoutException:
        return WebhookResponse(None, f"no answer within {timeout_seconds:g} s", None, elapsed())
    except httpx.HTTPError as exc:
        if isinstance(exc.__cause__, pinned_http.ConnectionRefusedByPolicy):
            return WebhookResponse(None, f"refused by the endpoint policy: {exc}"[:300], None, elapsed())
        return WebhookResponse(None, f"{type(exc).__name__}: {exc}"[:300], None, elapsed())
    error = None
    if not 200 <= status < 300:
        snippet = head[:MAX_ERROR_BODY].decode("utf-8", errors="replace").strip()
        error = f"HTTP {status}" + (f": {snippet}" if snippet else "")
        if 300 <= status < 400:
            error += f" (redirect to {location or '?'} not followed)"
    return WebhookResponse(status, error, retry_after, elapsed())
