"""How a route says what it accepts and answers, so /openapi.json describes the API as it behaves.

The document is what generated clients and fuzzers build requests from, and a fuzzer run against the local
stack (tests/e2e/test_e2e_fuzz.py) holds every answer to it. A route documents itself with these pieces
(see docs/CONTRACTS.md, "Documenting a route"):

- path ids: `JobId`, `BatchId`, `RunId`, `StepId` (or `path_id(pattern, what)` for a new kind of id):
  documented with their pattern; an id of another shape is a 404 like any unknown id;
- queries: `Annotated[int, limit_query(maximum)]`, `Annotated[str | None, after_query(pattern)]`;
- answers: `ok(Model)`, `accepted(Model)` and `errors(400, 401, ...)`, each status with the envelope this
  API really answers it in (`shapes.py` holds the models), plus `binary(...)`, `passthrough(...)`;
- bodies a route parses itself (so that it can report `too_large` or name a batch item): `body(Model or
  schema)` and `header(name, schema)` go in the route's `openapi_extensions`, and `openapi_document`
  moves them where OpenAPI wants them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, TypeAdapter

from switchyard.api import shapes
from switchyard.api.request_guard import IDEMPOTENCY_KEY_PATTERN

JSON = "application/json"
# The extension a route's `openapi_extensions` carries its own documentation in (see `body`).
EXTENSION = "x-switchyard"
COMPONENTS = "#/components/schemas/{model}"

# ------------------------------------------------------------------ path ids and queries


def path_id(pattern: str, what: str) -> Any:
    """A path id: documented with its exact pattern, and only its length enforced. An id of another shape
    names nothing, so it is a 404 like any unknown id (not a 400: a client that asks for a made-up id
    learns the same thing either way)."""
    return Annotated[
        str,
        Path(
            description=f"The {what} id, as the API returned it.",
            max_length=MAX_ID_LENGTH,
            json_schema_extra={"pattern": pattern},
        ),
    ]


MAX_ID_LENGTH = 64
JobId = path_id(shapes.JOB_ID, "job")
BatchId = path_id(shapes.BATCH_ID, "batch")
RunId = path_id(shapes.RUN_ID, "workflow run")
AssetId = path_id(shapes.JOB_ID, "asset (its job's)")
# Like an id: documented with its pattern, only its length enforced, anything else a 404.
AssetIndex = Annotated[
    str,
    Path(
        description="The asset's place in the job's `assets`: 0 is the first (the job's `result_url`).",
        max_length=6,
        json_schema_extra={"pattern": "^[0-9]{1,6}$"},
    ),
]
GenerationId = path_id(shapes.JOB_ID, "generation (job)")
WebhookId = path_id(shapes.WEBHOOK_ID, "webhook (wh_...)")
DeliveryId = path_id(shapes.DELIVERY_ID, "delivery (msg_...), also its webhook-id header,")
KeyId = path_id(shapes.KEY_ID, "key (key_...)")
StepId = Annotated[
    str,
    Path(
        description="The step id, as in the spec.",
        max_length=MAX_ID_LENGTH,
        json_schema_extra={"pattern": shapes.STEP_ID_PATTERN},
    ),
]


# Used as `limit: Annotated[int, docs.limit_query(N)] = 50` (a call is no annotation to mypy; this is).
def limit_query(maximum: int) -> Any:
    return Query(description=f"Max results (1-{maximum})", ge=1, le=maximum)


def after_query(pattern: str) -> Any:
    """`after: Annotated[str | None, docs.after_query(pattern)] = None`"""
    return Query(description="Page further: the last id of the previous page", pattern=pattern)


# ------------------------------------------------------------------ answers


def _content(model: Any, content_type: str = JSON) -> dict[str, Any]:
    return {content_type: {"model": model}}


def ok(model: Any, description: str = "OK", status: int = 200) -> dict[int, Any]:
    return {status: {"description": description, "content": _content(model)}}


def accepted(model: Any, description: str) -> dict[int, Any]:
    return ok(model, description, status=202)


_ERRORS: dict[int, tuple[str, Any]] = {
    400: (
        "invalid_request or too_large (naming the field and why), or {detail} for malformed JSON",
        shapes.ErrorEnvelope | shapes.DetailError,
    ),
    401: ('Missing or invalid API key: {"detail": ...}', shapes.DetailError),
    404: ("not_found, or no_provider: no online provider of yours serves this model", shapes.ErrorEnvelope),
    409: ("conflict: the resource is not in a state that allows this", shapes.ErrorEnvelope),
    415: ('The body is not JSON: {"detail": ...}', shapes.DetailError),
    429: (
        "rate_limit_exceeded: over the account's requests per minute or jobs in flight (Retry-After says "
        "when to try again)",
        shapes.ErrorEnvelope,
    ),
    502: ("upstream_error: the provider failed or did not respond", shapes.ErrorEnvelope),
    503: ("async_disabled: async processing is not enabled on this server", shapes.ErrorEnvelope),
}


def errors(*statuses: int) -> dict[int, Any]:
    """The documented error answers of these statuses."""
    return {
        status: {"description": _ERRORS[status][0], "content": _content(_ERRORS[status][1])}
        for status in statuses
    }


# Single answers, for routes that list them one by one (`docs.merge(docs.UNAUTHORIZED, docs.NOT_FOUND)`).
UNAUTHORIZED = errors(401)
BAD_REQUEST = errors(400)
NOT_FOUND = errors(404)
CONFLICT = errors(409)
ASYNC_DISABLED = errors(503)


def merge(*parts: dict[Any, Any]) -> dict[Any, Any]:
    merged: dict[Any, Any] = {}
    for part in parts:
        merged.update(part)
    return merged


def content(*media_types: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {media_type: {"schema": schema or {}} for media_type in media_types}


# ------------------------------------------------------------------ bodies and headers a route parses itself


def schema_of(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the JSON schema of a model or type, the component schemas it refers to)."""
    schema = TypeAdapter(model).json_schema(ref_template=COMPONENTS)
    components = schema.pop("$defs", {})
    if isinstance(model, type) and issubclass(model, BaseModel):
        components[model.__name__] = schema
        schema = {"$ref": COMPONENTS.format(model=model.__name__)}
    return schema, components


