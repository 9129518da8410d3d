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
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar


class ApiError(Exception):
    status_code = 400
    error_type = "invalid_request"
    # Response headers the error itself calls for (a 401's challenge); to_http adds them.
    headers: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param

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


class AsyncDisabled(ApiError):
    status_code = 503
    error_type = "async_disabled"

    def __init__(self, message: str = "Async processing is not enabled on this server."):
        super().__init__(message)


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
        headers={"Content-Type": "application/json", **api_error.headers},
        body=json.dumps(api_error.to_body()),
    )
