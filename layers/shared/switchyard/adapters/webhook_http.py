"""The one place webhook deliveries go out over HTTP.

Every delivery attempt is one call of `post_webhook`. The URL is checked against the endpoint policy again
at send time (its DNS may point somewhere else than when it was registered); redirects are never followed
(a 3xx is the receiver's answer, and following it could lead past the policy); nothing is read from the
environment (no proxies). Pinning the connection to the address that was checked belongs here too, so
that it covers every delivery at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from switchyard.endpoint_policy import check_endpoint_url
from switchyard.errors import InvalidRequest

USER_AGENT = "Switchyard-Webhooks/1 (+https://www.standardwebhooks.com)"
MAX_ERROR_BODY = 200  # characters of a refusal's body kept in the delivery log

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
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = httpx.Client(
                    follow_redirects=False,
                    trust_env=False,
                    headers={"user-agent": USER_AGENT},
                    limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                )
    return _client


def post_webhook(
    url: str, body: bytes, headers: dict[str, str], *, timeout_seconds: float, policy: str
) -> WebhookResponse:
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        check_endpoint_url(url, policy, field="url", allow_query=True)
    except InvalidRequest as refused:
        return WebhookResponse(None, f"refused by the endpoint policy: {refused.message}", None, elapsed())
    try:
        # Streamed, so that only the start of a receiver's answer is ever read, however large it is.
        with _shared_client().stream(
            "POST", url, content=body, headers=headers, timeout=timeout_seconds
        ) as response:
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
        return WebhookResponse(None, f"{type(exc).__name__}: {exc}"[:300], None, elapsed())
    error = None
    if not 200 <= status < 300:
        snippet = head[:MAX_ERROR_BODY].decode("utf-8", errors="replace").strip()
        error = f"HTTP {status}" + (f": {snippet}" if snippet else "")
        if 300 <= status < 400:
            error += f" (redirect to {location or '?'} not followed)"
    return WebhookResponse(status, error, retry_after, elapsed())
