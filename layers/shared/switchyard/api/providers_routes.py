"""The caller's provider agents as the dashboard's Providers page shows them: GET /api/inference/providers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from switchyard.api import openapi_docs as docs
from switchyard.api.caller import caller_account
from switchyard.clock import iso
from switchyard.services.providers import ProviderStatus, get_providers_service
from switchyard.settings import get_settings

_PROVIDER_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The provider_id its agent registered with."},
        "object": {"type": "string", "enum": ["provider"]},
        "status": {"type": "string", "enum": ["online", "offline"]},
        "last_heartbeat_at": {"type": "string", "format": "date-time"},
        "first_seen_at": {"type": "string", "format": "date-time", "nullable": True},
        "endpoint_host": {"type": "string", "description": "Host (and port) of the agent's endpoint."},
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "service_type": {"type": "string"},
                    "input_modalities": {"type": "array", "items": {"type": "string"}},
                    "output_modalities": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "capacity": {
            "type": "object",
            "properties": {"in_use": {"type": "integer"}, "max": {"type": "integer"}},
            "description": "Async jobs running on it now, and its max_concurrency.",
        },
    },
}
LISTED = {
    200: {
        "description": "Your providers, online first (never their secrets or full endpoint URLs).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "object": {"type": "string"},
                        "data": {"type": "array", "items": _PROVIDER_SCHEMA},
                        "offline_after_seconds": {"type": "integer"},
                    },
                }
            }
        },
    }
}


def endpoint_host(url: str) -> str:
    """host[:port] only: a path or user-info in an endpoint URL may carry a credential."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def provider_view(provider: ProviderStatus) -> dict[str, Any]:
    return {
        "id": provider.provider_id,
        "object": "provider",
        "status": "online" if provider.online else "offline",
        "last_heartbeat_at": iso(int(provider.last_seen * 1000)),
        "first_seen_at": iso(int(provider.first_seen * 1000)) if provider.first_seen else None,
        "endpoint_host": endpoint_host(provider.endpoint_url),
        "models": [
            {
                "id": m.id,
                "service_type": m.service_type.value,
                "input_modalities": list(m.input_modalities),
                "output_modalities": list(m.output_modalities),
            }
            for m in provider.models
        ],
        "capacity": {"in_use": provider.slots_in_use, "max": provider.max_concurrency},
    }


def register(app) -> None:
    def list_providers() -> dict[str, Any]:
        providers = get_providers_service().account_providers(caller_account(app))
        return {
            "object": "list",
            "data": [provider_view(p) for p in providers],
            "offline_after_seconds": get_settings().provider_offline_after_seconds,
        }

    app.get(
        "/api/inference/providers",
        summary="Your provider agents: online state, last heartbeat, models, capacity",
        responses=docs.merge(LISTED, docs.UNAUTHORIZED),
    )(list_providers)
    app.get("/api/inference/providers/", include_in_schema=False)(list_providers)
