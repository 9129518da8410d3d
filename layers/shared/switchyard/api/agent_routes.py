"""Provider agents register and stay online by heartbeat."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Body

from switchyard.api import openapi_docs as docs
from switchyard.api.caller import caller_account
from switchyard.services.providers import Heartbeat, get_providers_service
from switchyard.settings import get_settings


def _heartbeat(app: APIGatewayHttpResolver, beat: Heartbeat) -> dict[str, Any]:
    settings = get_settings()
    provider = get_providers_service().record_heartbeat(caller_account(app), beat)
    return {
        "provider_id": provider.provider_id,
        "status": "online",
        "models": [m.id for m in provider.models],
        "offline_after_seconds": settings.provider_offline_after_seconds,
        "heartbeat_interval_seconds": settings.heartbeat_interval_seconds,
    }


def register(app: APIGatewayHttpResolver) -> None:
    @app.post(
        "/api/inference/agent/heartbeat/",
        summary="Register or refresh a provider agent (endpoint, models, capacity)",
        responses=docs.merge(docs.BAD_REQUEST, docs.UNAUTHORIZED),
    )
    def heartbeat(body: Annotated[Heartbeat, Body()]) -> dict[str, Any]:
        return _heartbeat(app, body)

    @app.post("/api/inference/agent/heartbeat", include_in_schema=False)
    def heartbeat_without_slash(body: Annotated[Heartbeat, Body()]) -> dict[str, Any]:
        return _heartbeat(app, body)
