"""Read the fields of a multipart/form-data body (to route and validate it; the body itself is forwarded
byte for byte)."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP

from switchyard.errors import InvalidRequest


def form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise InvalidRequest("This endpoint takes multipart/form-data with a boundary.")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise InvalidRequest("Malformed multipart/form-data body.")
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True)  # bytes, or None for a nested multipart part
        fields[str(name)] = payload if isinstance(payload, bytes) else b""
    return fields


def require_fields(fields: dict[str, bytes], required: tuple[str, ...]) -> None:
    missing = [name for name in required if not fields.get(name)]
    if missing:
        raise InvalidRequest(f"Missing required form field(s): {', '.join(missing)}.", param=missing[0])
