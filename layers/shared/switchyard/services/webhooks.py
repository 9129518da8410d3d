"""Webhook endpoints as callers see them: register, list, read, delete, rotate the secret, test; the
deliveries log and redelivery; and the check that async work names one of the caller's own endpoints.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from switchyard.adapters.pinned_http import get_endpoint_guard
from switchyard.adapters.webhook_queue import DeliveryMessage, WebhookQueue, get_webhook_queue
from switchyard.adapters.webhooks_table import WebhooksTable, get_webhooks_table
from switchyard.caches import cached
from switchyard.clock import now_ms
from switchyard.endpoint_policy import URL_SCHEMA_PATTERN, EndpointGuard
from switchyard.errors import Conflict, InvalidRequest, NotFound
from switchyard.ids import new_id
from switchyard.job_model import JobWebhook
from switchyard.services.webhook_directory import EndpointDirectory, get_endpoint_directory
from switchyard.services.webhook_events import WebhookEvents, get_webhook_events
from switchyard.settings import Settings, get_settings
from switchyard.validation import describe_validation_error, webhook_id_of
from switchyard.webhook_model import EVENT_TYPES, Delivery, DeliveryState, WebhookEndpoint, new_secret

MAX_LIST_LIMIT = 100
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 512


class WebhookCreate(BaseModel):
    """The body of POST /v1/webhooks."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)] = Field(
        description="Where deliveries are POSTed (http or https; private, loopback, link-local, metadata, "
        "reserved and IPv4-embedding addresses and the gateway's own hosts are refused unless the "
        "deployment's endpoint policy allows them; a query string is kept, a fragment refused).",
        # The example is a receiver on the local stack (which allows loopback), as the heartbeat's is.
        json_schema_extra={
            "format": "uri",
            "pattern": URL_SCHEMA_PATTERN,
            "examples": ["http://127.0.0.1:9000/hooks"],
        },
    )
    # Each documented as the enum it is; the validator below words the refusal of an unknown one.
    events: list[Annotated[str, Field(json_schema_extra={"enum": list(EVENT_TYPES)})]] | None = Field(
        default=None,
        min_length=1,
        description="Only these event types reach this endpoint (default: every type). One of: "
        + ", ".join(EVENT_TYPES),
    )
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION_LENGTH)] | None = None

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = [event for event in value if event not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event type(s) {', '.join(unknown)} (use {', '.join(EVENT_TYPES)})")
        return list(dict.fromkeys(value))


class WebhooksService:
    def __init__(
        self,
        settings: Settings,
        table: WebhooksTable,
        queue: WebhookQueue,
        directory: EndpointDirectory,
        events: WebhookEvents,
        guard: EndpointGuard,
    ):
        self.settings = settings
        self.guard = guard
        self.table = table
        self.queue = queue
        self.directory = directory
        self.events = events

    # -- endpoints
    def create(self, account_id: str, data: dict[str, Any]) -> tuple[WebhookEndpoint, str]:
        """(the endpoint, its signing secret): the secret is shown in this answer only."""
        try:
            request = WebhookCreate.model_validate(data)
        except ValidationError as exc:
            message, param = describe_validation_error(exc)
            raise InvalidRequest(message, param=param) from exc
        # The policy every user-supplied URL meets (reserved, NAT64, the gateway's own hosts, ...), checked
        # with the resolver that connections use; the delivery client checks it again on each connection.
        url = self.guard.check_url(request.url.strip(), field="url", allow_query=True)
        if self.table.count_endpoints(account_id) >= self.settings.webhook_max_endpoints_per_account:
            raise Conflict(
                f"An account has at most {self.settings.webhook_max_endpoints_per_account} webhooks; "
                "delete one you no longer use."
            )
        endpoint = WebhookEndpoint(
            webhook_id=new_id("wh_"),
            account_id=account_id,
            url=url,
            secret=new_secret(),
            created_ms=now_ms(),
            events=tuple(request.events) if request.events is not None else None,
            description=request.description,
        )
        self.table.create_endpoint(endpoint)
        self.directory.invalidate(endpoint.webhook_id)
        return endpoint, endpoint.secret

    def get(self, account_id: str, webhook_id: str) -> WebhookEndpoint:
        endpoint = self.table.get_endpoint(webhook_id) if webhook_id.startswith("wh_") else None
        if endpoint is None or endpoint.account_id != account_id:
            raise NotFound(f"No webhook '{webhook_id}'.")
        return endpoint

    def endpoints(
        self, account_id: str, *, limit: int, after: str | None
    ) -> tuple[list[WebhookEndpoint], bool]:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest(f"limit: must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
        return self.table.endpoints_of(account_id, limit=limit, after=after)

    def delete(self, account_id: str, webhook_id: str) -> None:
        """Its pending deliveries stop (they fail as 'endpoint deleted'); its log expires with them."""
        self.get(account_id, webhook_id)
        if not self.table.delete_endpoint(webhook_id, account_id):
            raise NotFound(f"No webhook '{webhook_id}'.")
        self.directory.invalidate(webhook_id)

    def rotate_secret(self, account_id: str, webhook_id: str) -> tuple[WebhookEndpoint, str]:
        """A new secret; the old one keeps signing alongside it for the overlap (24 h)."""
        endpoint = self.get(account_id, webhook_id)
        secret = new_secret()
        rotated = self.table.rotate_secret(
            endpoint, secret, now_ms(), self.settings.webhook_secret_overlap_seconds * 1000
        )
        if rotated is None:
            raise Conflict(f"Webhook '{webhook_id}' changed meanwhile (rotated or deleted); try again.")
        self.directory.invalidate(webhook_id)
        return rotated, secret

    def test(self, account_id: str, webhook_id: str) -> Delivery:
        """Send a webhook.test event at once (even to a disabled endpoint: a 2xx enables it again)."""
        return self.events.send_test(self.get(account_id, webhook_id))

    # -- submissions naming a webhook
    def require(
        self, account_id: str, webhook_id: str, param: str = "metadata.webhook_id"
    ) -> WebhookEndpoint:
        endpoint = self.directory.get(webhook_id) if webhook_id.startswith("wh_") else None
        if endpoint is None or endpoint.account_id != account_id:
            raise InvalidRequest(f"{param}: you have no webhook '{webhook_id}'.", param=param)
        return endpoint

    def job_webhook(
        self, account_id: str, data: dict[str, Any], base_url: str | None, where: str = ""
    ) -> JobWebhook | None:
        """The webhook a job's body names (None when it names none); refuses an unknown webhook, or
        another account's, before anything is stored."""
        webhook_id = webhook_id_of(data, where)
        if webhook_id is None:
            return None
        self.require(account_id, webhook_id, f"{where}metadata.webhook_id")
        return JobWebhook(webhook_id=webhook_id, base_url=base_url)

    # -- deliveries
    def deliveries(
        self, account_id: str, webhook_id: str, *, limit: int, after: str | None, status: str | None
    ) -> tuple[list[Delivery], bool]:
        self.get(account_id, webhook_id)
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest(f"limit: must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
        states = [s.value for s in DeliveryState]
        if status is not None and status not in states:
            raise InvalidRequest(f"status: one of {', '.join(states)}.", param="status")
        return self.table.deliveries_of(webhook_id, limit=limit, after=after, state=status)

    def delivery(self, account_id: str, webhook_id: str, delivery_id: str) -> Delivery:
        self.get(account_id, webhook_id)
        found = self.table.get_delivery(webhook_id, delivery_id)
        if found is None:
            raise NotFound(f"No delivery '{delivery_id}' of webhook '{webhook_id}'.")
        return found

    def redeliver(self, account_id: str, webhook_id: str, delivery_id: str) -> Delivery:
        """Send it once more, now, whatever became of it (a 2xx also enables a disabled endpoint)."""
        self.delivery(account_id, webhook_id, delivery_id)
        token = secrets.token_hex(8)
        requested = self.table.request_redelivery(webhook_id, delivery_id, token)
        if requested is None:
            raise NotFound(f"No delivery '{delivery_id}' of webhook '{webhook_id}'.")
        self.queue.send(self.manual_message(requested, token))
        return requested

    def manual_message(self, delivery: Delivery, token: str) -> DeliveryMessage:
        return DeliveryMessage(
            delivery.webhook_id,
            delivery.delivery_id,
            token=token,
            event=delivery.event,
            generation_id=delivery.generation_id,
        )


@cached
def get_webhooks_service() -> WebhooksService:
    return WebhooksService(
        get_settings(),
        get_webhooks_table(),
        get_webhook_queue(),
        get_endpoint_directory(),
        get_webhook_events(),
        get_endpoint_guard(),
    )
