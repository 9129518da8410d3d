"""API Gateway HTTP API payload format 2.0, both ways: ASGI request -> event, handler result -> response.

Faithful to what API Gateway sends, because the same handler runs behind the real HTTP API: repeated
headers and query parameters are comma-joined, cookies move to `cookies`, and bodies that are not text
arrive base64-encoded with `isBase64Encoded: true`.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus

_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-www-form-urlencoded",
        "application/graphql",
        "application/x-ndjson",
        "application/yaml",
    }
)


@dataclass(frozen=True)
class RequestInfo:
    """Per-request values the event needs beyond the ASGI scope."""

    request_id: str
    account_id: str = "123456789012"
    api_id: str = "local"
    source_ip: str | None = None


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_text_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return (
        media_type.startswith("text/")
        or media_type in _TEXT_TYPES
        or media_type.endswith("+json")
        or media_type.endswith("+xml")
    )


def build_event(scope: Mapping[str, Any], body: bytes, info: RequestInfo) -> dict[str, Any]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
        elif name in headers:
            headers[name] = f"{headers[name]},{value}"
        else:
            headers[name] = value

    # API Gateway always tells the integration the scheme the client used; links the API builds
    # (result_url) depend on it. Behind the Function URL or the local stack it is the ASGI scheme.
    headers.setdefault("x-forwarded-proto", scope.get("scheme", "http"))

    raw_query = scope.get("query_string", b"").decode("latin-1")
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
    now = time.time()
    host = headers.get("host", "localhost")
    client = scope.get("client")
    http_version = scope.get("http_version", "1.1")

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": info.account_id,
            "apiId": info.api_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": scope["method"],
                "path": path,
                "protocol": f"HTTP/{http_version}",
                "sourceIp": info.source_ip or (client[0] if client else "127.0.0.1"),
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": info.request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = _query_parameters(raw_query)
    if body:
        if _is_text_body(headers.get("content-type"), body):
            event["body"] = body.decode("utf-8")
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _is_text_body(content_type: str | None, body: bytes) -> bool:
    if content_type is not None and not is_text_content_type(content_type):
        return False
    try:  # A declared text type (or none) still has to be valid UTF-8 to travel as a JSON string.
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _query_parameters(raw_query: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for pair in raw_query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name, value = unquote_plus(name), unquote_plus(value)
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    return parameters


# ---------------------------------------------------------------- result -> response


@dataclass(frozen=True)
class HttpResponseParts:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def response_from_result(result: Any) -> HttpResponseParts:
    """What API Gateway does with a payload-2.0 handler result."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # No statusCode: API Gateway answers 200 with the result itself as the JSON body.
        body = json.dumps(result).encode()
        return HttpResponseParts(200, [(b"content-type", b"application/json")], body)

    raw_body = result.get("body")
    if raw_body is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(raw_body)
    else:
        body = raw_body.encode("utf-8") if isinstance(raw_body, str) else str(raw_body).encode("utf-8")

    headers: list[tuple[bytes, bytes]] = []
    multi_value: dict[str, Any] = result.get("multiValueHeaders") or {}
    multi_value_names = {name.lower() for name in multi_value}
    for name, value in (result.get("headers") or {}).items():
        if name.lower() not in multi_value_names:
            headers.append((name.lower().encode("latin-1"), _header_value(value)))
    for name, values in multi_value.items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((name.lower().encode("latin-1"), _header_value(value)))
    for cookie in result.get("cookies") or []:
        headers.append((b"set-cookie", _header_value(cookie)))
    # The body may have been re-encoded: the length is ours to state, never the handler's.
    headers = [header for header in headers if header[0] not in (b"content-length", b"transfer-encoding")]
    return HttpResponseParts(int(result["statusCode"]), headers, body)


def _header_value(value: Any) -> bytes:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return str(value).encode("latin-1")
