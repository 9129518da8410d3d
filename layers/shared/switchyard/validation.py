"""Turn raw request bodies into validated values, with errors that say which field and why."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from switchyard.errors import InvalidRequest, MalformedJson
from switchyard.schemas import BODY_MODELS, InferenceBody


def parse_json_object(raw: bytes | str | None) -> dict[str, Any]:
    if raw is None or raw == b"" or raw == "":
        raise MalformedJson("JSON parse error - request body is empty.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJson(f"JSON parse error - {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    return data


def describe_validation_error(exc: ValidationError, prefix: str = "") -> tuple[str, str | None]:
    """One readable sentence naming every bad field, plus the first field as OpenAI's `param`."""
    parts = []
    first_param = None
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        field = ".".join(loc)
        if first_param is None and field:
            first_param = field
        message = err.get("msg", "invalid value")
        parts.append(f"{prefix}{field}: {message}" if field else f"{prefix}{message}".rstrip(": "))
    return "; ".join(parts) or "invalid request body", first_param


def validate_inference_body(path: str, data: dict[str, Any], prefix: str = "") -> InferenceBody:
    model_cls = BODY_MODELS[path]
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        message, param = describe_validation_error(exc, prefix)
        raise InvalidRequest(message, param=param) from exc


def provider_body(data: dict[str, Any]) -> dict[str, Any]:
    """The body a provider receives: the caller's own fields, minus the gateway's `async` flag."""
    return {k: v for k, v in data.items() if k != "async"}
