"""The HTTP client that calls provider agents (one pooled client per process), and its read loop.

A provider answer is read as it arrives, under two limits besides the per-read timeout: a size cap
(`max_bytes`: an answer growing past it is abandoned at once, so one provider cannot fill the memory
the other jobs of a dispatcher batch run in) and a total deadline (`deadline_seconds`: however the
answer trickles in, the call ends by then). Connections go through `pinned_http`: to an address the
endpoint policy allowed, checked when each connection opens.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from switchyard.adapters import pinned_http
from switchyard.caches import on_reset
from switchyard.errors import UpstreamError
from switchyard.ids import provider_request_id

_lock = threading.Lock()
_client: httpx.Client | None = None

# Response headers worth passing back to the caller; hop-by-hop and framing headers are not.
PASSTHROUGH_HEADERS = ("content-type", "content-disposition", "x-request-id", "openai-processing-ms")
# Set on every call to a provider (RFC 8586): a request carrying it that reaches a gateway came from one,
# and is refused there (api/request_guard.py), so a provider endpoint pointing back at a gateway costs one
# refused call instead of a chain of invocations.
LOOP_HEADER = "cdn-loop"
LOOP_CDN_ID = "switchyard"  # api/request_guard.py refuses it


@dataclass(frozen=True)
class UpstreamResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes


LOOP_DETECTED_STATUS = 508  # errors.LoopDetected: what a gateway answers a call that carries its CDN-Loop


class AnswerTooLarge(UpstreamError):
    """The provider's answer outgrew the size cap: no retry gets a smaller one."""


class CallLooped(UpstreamError):
    """The call came back to a Switchyard gateway (508, its CDN-Loop refusal): every retry would too."""


def provider_request_headers(secret: str, content_type: str, request_id: str | None = None) -> dict[str, str]:
    """What every call to a provider carries; `request_id` is sent in the UUID form providers accept
    (`ids.provider_request_id`: whoever logs our id can log this one beside it)."""
    headers = {
        "authorization": f"Bearer {secret}",
        "content-type": content_type,
        LOOP_HEADER: LOOP_CDN_ID,
        # A compressed answer could expand past the size cap in one read; an honest provider sends it plain.
        "accept-encoding": "identity",
    }
    if request_id:
        headers["x-request-id"] = provider_request_id(request_id)
    return headers


def get_client(timeout_seconds: float, connect_timeout_seconds: float) -> httpx.Client:
    """The process's client, on the deployment's endpoint policy (built on first use: the first caller's
    timeouts are its defaults, so callers pass their own per call)."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = pinned_http.new_client(
                    pinned_http.get_endpoint_guard(),
                    timeout=httpx.Timeout(timeout_seconds, connect=connect_timeout_seconds),
                )
    return _client


def _forget_client() -> None:
    global _client
    with _lock:
        _client = None


on_reset(_forget_client)  # a new policy (tests, the local stack) needs a new client


def post(
    client: httpx.Client,
    url: str,
    content: bytes,
    headers: dict[str, str],
    timeout: float | None = None,
    *,
    deadline_seconds: float | None = None,
    max_bytes: int | None = None,
) -> UpstreamResponse:
    """POST to a provider and read its whole answer, within `deadline_seconds` (the read timeout, `timeout`
    or the client's, bounds each silence) and `max_bytes`. Provider failures (5xx, timeouts, a dropped or
    refused connection, an oversized answer) are UpstreamError."""
    started = time.monotonic()
    try:
        with (
            pinned_http.deadline(deadline_seconds),
            client.stream(
                "POST",
                url,
                content=content,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            ) as response,
        ):
            body = _read_capped(response, max_bytes)
    except httpx.TimeoutException as exc:
        if deadline_seconds is not None and time.monotonic() - started >= deadline_seconds:
            raise UpstreamError.past_deadline(deadline_seconds) from exc
        raise UpstreamError(f"The provider did not respond in time ({type(exc).__name__}).") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"The provider could not be reached ({type(exc).__name__}: {exc}).") from exc
    except httpx.InvalidURL as exc:  # an endpoint stored before URLs were checked this strictly
        raise UpstreamError(f"The provider's endpoint URL is not usable ({exc}).") from exc
    if response.status_code == LOOP_DETECTED_STATUS:
        looped = UpstreamError.provider_status(response.status_code, body.decode(errors="replace"))
        raise CallLooped(looped.message)
    if response.status_code >= 500:
        raise UpstreamError.provider_status(response.status_code, body.decode(errors="replace"))
    kept = {k: v for k, v in response.headers.items() if k.lower() in PASSTHROUGH_HEADERS}
    return UpstreamResponse(response.status_code, kept, body)


def _read_capped(response: httpx.Response, max_bytes: int | None) -> bytes:
    if max_bytes is None:
        return response.read()
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise AnswerTooLarge.too_large(max_bytes, f"it declared {int(declared)} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise AnswerTooLarge.too_large(max_bytes, "it kept coming")
        chunks.append(chunk)
    return b"".join(chunks)
