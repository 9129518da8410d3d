"""Self-service API keys of the caller's account (the dashboard's Settings -> Token).

Authenticated like every other call, with a key of the same account: a caller lists, creates and revokes
only its own account's keys. A new key's secret is in the creation answer and nowhere else, ever.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from switchyard.account_model import ApiKeyInfo
from switchyard.api import openapi_docs as docs
from switchyard.api.caller import caller_account
from switchyard.api.inference_routes import raw_body
from switchyard.clock import iso
from switchyard.errors import InvalidRequest
from switchyard.services.accounts import get_accounts_service
from switchyard.validation import parse_json_object

MAX_NAME_CHARS = 100

_KEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "key_id": {"type": "string"},
        "object": {"type": "string", "enum": ["api_key"]},
        "name": {"type": "string"},
        "status": {"type": "string", "enum": ["active", "revoked"]},
        "created_at": {"type": "string", "format": "date-time"},
        "last_used_at": {
            "type": "string",
            "format": "date-time",
            "nullable": True,
            "description": "When the key last authenticated a call, to within about a minute; null if never.",
        },
        "revoked_at": {"type": "string", "format": "date-time", "nullable": True},
        "current": {"type": "boolean", "description": "This call was made with this key."},
    },
}
_CREATED_SCHEMA = {
    "type": "object",
    "properties": {
        **_KEY_SCHEMA["properties"],
        "api_key": {"type": "string", "description": "The secret: shown here once, never again."},
    },
}
LISTED = {
    200: {
        "description": "The account's keys, newest first (active and revoked; never a secret).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "object": {"type": "string"},
                        "data": {"type": "array", "items": _KEY_SCHEMA},
                    },
                }
            }
        },
    }
}
CREATED = {
    201: {
        "description": "The new key, with its secret `api_key` (shown once).",
        "content": {"application/json": {"schema": _CREATED_SCHEMA}},
    }
}
REVOKED = {
    200: {
        "description": "The key, now revoked; it stops working within the auth cache's TTL (10 s).",
        "content": {"application/json": {"schema": _KEY_SCHEMA}},
    }
}
# The create route reads its body itself (an empty body means the default name), so the generated
# spec would have no request body: app.openapi_document adds this one.
OPENAPI_OPERATIONS = {
    ("/api/account/keys", "post"): {
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "name": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": MAX_NAME_CHARS,
                                "description": 'What the key is for (default "default").',
                            }
                        },
                        "additionalProperties": False,
                    }
                }
            },
        }
    }
}


def key_view(key: ApiKeyInfo, current_key_id: str | None = None) -> dict[str, Any]:
    return {
        "id": key.key_id,
        "key_id": key.key_id,
        "object": "api_key",
        "name": key.name,
        "status": "active" if key.active else "revoked",
        "created_at": iso(key.created_at * 1000),
        "last_used_at": iso(key.last_used_ms),
        "revoked_at": iso(key.revoked_at * 1000) if key.revoked_at else None,
        "current": key.key_id == current_key_id,
    }


def key_name(raw: bytes) -> str:
    if not raw.strip():
        return "default"
    data = parse_json_object(raw)
    unknown = sorted(set(data) - {"name"})
    if unknown:
        raise InvalidRequest(f"unknown field(s) {', '.join(unknown)} (the body may hold a 'name').")
    name = data.get("name", "default")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise InvalidRequest(f"name must be a string of 1 to {MAX_NAME_CHARS} characters.", param="name")
    return name.strip()


def register(app) -> None:
    def current_key_id() -> str | None:
        return get_accounts_service().key_id_of(app.current_event.headers.get("authorization"))

    @app.get(
        "/api/account/keys",
        summary="List your account's API keys (never their secrets)",
        responses=docs.merge(LISTED, docs.UNAUTHORIZED),
    )
    def list_keys() -> dict[str, Any]:
        keys = get_accounts_service().list_api_keys(caller_account(app))
        keys.sort(key=lambda k: (k.created_at, k.key_id), reverse=True)
        current = current_key_id()
        return {"object": "list", "data": [key_view(k, current) for k in keys]}

    @app.post(
        "/api/account/keys",
        summary='Create an API key for your account; body {"name": "..."}',
        description="The answer carries the secret `api_key` once; only its hash is stored.",
        responses=docs.merge(CREATED, docs.BAD_REQUEST, docs.UNAUTHORIZED, docs.CONFLICT),
    )
    def create_key():
        account_id = caller_account(app)
        name = key_name(raw_body(app.current_event.raw_event))
        issued = get_accounts_service().create_own_api_key(account_id, name)
        created = ApiKeyInfo(issued.key_id, account_id, issued.name, issued.created_at, revoked_at=None)
        body = {**key_view(created), "api_key": issued.secret}
        return Response(201, "application/json", json.dumps(body), headers={"Cache-Control": "no-store"})

    @app.delete(
        "/api/account/keys/<key_id>",
        summary="Revoke one of your account's API keys",
        description="Revoking twice is harmless. Another account's key id answers 404.",
        responses=docs.merge(REVOKED, docs.BAD_REQUEST, docs.UNAUTHORIZED, docs.NOT_FOUND),
    )
    def revoke_key(key_id: docs.KeyId) -> dict[str, Any]:
        revoked = get_accounts_service().revoke_api_key(caller_account(app), key_id)
        return key_view(revoked, current_key_id())
