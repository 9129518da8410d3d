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


WEBHOOK_ID = "webhook_id"  # in `metadata`: which webhook endpoint hears of the async work's end


def provider_body(data: dict[str, Any]) -> dict[str, Any]:
    """The body a provider receives: the caller's own fields, minus the gateway's: the `async` flag and
    `metadata.webhook_id`. The rest of `metadata` passes unchanged; a `metadata` left empty is dropped."""
    body = {k: v for k, v in data.items() if k != "async"}
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and (WEBHOOK_ID in metadata or not metadata):
        kept = {k: v for k, v in metadata.items() if k != WEBHOOK_ID}
        if kept:
            body["metadata"] = kept
        else:
            del body["metadata"]
    return body


def gateway_fields(data: dict[str, Any]) -> dict[str, Any]:
    """What provider_body takes out, as the caller sent it (the generation shows the original request)."""
    taken: dict[str, Any] = {}
    if "async" in data:
        taken["async"] = data["async"]
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and (WEBHOOK_ID in metadata or not metadata):
        taken["metadata"] = metadata
    return taken


def webhook_id_of(data: dict[str, Any], where: str = "") -> str | None:
    """The webhook endpoint a request names in `metadata.webhook_id`, if any."""
    metadata = data.get("metadata")
    if not isinstance(metadata, dict) or WEBHOOK_ID not in metadata:
        return None
    value = metadata[WEBHOOK_ID]
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(
            f"{where}metadata.webhook_id must be the id of one of your webhooks (wh_...).",
            param=f"{where}metadata.webhook_id",
        )
    return value
