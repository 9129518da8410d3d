"""Synchronous inference: validate, route to one of the caller's providers, return its answer."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from switchyard import metrics
from switchyard.adapters import upstream
from switchyard.catalog import Endpoint
from switchyard.errors import InvalidRequest, UpstreamError
from switchyard.multipart import form_fields, require_fields
from switchyard.provider_model import Provider
from switchyard.schemas import MULTIPART_REQUIRED
from switchyard.services.providers import get_providers_service
from switchyard.settings import get_settings
from switchyard.validation import provider_body, validate_inference_body

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderCall:
    """Everything needed to send one request to one provider."""

    provider: Provider
    url: str
    headers: dict[str, str]
    content: bytes


def plan_json_call(
    account_id: str, endpoint: Endpoint, data: dict[str, Any], request_id: str | None = None
) -> ProviderCall:
    body = validate_inference_body(endpoint.path, data)
    provider = get_providers_service().choose(account_id, body.model, endpoint.service_type)
    content = json.dumps(provider_body(data), separators=(",", ":")).encode()
    return ProviderCall(
        provider=provider,
        url=provider.endpoint_url + endpoint.path,
        headers=upstream.provider_request_headers(provider.secret, "application/json", request_id),
        content=content,
    )


def plan_multipart_call(
    account_id: str, endpoint: Endpoint, content_type: str, content: bytes, request_id: str | None = None
) -> ProviderCall:
    fields = form_fields(content_type, content)
    if fields.get("async", b"").strip().lower() in (b"true", b"1"):
        raise InvalidRequest(
            f"{endpoint.path} is synchronous only: file-upload endpoints cannot be queued with 'async'.",
            param="async",
        )
    require_fields(fields, MULTIPART_REQUIRED[endpoint.path])
    model = fields["model"].decode(errors="replace").strip()
    provider = get_providers_service().choose(account_id, model, endpoint.service_type)
    return ProviderCall(
        provider=provider,
        url=provider.endpoint_url + endpoint.path,
        headers=upstream.provider_request_headers(provider.secret, content_type, request_id),
        content=content,
    )


def execute(call: ProviderCall) -> upstream.UpstreamResponse:
    settings = get_settings()
    client = upstream.get_client(settings.upstream_timeout_seconds, settings.upstream_connect_timeout_seconds)
    try:
        with metrics.provider_call(metrics.CallPath.SYNC) as measured:
            answer = upstream.post(client, call.url, call.content, call.headers)
            measured.answered(answer.status_code)
    except UpstreamError as error:
        # Which provider failed is not a metric dimension (unbounded): it is here.
        logger.warning(
            "provider call failed",
            extra={
                "account_id": call.provider.account_id,
                "provider_id": call.provider.provider_id,
                "error": error.message,
            },
        )
        raise
    return answer
