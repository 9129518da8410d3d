"""The one exception hierarchy a client can see, and `to_http`, the one place that turns it into HTTP.

Like httpx's `_exceptions.py`: code anywhere raises these (or lets anything else escape), and each
boundary (the API resolver's exception handlers, the pre-routing authentication check, the streaming
relay) answers `to_http(error)` in its own response type, so status, headers and envelope are decided
once. Inference routes answer OpenAI's envelope `{"error": {"message", "type"}}`; authentication
failures, malformed JSON and unknown routes answer `{"detail": "..."}` (the seed's Django REST Framework
defaults).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Self


class ApiError(Exception):
    status_code = 400
    error_type = "invalid_request"
    # Response headers the error itself calls for (a 401's challenge); to_http adds them.
    headers: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        # Headers the boundary that raised it adds (the rate-limit headers of an admitted request).
        self.extra_headers: dict[str, str] = {}

    def response_headers(self) -> Mapping[str, str]:
        """The headers this answer needs besides Content-Type (the class's, unless an error adds its own)."""
        return self.headers

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.error_type}
        if self.param:
            error["param"] = self.param
        return {"error": error}


class DetailError(ApiError):
    """An error reported in the `{"detail": ...}` shape."""

    def to_body(self) -> dict[str, Any]:
        return {"detail": self.message}


class AuthenticationFailed(DetailError):
    status_code = 401
    # RFC 6750 section 3: a 401 tells the client which scheme to authenticate with.
    headers: ClassVar[Mapping[str, str]] = MappingProxyType({"WWW-Authenticate": 'Bearer realm="api"'})


class MalformedJson(DetailError):
    status_code = 400


class UnknownRoute(DetailError):
    status_code = 404

    def __init__(self, path: str):
        super().__init__(f"Not found: {path}")


class MethodNotAllowed(DetailError):
    """The path exists, for other methods (RFC 9110 section 15.5.6: the answer lists them in Allow)."""

    status_code = 405

    def __init__(self, method: str, allowed: list[str]):
        super().__init__(f'Method "{method}" not allowed.')
        self.allowed = allowed

    def response_headers(self) -> Mapping[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class UnsupportedMediaType(DetailError):
    status_code = 415

    def __init__(self, content_type: str, expected: str = "application/json"):
        super().__init__(f'Unsupported media type "{content_type}" in request; send {expected}.')


class InvalidRequest(ApiError):
    status_code = 400
    error_type = "invalid_request"


class TooLarge(ApiError):
    status_code = 400
    error_type = "too_large"


class NotFound(ApiError):
    status_code = 404
    error_type = "not_found"


class Conflict(ApiError):
    status_code = 409
    error_type = "conflict"


class NoProvider(ApiError):
    status_code = 404
    error_type = "no_provider"

    def __init__(self, model: str):
        super().__init__(f"No online provider serving model '{model}' for this user.")
        self.model = model


class UpstreamError(ApiError):
    status_code = 502
    error_type = "upstream_error"

    @classmethod
    def provider_status(cls, status_code: int, body: str) -> UpstreamError:
        """A provider's own 5xx, as every path reports it (synchronous, streaming, async jobs)."""
        return cls(f"The provider returned HTTP {status_code}: {body[:300]}".rstrip(": "))

    @classmethod
    def past_deadline(cls, deadline_seconds: float) -> UpstreamError:
        """A provider answer (or stream) not complete within its total deadline, as every path reports it."""
        return cls(
            f"The provider did not respond in time: its answer was not complete within the "
            f"{deadline_seconds:g} s deadline."
        )

    @classmethod
    def too_large(cls, max_bytes: int, how: str) -> Self:
        """A provider answer (or stream) that outgrew the size cap, as every path reports it."""
        return cls(
            f"The provider's answer is larger than the {max_bytes}-byte limit ({how}); "
            "the deployment's MaxProviderResponseBytes sets it."
        )


class AsyncDisabled(ApiError):
    status_code = 503
    error_type = "async_disabled"

    def __init__(self, message: str = "Async processing is not enabled on this server."):
        super().__init__(message)


class RateLimited(ApiError):
    """Over the account's requests per minute or jobs in flight (services/rate_limits.py)."""

    status_code = 429
    error_type = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float, limit_headers: Mapping[str, str]):
        super().__init__(message)
        self.retry_after = max(0.001, retry_after)
        self.limit_headers = dict(limit_headers)

    def response_headers(self) -> Mapping[str, str]:
        # Retry-After in whole seconds (RFC 9110); retry-after-ms is what the OpenAI SDKs read first.
        return {
            "Retry-After": str(math.ceil(self.retry_after)),
            "retry-after-ms": str(int(self.retry_after * 1000)),
            **self.limit_headers,
        }


class LoopDetected(ApiError):
    """The request came from a gateway calling a provider whose endpoint leads back to a gateway."""

    status_code = 508
    error_type = "loop_detected"

    def __init__(self) -> None:
        super().__init__(
            "This request was sent by a Switchyard gateway to a provider (it carries CDN-Loop: switchyard): "
            "a provider endpoint must not lead back to a gateway, so it is refused."
        )


class InternalError(ApiError):
    """What a client learns of a failure nobody anticipated (the details go to the log, not the wire)."""

    status_code = 500
    error_type = "internal_error"

    def __init__(self, message: str = "Internal server error."):
        super().__init__(message)


@dataclass(frozen=True)
class ErrorResponse:
    """An error as HTTP, ready for any framework's response type."""

    status: int
    headers: Mapping[str, str]  # Content-Type included
    body: str  # JSON text


def to_http(error: BaseException) -> ErrorResponse:
    """The HTTP answer to `error`: an ApiError as it says; anything else as a bare 500 internal_error."""
    api_error = error if isinstance(error, ApiError) else InternalError()
    return ErrorResponse(
        status=api_error.status_code,
        headers={
            "Content-Type": "application/json",
            **api_error.response_headers(),
            **api_error.extra_headers,
        },
        body=json.dumps(api_error.to_body()),
    )