def body(
    schema: Any, *, content_type: str = JSON, required: bool = True, description: str | None = None
) -> dict[str, Any]:
    """A request body the route parses itself, for its `openapi_extensions`: a model, a type, or a JSON
    schema (with `components` beside it for what it refers to)."""
    if isinstance(schema, dict):
        schema = copy.deepcopy(schema)
        components = schema.pop("components", {})
    else:
        schema, components = schema_of(schema)
    request_body: dict[str, Any] = {"required": required, "content": {content_type: {"schema": schema}}}
    if description:
        request_body["description"] = description
    return {EXTENSION: {"requestBody": request_body, "components": components}}


def header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional request header the route reads itself."""
    return {
        EXTENSION: {
            "parameters": [
                {
                    "name": name,
                    "in": "header",
                    "required": False,
                    "schema": schema,
                    "description": description,
                }
            ]
        }
    }


_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": ("The account's requests per minute", "integer"),
    "x-ratelimit-remaining-requests": ("What is left of them in this minute", "integer"),
    "x-ratelimit-reset-requests": ("When the minute ends (59s, 1m0s, 250ms)", "string"),
}
_RETRY_HEADERS = {
    "Retry-After": ("Seconds to wait before trying again", "integer"),
    "retry-after-ms": ("The same, in milliseconds", "integer"),
}
# Counted against the account's rate limits (api/admission.py): every answer after authentication carries
# the x-ratelimit headers, and the route may answer 429.
RATE_LIMITED = {EXTENSION: {"rate_limited": True}}


def _headers(spec: dict[str, tuple[str, str]]) -> dict[str, Any]:
    return {
        name: {"description": text, "required": True, "schema": {"type": kind}}
        for name, (text, kind) in spec.items()
    }


def extensions(*parts: dict[str, Any]) -> dict[str, Any]:
    """Several of `body` and `header` for one route."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part[EXTENSION].items():
            if key == "parameters":
                merged.setdefault("parameters", []).extend(value)
            elif key in ("components", "responses"):
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
    return {EXTENSION: merged}


IDEMPOTENCY_KEY = header(
    "Idempotency-Key",
    {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
    "Deduplicates retried submissions: the same key (and body) returns the existing resource. 1 to 255 "
    "visible ASCII characters (a UUID, say).",
)
# One Server-Sent Event (`stream: true`), as a client reads it.
SSE_EVENT = {
    "type": "object",
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"}},
    "required": ["data"],
}


def multipart_body(
    required: tuple[str, ...], files: tuple[str, ...], optional: Iterable[str] = ()
) -> dict[str, Any]:
    """A multipart/form-data upload: text fields and files (each required one non-empty)."""
    properties: dict[str, Any] = {}
    for name in dict.fromkeys(("model", *required, *files, *optional)):
        field: dict[str, Any] = (
            {"type": "string", "format": "binary"} if name in files else {"type": "string"}
        )
        if name in required:
            field["minLength"] = 1
        properties[name] = field
    return body(
        {"type": "object", "properties": properties, "required": list(required)},
        content_type="multipart/form-data",
    )


# ------------------------------------------------------------------ the whole document


def finish_document(spec: dict[str, Any]) -> dict[str, Any]:
    """Turn what Powertools generated into what the API does (called once per document)."""
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            own = operation.pop(EXTENSION, None) or {}
            for name, schema in own.get("components", {}).items():
                components.setdefault(name, schema)
            if "requestBody" in own:
                operation["requestBody"] = own["requestBody"]
            operation.setdefault("responses", {}).update(own.get("responses", {}))
            if own.get("rate_limited"):
                _document_rate_limits(operation)
            operation.setdefault("parameters", []).extend(own.get("parameters", []))
            if not operation["parameters"]:
                del operation["parameters"]
            for parameter in operation.get("parameters", []):
                _drop_null(parameter)
            # Powertools documents 422 for validation errors; this API answers 400 (documented per route).
            operation.get("responses", {}).pop("422", None)
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        components.pop(name, None)
    return spec


def _document_rate_limits(operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    description, model = _ERRORS[429]
    responses.setdefault("429", {"description": description, "content": {JSON: {"schema": _ref(model)}}})
    for status, response in responses.items():
        if status == "401":  # authentication comes first: an unknown caller is not counted
            continue
        headers = response.setdefault("headers", {})
        headers.update(_headers(_LIMIT_HEADERS))
        if status == "429":
            headers.update(_headers(_RETRY_HEADERS))


def _ref(model: Any) -> dict[str, str]:
    return {"$ref": COMPONENTS.format(model=model.__name__)}


def _drop_null(parameter: dict[str, Any]) -> None:
    """An optional query or header parameter is absent, never null: `str | None` documents as `string`."""
    schema = parameter.get("schema") or {}
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [option for option in options if option != {"type": "null"}]
        if len(kept) == 1:
            del schema["anyOf"]
            schema.update(kept[0])
