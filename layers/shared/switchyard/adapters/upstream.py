"""The HTTP client that calls provider agents (one pooled client per process)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import httpx

from switchyard.errors import UpstreamError
from switchyard.ids import provider_request_id

_lock = threading.Lock()
_client: httpx.Client | None = None

# Response headers worth passing back to the caller; hop-by-hop and framing headers are not.
PASSTHROUGH_HEADERS = ("content-type", "content-disposition", "x-request-id", "openai-processing-ms")


@dataclass(frozen=True)
class UpstreamResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes


def provider_request_headers(secret: str, content_type: str, request_id: str | None = None) -> dict[str, str]:
    """What every call to a provider carries; `request_id` is sent in the UUID form providers accept
    (`ids.provider_request_id`: whoever logs our id can log this one beside it)."""
    headers = {"authorization": f"Bearer {secret}", "content-type": content_type}
    if request_id:
        headers["x-request-id"] = provider_request_id(request_id)
    return headers


def get_client(timeout_seconds: float, connect_timeout_seconds: float) -> httpx.Client:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = httpx.Client(
                    timeout=httpx.Timeout(timeout_seconds, connect=connect_timeout_seconds),
                    # httpx writes a request's headers and body separately; without TCP_NODELAY, Nagle holds
                    # the body until the provider's delayed ACK (~40 ms on Linux) on a reused connection.
                    transport=httpx.HTTPTransport(
                        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                    ),
                    follow_redirects=False,  # a redirect could point anywhere, past the endpoint policy
                    trust_env=False,
                )
    return _client


def post(
    client: httpx.Client,
    url: str,
    content: bytes,
    headers: dict[str, str],
    timeout: float | None = None,
    *,
    deadline_seconds: float | None = None,
) -> UpstreamResponse:
    """POST to a provider; provider failures (5xx, timeouts, dropped connections) become UpstreamError.

    `timeout` bounds each connect, write and read; `deadline_seconds` bounds the whole call (a provider
    trickling bytes never trips a per-read timeout). The deadline is checked between the chunks read, and
    no read may wait longer than the deadline, so a call ends within twice the deadline at worst.
    (A minimal form: the owner of this module's read loop makes it exact.)
    """
    try:
        if deadline_seconds is None:
            response = client.post(
                url,
                content=content,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        else:
            response = _post_before(client, url, content, headers, timeout, deadline_seconds)
    except httpx.TimeoutException as exc:
        raise UpstreamError(f"The provider did not respond in time ({type(exc).__name__}).") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"The provider could not be reached ({type(exc).__name__}: {exc}).") from exc
    if response.status_code >= 500:
        raise UpstreamError.provider_status(response.status_code, response.text)
    kept = {k: v for k, v in response.headers.items() if k.lower() in PASSTHROUGH_HEADERS}
    return UpstreamResponse(response.status_code, kept, response.content)


def _post_before(
    client: httpx.Client,
    url: str,
    content: bytes,
    headers: dict[str, str],
    timeout: float | None,
    deadline_seconds: float,
) -> httpx.Response:
    deadline = time.monotonic() + deadline_seconds
    per_operation = min(timeout, deadline_seconds) if timeout is not None else deadline_seconds
    request = client.build_request("POST", url, content=content, headers=headers, timeout=per_operation)
    response = client.send(request, stream=True)
    try:
        chunks = []
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise UpstreamError(f"The provider did not answer within {deadline_seconds:g} s.")
    finally:
        response.close()
    # The body is decoded already: the headers that framed or encoded it stay behind.
    kept = [(k, v) for k, v in response.headers.items() if k.lower() in PASSTHROUGH_HEADERS]
    return httpx.Response(response.status_code, headers=kept, content=b"".join(chunks))
