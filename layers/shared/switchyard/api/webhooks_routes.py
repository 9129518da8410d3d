"""Webhook endpoints: /v1/webhooks (register, list, read, delete, rotate the secret, test) and their
deliveries log (list, read, redeliver)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel

from switchyard.api import openapi_docs as docs
from switchyard.api import shapes
from switchyard.api.caller import caller_account
from switchyard.api.pagination import list_page
from switchyard.api.webhook_schemas import (
    Webhook,
    WebhookDeleted,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookList,
    WebhookWithSecret,
)
from switchyard.clock import now_ms
from switchyard.services.webhooks import WebhookCreate, get_webhooks_service
from switchyard.webhook_model import WebhookEndpoint

CREATE_DESCRIPTION = """Body: `{"url": "https://...", "events": [...] (optional filter), "description": "..."}`.

Answers 201 with the webhook and its signing `secret` (`whsec_` + base64), shown only in this answer. Name
the webhook in `"metadata": {"webhook_id": "wh_..."}` of an async request (`"async": true` or /v1/slow/...),
of POST /v1/batches or of POST /v1/workflows/runs to hear of its end.

Deliveries are POSTs signed per Standard Webhooks: headers `webhook-id` (the delivery id, the same on every
retry: deduplicate on it), `webhook-timestamp` (unix seconds of the attempt) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{raw body}">`, two space-separated for 24 h
after a rotation), plus `X-Inference-Event`, `X-Inference-Webhook-ID` and `X-Inference-Generation-ID`.
Body: `{"event", "type", "timestamp", "webhook_id", "generation_id" (generation events), "data"}`.
Only 2xx is a success; 3xx is not followed; 410 disables the webhook; anything else is retried at once,
then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (with jitter; `Retry-After` honoured),
15 s timeout per attempt. URLs on private, loopback, link-local or metadata addresses are refused unless
the deployment's endpoint policy allows them."""


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status, "application/json", json.dumps(body))


def _content(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"model": model}}


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict[str, Any]:
    return {**endpoint.public(now_ms()), "secret": secret}


def register(app: APIGatewayHttpResolver) -> None:
    @app.post(
        "/v1/webhooks",
        summary="Register a webhook endpoint (the signing secret is shown once)",
        description=CREATE_DESCRIPTION,
        responses=docs.merge(
            {201: {"description": "The webhook, with its secret", "content": _content(WebhookWithSecret)}},
            {
                400: docs.BAD_REQUEST[400]
                | {
                    "description": "invalid_request: url missing, not http(s), or refused by the endpoint "
                    "policy (private, loopback, link-local, metadata, reserved, NAT64 or other "
                    "IPv4-embedding address; the gateway's own hosts); an unknown event type; "
                    "an unknown field"
                }
            },
            docs.UNAUTHORIZED,
            {409: docs.CONFLICT[409] | {"description": "conflict: the account has its maximum of webhooks"}},
        ),
        openapi_extensions=docs.RATE_LIMITED,
    )
    def create_webhook(body: Annotated[WebhookCreate, Body()]):
        endpoint, secret = get_webhooks_service().create(caller_account(app), body.model_dump())
        return _json(201, _with_secret(endpoint, secret))

    @app.get(
        "/v1/webhooks",
        summary="List your webhooks, newest first",
        responses=docs.merge(
            {200: {"description": "A list of webhooks", "content": _content(WebhookList)}},
            docs.BAD_REQUEST,
            docs.UNAUTHORIZED,
        ),
    )
    def list_webhooks(
        limit: Annotated[int, docs.limit_query(100)] = 50,
        after: Annotated[str | None, docs.after_query(shapes.WEBHOOK_ID)] = None,
    ) -> dict[str, Any]:
        found, has_more = get_webhooks_service().endpoints(caller_account(app), limit=limit, after=after)
        now = now_ms()
        return list_page([endpoint.public(now) for endpoint in found], has_more)

    @app.get(
        "/v1/webhooks/<webhook_id>",
        summary="A webhook (without its secret)",
        responses=docs.merge(
            {200: {"description": "The webhook", "content": _content(Webhook)}},
            docs.BAD_REQUEST,
            docs.UNAUTHORIZED,
            docs.NOT_FOUND,
        ),
    )
    def get_webhook(webhook_id: docs.WebhookId) -> dict[str, Any]:
        return get_webhooks_service().get(caller_account(app), webhook_id).public(now_ms())

    @app.delete(
        "/v1/webhooks/<webhook_id>",
        summary="Delete a webhook (its pending deliveries stop)",
        responses=docs.merge(
            {200: {"description": "Deleted", "content": _content(WebhookDeleted)}},
            docs.BAD_REQUEST,
            docs.UNAUTHORIZED,
            docs.NOT_FOUND,
        ),
    )
    def delete_webhook(webhook_id: docs.WebhookId) -> dict[str, Any]:
        get_webhooks_service().delete(caller_account(app), webhook_id)
        return {"id": webhook_id, "object": "webhook.deleted", "deleted": True}

    @app.post(
        "/v1/webhooks/<webhook_id>/rotate-secret",
        summary="Rotate the signing secret (the old one keeps signing, alongside, for 24 h)",
        description="Answers the webhook with its new `secret` (shown once). Until "
        "`previous_secret_expires_at`, every delivery carries two signatures, one per secret, so receivers "
        "can switch at their own pace.",
        responses=docs.merge(
            {
                200: {
                    "description": "The webhook, with its new secret",
                    "content": _content(WebhookWithSecret),
                }
            },
            docs.BAD_REQUEST,
            docs.UNAUTHORIZED,
            docs.NOT_FOUND,
            docs.CONFLICT,
        ),
        openapi_extensions=docs.RATE_LIMITED,
    )
    def rotate_secret(webhook_id: docs.WebhookId) -> dict[str, Any]:
        endpoint, secret = get_webhooks_service().rotate_secret(caller_account(app), webhook_id)
        return _with_secret(endpoint, secret)

    @app.post(
        "/v1/webhooks/<webhook_id>/test",
        summary="Send a webhook.test event now",
        description="Attempted once, at once, even if the webhook is disabled (a 2xx enables it again). "
        "The answer is the queued delivery; its outcome appears in the deliveries log.",
        responses=docs.merge(
            {202: {"description": "The test delivery, queued", "content": _content(WebhookDelivery)}},
            docs.BAD_REQUEST,
            docs.UNAUTHORIZED,
            docs.NOT_FOUND,
        ),
        openapi_extensions=docs.RATE_LIMITED,
    )
    def test_webhook(webhook_id: docs.WebhookId):
        delivery = get_webhooks_service().test(caller_account(app), webhook_id)
        return _json(202, delivery.public())

    @app.get(
        "/v1/webhooks/<webhook_id>/deliveries",
        summary="A webhook's deliveries, newest first: each event's attempts (time, status, error) and next one",
        responses=docs.merge(
            {200: {"description": "A list of deliveries", "content": _content(WebhookDeliveryList)}},
            docs.BAD_REQUEST,
            docs.UNAUTHORIZED,
            docs.NOT_FOUND,
        ),
    )
    def list_deliveries(
        webhook_id: docs.WebhookId,
        limit: Annotated[int, docs.limit_query(100)] = 50,
        after: Annotated[str | None, docs.after_query(shapes.DELIVERY_ID)] = None,
        status: Annotated[
            Literal["pending", "succeeded", "failed"] | None,
            Query(description="Only pending, succeeded or failed deliveries"),
        ] = None,
    ) -> dict[str, Any]:
        found, has_more = get_webhooks_service().deliveries(
            caller_account(app), webhook_id, limit=limit, after=after, status=status
        )
        return list_page([delivery.public() for delivery in found], has_more)

    @app.get(
        "/v1/webhooks/<webhook_id>/deliveries/<delivery_id>",
        summary="One delivery and its attempts",
        responses=docs.merge(
            {200: {"description": "The delivery", "content": _content(WebhookDelivery)}},
            docs.BAD_REQUEST,
            docs.UNAUTHORIZED,
            docs.NOT_FOUND,
        ),
    )
    def get_delivery(webhook_id: docs.WebhookId, delivery_id: docs.DeliveryId) -> dict[str, Any]:
        return get_webhooks_service().delivery(caller_account(app), webhook_id, delivery_id).public()

    @app.post(
        "/v1/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver",
        summary="Send a delivery once more, now (same webhook-id and body, freshly signed)",
        description="Works for any delivery, also a failed (exhausted) one; a 2xx marks it succeeded and "
        "enables a disabled webhook. The answer is the delivery as it stands; the attempt appears in its log.",
        responses=docs.merge(
            {202: {"description": "The delivery, redelivery queued", "content": _content(WebhookDelivery)}},
            docs.BAD_REQUEST,
            docs.UNAUTHORIZED,
            docs.NOT_FOUND,
        ),
        openapi_extensions=docs.RATE_LIMITED,
    )
    def redeliver(webhook_id: docs.WebhookId, delivery_id: docs.DeliveryId):
        delivery = get_webhooks_service().redeliver(caller_account(app), webhook_id, delivery_id)
        return _json(202, delivery.public())


