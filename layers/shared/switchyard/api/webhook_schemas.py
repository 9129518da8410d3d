"""Response shapes of the background path and the webhook routes, for the OpenAPI document.

The routes build plain dicts (webhook_model, generation); these models only describe them, so the spec
shows every field a client gets.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from switchyard.webhook_model import EVENT_TYPES

GenerationState = Literal["Queued", "InProgress", "Success", "Failed", "Canceled"]


class GenerationForClient(BaseModel):
    # inference.net's field names, camelCase as its clients read them.
    id: str = Field(description="The generation (async job) id.")
    state: GenerationState
    stateMessage: str | None = Field(description="Why, when it failed or was canceled.")  # noqa: N815 - inference.net names it so
    request: dict[str, Any] = Field(description="The request body as the caller sent it, metadata included.")
    response: Any = Field(
        description="The provider's final OpenAI-format answer (null until Success). For media: "
        '{"object": "inference.asset", "url", "content_type", "metadata"}.'
    )
    model: str
    createdAt: str = Field(description="ISO 8601, UTC, milliseconds.")  # noqa: N815 - inference.net names it so
    dispatchedAt: str | None = Field(description="When a provider was last given it.")  # noqa: N815 - inference.net names it so
    finishedAt: str | None  # noqa: N815 - inference.net names it so


class BackgroundAccepted(BaseModel):
    """202 of /v1/slow/... and /v1/async/...: the job envelope; `id` is the generation id."""

    id: str
    object: Literal["inference.job"]
    status: Literal["QUEUED"]
    inference_type: str
    model: str
    created: int
    queued_at: str
    attempts: int


class Webhook(BaseModel):
    id: str = Field(description="wh_...")
    object: Literal["webhook"]
    url: str
    events: list[str] | None = Field(
        description=f"Event types it receives (null: all of {', '.join(EVENT_TYPES)})."
    )
    description: str | None
    status: Literal["enabled", "disabled"] = Field(
        description="disabled after its receiver answered 410 Gone; a 2xx to a test or redelivery enables it."
    )
    disabled_reason: str | None
    disabled_at: str | None
    created_at: str
    secret_rotated_at: str | None
    previous_secret_expires_at: str | None = Field(
        description="Until then deliveries carry a second signature, made with the previous secret."
    )


class WebhookWithSecret(Webhook):
    secret: str = Field(description="whsec_ + base64 of 32 random bytes. Shown in this answer only.")


class WebhookList(BaseModel):
    object: Literal["list"]
    data: list[Webhook]
    has_more: bool
    first_id: str | None
    last_id: str | None


class WebhookDeleted(BaseModel):
    id: str
    object: Literal["webhook.deleted"]
    deleted: Literal[True]


class DeliveryAttempt(BaseModel):
    at: str
    trigger: Literal["scheduled", "manual"]
    status_code: int | None = Field(description="The receiver's HTTP status; null when there was no answer.")
    error: str | None
    duration_ms: int


class WebhookDelivery(BaseModel):
    id: str = Field(description="msg_...: the webhook-id header, the same on every attempt.")
    object: Literal["webhook.delivery"]
    webhook_id: str
    event: str
    generation_id: str | None
    status: Literal["pending", "succeeded", "failed"]
    reason: str | None = Field(description="Why a failed delivery stopped.")
    created_at: str
    attempt_count: int
    last_status_code: int | None
    next_attempt_at: str | None
    attempts: list[DeliveryAttempt]


class WebhookDeliveryList(BaseModel):
    object: Literal["list"]
    data: list[WebhookDelivery]
    has_more: bool
    first_id: str | None
    last_id: str | None


class WebhookEvent(BaseModel):
    """What a receiver gets (the POST body), signed per Standard Webhooks."""

    event: str
    type: str = Field(description="The same value as event.")
    timestamp: str
    webhook_id: str
    generation_id: str | None = Field(default=None, description="For generation and embedding events.")
    data: dict[str, Any]
