"""Turn raw request bodies into validated values, with errors that say which field and why."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from switchyard.errors import InvalidRequest, MalformedJson
from switchyard.schemas import BODY_MODELS, InferenceBody

# A \uD800-\uDFFF escape: the cheap test before the exact one (most bodies have none).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def loads_strict(text: str | bytes) -> Any:
    """JSON as RFC 8259 has it, and nothing a store or a provider would choke on later.

    Python's json module also reads NaN and Infinity (and 1e999 as infinity), and escapes of lone UTF-16
    surrogates ("\\ud800") into strings that cannot be encoded as UTF-8: each of those would fail far from
    here (a DynamoDB write, the body sent to a provider) as a 500. They are refused as malformed JSON, as
    is nesting too deep for the parser. Raises ValueError.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nesting is too deep") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)") from None
    return data


def json_body_deserializer(text: str) -> Any:
    """`loads_strict` for the Powertools resolver, which reports only a JSONDecodeError as malformed JSON."""
    try:
        return loads_strict(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc), text if isinstance(text, str) else "", 0) from exc


def parse_json_object(raw: bytes | str | None) -> dict[str, Any]:
    if raw is None or raw == b"" or raw == "":
        raise MalformedJson("JSON parse error - request body is empty.")
    try:
        data = loads_strict(raw)
    except ValueError as exc:
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
