"""Reusable OpenAPI response descriptions (the generated spec otherwise only knows 200 and 422)."""

from __future__ import annotations

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


def _error(description: str, schema: dict = _ERROR_SCHEMA) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


UNAUTHORIZED = {401: _error('Missing or invalid API key: {"detail": ...}', _DETAIL_SCHEMA)}
BAD_REQUEST = {400: _error('invalid_request (which field and why), or {"detail": ...} for malformed JSON')}
NO_PROVIDER = {404: _error("no_provider: no online provider of yours serves this model")}
UPSTREAM = {502: _error("upstream_error: the provider failed or did not respond")}
ASYNC_DISABLED = {503: _error("async_disabled: async processing is not enabled on this server")}
CONFLICT = {409: _error("conflict: the resource is not in a state that allows this")}
NOT_FOUND = {404: _error("not_found")}


def merge(*parts: dict) -> dict:
    merged: dict = {}
    for part in parts:
        merged.update(part)
    return merged


def ok(description: str, content_type: str = "application/json", schema: dict | None = None) -> dict:
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


def multipart_body(required: tuple[str, ...], files: tuple[str, ...]) -> dict:
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
