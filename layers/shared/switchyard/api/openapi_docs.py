"""Reusable OpenAPI response descriptions (the generated spec otherwise only knows 200 and 422)."""

from __future__ import annotations

from typing import Any

_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": "string"},
            },
            "required": ["message", "type"],
        }
    },
}
_DETAIL_SCHEMA = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}


# What Powertools' `responses=` takes: status code -> OpenAPI response object.
Responses = dict[int, Any]


def _error(description: str, schema: dict[str, Any] = _ERROR_SCHEMA) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


UNAUTHORIZED: Responses = {401: _error('Missing or invalid API key: {"detail": ...}', _DETAIL_SCHEMA)}
BAD_REQUEST: Responses = {
    400: _error('invalid_request (which field and why), or {"detail": ...} for malformed JSON')
}
NO_PROVIDER: Responses = {404: _error("no_provider: no online provider of yours serves this model")}
UPSTREAM: Responses = {502: _error("upstream_error: the provider failed or did not respond")}
ASYNC_DISABLED: Responses = {503: _error("async_disabled: async processing is not enabled on this server")}
CONFLICT: Responses = {409: _error("conflict: the resource is not in a state that allows this")}
NOT_FOUND: Responses = {404: _error("not_found")}


def merge(*parts: Responses) -> Responses:
    merged: Responses = {}
    for part in parts:
        merged.update(part)
    return merged


def ok(
    description: str, content_type: str = "application/json", schema: dict[str, Any] | None = None
) -> Responses:
    return {
        200: {"description": description, "content": {content_type: {"schema": schema or {"type": "object"}}}}
    }


INFERENCE_RESPONSES = merge(
    {
        200: {
            "description": "The provider's answer, passed through (JSON, Server-Sent Events when "
            "stream is true, or binary media with its content type).",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/event-stream": {"schema": {"type": "string"}},
            },
        },
        202: {
            "description": 'With "async": true: the job envelope (see /v1/jobs).',
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
    BAD_REQUEST,
    UNAUTHORIZED,
    NO_PROVIDER,
    UPSTREAM,
    ASYNC_DISABLED,
)


def multipart_body(required: tuple[str, ...], files: tuple[str, ...]) -> dict[str, Any]:
    properties = {
        name: ({"type": "string", "format": "binary"} if name in files else {"type": "string"})
        for name in dict.fromkeys(("model", *required, *files))
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": properties, "required": list(required)}
                }
            },
        }
    }
