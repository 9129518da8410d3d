"""Domain errors and the one place that maps them to the wire envelopes.

Inference routes answer OpenAI's envelope `{"error": {"message", "type"}}`; authentication failures and
malformed JSON answer `{"detail": "..."}` (the seed's Django REST Framework defaults).
"""

from __future__ import annotations


class ApiError(Exception):
    status_code = 400
    error_type = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param

    def to_body(self) -> dict:
        error: dict = {"message": self.message, "type": self.error_type}
        if self.param:
            error["param"] = self.param
        return {"error": error}


class DetailError(ApiError):
    """An error reported in the `{"detail": ...}` shape."""

    def to_body(self) -> dict:
        return {"detail": self.message}


class AuthenticationFailed(DetailError):
    status_code = 401


class MalformedJson(DetailError):
    status_code = 400


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


class AsyncDisabled(ApiError):
    status_code = 503
    error_type = "async_disabled"

    def __init__(self, message: str = "Async processing is not enabled on this server."):
        super().__init__(message)
