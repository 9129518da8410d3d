"""What a request body must be before any route (or Powertools' validation) reads it.

Every POST route of this API takes JSON, except the upload endpoints, which take multipart/form-data
(`catalog.Endpoint.multipart`). A JSON route refuses another declared media type with 415 (the seed's
Django REST Framework answer), and a body that is not UTF-8 with the usual malformed-JSON 400, instead of
letting Powertools try it as a form (a multipart type without a boundary was a 500) or decode it (a
non-UTF-8 body was a 500). The body is handed on as text with `Content-Type: application/json`, so
Powertools' JSON parse is the only one left to fail, and fails as malformed JSON.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from switchyard.catalog import endpoint_for
from switchyard.errors import InvalidRequest, LoopDetected, MalformedJson, UnsupportedMediaType

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_MEDIA_TYPE = "application/json"
# Visible ASCII: a key is stored and compared as it is sent, and header values are not text otherwise.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


LOOP_CDN_ID = "switchyard"  # what adapters/upstream.py sends as CDN-Loop on every call to a provider


def refuse_loops(headers: dict[str, Any]) -> None:
    """A request that a gateway sent to a provider must not come back in (RFC 8586's CDN-Loop lists every
    intermediary it passed; ours is "switchyard"): LoopDetected, before anything else happens."""
    value = headers.get("cdn-loop")
    if value is None:
        return
    for entry in str(value).split(","):
        if entry.split(";", 1)[0].strip().lower() == LOOP_CDN_ID:
            raise LoopDetected()


def check_idempotency_key(headers: dict[str, Any]) -> None:
    """Wherever it is sent, an Idempotency-Key is well formed (400 otherwise), even where it is ignored."""
    key = headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.match(str(key)):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces).", param="Idempotency-Key"
        )


def is_json_media_type(content_type: str) -> bool:
    """application/json or any +json type (parameters such as charset aside); an absent type counts too."""
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or media == JSON_MEDIA_TYPE or media.endswith("+json")


def takes_multipart(path: str) -> bool:
    endpoint = endpoint_for(path)
    return endpoint is not None and endpoint.multipart


def normalise_json_body(event: dict[str, Any], path: str) -> None:
    """Check the body of a JSON route and rewrite it as UTF-8 text; raises MalformedJson or
    UnsupportedMediaType. Multipart routes and bodiless requests are left alone."""
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", "")).upper()
    body = event.get("body")
    headers = event.setdefault("headers", {})
    if method in _BODY_METHODS:
        check_idempotency_key(headers)
    if method not in _BODY_METHODS or not body or takes_multipart(path):
        return
    content_type = str(headers.get("content-type", ""))
    if not is_json_media_type(content_type):
        raise UnsupportedMediaType(content_type)
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedJson("JSON parse error - the body is not valid base64.") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedJson(
                f"JSON parse error - the body is not valid UTF-8 (byte 0x{raw[error.start]:02x} at "
                f"position {error.start})."
            ) from None
        event["body"] = text
        event["isBase64Encoded"] = False
    headers["content-type"] = JSON_MEDIA_TYPE
