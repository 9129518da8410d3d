"""The resolver's exception handlers: each turns what a route raised into `switchyard.errors.to_http`'s
answer, as a Powertools Response."""

from __future__ import annotations

import logging

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from switchyard.errors import ApiError, InvalidRequest, MalformedJson, UnknownRoute, to_http

logger = logging.getLogger(__name__)


def error_response(error: BaseException) -> Response[str]:
    answer = to_http(error)
    return Response(status_code=answer.status, body=answer.body, headers=dict(answer.headers))


def from_validation_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "invalid JSON")
            return MalformedJson(f"JSON parse error - {reason}")
    parts, param = [], None
    for err in errors:
        field = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        param = param or field or None
        parts.append(
            f"{field}: {err.get('msg', 'invalid value')}" if field else err.get("msg", "invalid value")
        )
    return InvalidRequest("; ".join(parts) or "Invalid request.", param=param)


def register(app: APIGatewayHttpResolver) -> None:
    @app.exception_handler(ApiError)
    def _api_error(exc: ApiError) -> Response[str]:
        if exc.status_code >= 500:
            logger.warning("request failed", extra={"error_type": exc.error_type, "error": exc.message})
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    def _validation_error(exc: RequestValidationError) -> Response[str]:
        return error_response(from_validation_error(exc))

    @app.not_found
    def _not_found(_exc: Exception) -> Response[str]:
        return error_response(UnknownRoute(app.current_event.path))