def document_events(spec: dict[str, Any]) -> None:
    """OpenAPI 3.1 `webhooks`: what a receiver gets for each event type (body, headers, what to answer)."""
    from switchyard.api.webhook_schemas import GenerationForClient, WebhookEvent
    from switchyard.webhook_model import EventType

    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in (WebhookEvent, GenerationForClient):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas.setdefault(model.__name__, schema)
    headers = [
        (
            "webhook-id",
            "The delivery id (msg_...): the same on every retry and redelivery. Deduplicate on it.",
        ),
        ("webhook-timestamp", "Unix seconds of this attempt; refuse values more than 5 minutes off."),
        (
            "webhook-signature",
            'v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{raw body}"> with the decoded secret; '
            "two, space-separated, for 24 h after a rotation. Verify on the raw body.",
        ),
        ("x-inference-event", "The event type."),
        ("x-inference-webhook-id", "The webhook (wh_...)."),
        (
            "x-inference-generation-id",
            "The generation, for generation.completed and async-embedding.completed.",
        ),
    ]
    data = {
        EventType.GENERATION_COMPLETED: "GenerationForClient (Success, Failed or Canceled: see state)",
        EventType.EMBEDDING_COMPLETED: "GenerationForClient of an embedding job",
        EventType.BATCH_COMPLETED: "the batch object (status DONE, per-status counts, jobs)",
        EventType.WORKFLOW_RUN_COMPLETED: "the run (id, status, error, timings)",
        EventType.WORKFLOW_GATE_WAITING: "run_id, step_id, prompt, waiting_since, expires_at, approve_url, reject_url",
        EventType.TEST: "webhook_id, url, message",
    }
    spec["webhooks"] = {
        event.value: {
            "post": {
                "summary": f"{event.value}: data is {what}",
                "parameters": [
                    {
                        "name": name,
                        "in": "header",
                        "required": name.startswith("webhook-"),
                        "description": text,
                        "schema": {"type": "string"},
                    }
                    for name, text in headers
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/WebhookEvent"}}
                    },
                },
                "responses": {
                    "2XX": {"description": "Delivered. Anything else is retried on the schedule (3xx too)."},
                    "410": {"description": "Gone: the webhook is disabled and nothing more is sent."},
                },
            }
        }
        for event, what in data.items()
    }
