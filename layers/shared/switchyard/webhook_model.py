"""Webhook endpoints, their events and deliveries: states, stored shapes and public objects.

An *endpoint* (`wh_...`) belongs to one account: a URL, an optional filter of event types and a signing
secret (plus, for 24 h after a rotation, the previous one). A *delivery* (`msg_...`) is one event for one
endpoint: the exact body that is signed and sent, and the log of every attempt to send it. The delivery
id is the Standard Webhooks `webhook-id`: it is derived from what happened (a job's end, a run's end...),
so announcing the same happening twice yields the same delivery, and every retry carries the same id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from switchyard.clock import iso_ms


class EventType(StrEnum):
    GENERATION_COMPLETED = "generation.completed"
    EMBEDDING_COMPLETED = "async-embedding.completed"
    BATCH_COMPLETED = "batch.completed"
    WORKFLOW_RUN_COMPLETED = "workflow.run.completed"
    WORKFLOW_GATE_WAITING = "workflow.gate.waiting"
    TEST = "webhook.test"


EVENT_TYPES = tuple(e.value for e in EventType)


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"  # the receiver answered 410 Gone; a 2xx to a test or a redelivery enables it again


class DeliveryState(StrEnum):
    PENDING = "pending"  # an attempt is due (now, or on the retry schedule)
    SUCCEEDED = "succeeded"  # a 2xx answer
    FAILED = "failed"  # the schedule ran out, or the endpoint is disabled or gone; redeliverable


SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32  # Standard Webhooks: 24 to 64 random bytes


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def delivery_id_for(source: str, event_ms: int) -> str:
    """The webhook-id of one happening: sortable by when it happened, the same every time it is announced."""
    return f"msg_{int(event_ms):012x}{hashlib.sha256(source.encode()).hexdigest()[:10]}"


# ---------------------------------------------------------------- endpoints


@dataclass
class WebhookEndpoint:
    webhook_id: str
    account_id: str
    url: str
    secret: str
    created_ms: int
    events: tuple[str, ...] | None = None  # None: every event type
    description: str | None = None
    status: EndpointStatus = EndpointStatus.ENABLED
    disabled_reason: str | None = None
    disabled_ms: int | None = None
    previous_secret: str | None = None
    previous_secret_expires_ms: int | None = None
    rotated_ms: int | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> WebhookEndpoint:
        def number(name: str) -> int | None:
            return int(item[name]) if item.get(name) is not None else None

        return cls(
            webhook_id=item["pk"],
            account_id=item["account_id"],
            url=item["url"],
            secret=item["secret"],
            created_ms=int(item["created_ms"]),
            events=tuple(item["events"]) if item.get("events") is not None else None,
            description=item.get("description"),
            status=EndpointStatus(item.get("status", EndpointStatus.ENABLED.value)),
            disabled_reason=item.get("disabled_reason"),
            disabled_ms=number("disabled_ms"),
            previous_secret=item.get("previous_secret"),
            previous_secret_expires_ms=number("previous_secret_expires_ms"),
            rotated_ms=number("rotated_ms"),
        )

    def accepts(self, event: str) -> bool:
        return event == EventType.TEST or self.events is None or event in self.events

    def signing_secrets(self, now_ms: int) -> list[str]:
        """The current secret, and the previous one while its overlap lasts."""
        active = [self.secret]
        if self.previous_secret and (self.previous_secret_expires_ms or 0) > now_ms:
            active.append(self.previous_secret)
        return active

    def public(self, now_ms: int) -> dict[str, Any]:
        overlapping = bool(self.previous_secret) and (self.previous_secret_expires_ms or 0) > now_ms
        return {
            "id": self.webhook_id,
            "object": "webhook",
            "url": self.url,
            "events": list(self.events) if self.events is not None else None,
            "description": self.description,
            "status": self.status.value,
            "disabled_reason": self.disabled_reason,
            "disabled_at": iso_ms(self.disabled_ms),
            "created_at": iso_ms(self.created_ms),
            "secret_rotated_at": iso_ms(self.rotated_ms),
            "previous_secret_expires_at": iso_ms(self.previous_secret_expires_ms) if overlapping else None,
        }


# ---------------------------------------------------------------- events and deliveries


@dataclass(frozen=True)
class Event:
    """One happening to announce to one endpoint. `source` names the happening (see delivery_id_for)."""

    type: EventType
    webhook_id: str
    source: str
    event_ms: int
    data: dict[str, Any]
    generation_id: str | None = None

    @property
    def delivery_id(self) -> str:
        return delivery_id_for(self.source, self.event_ms)

    def body(self) -> str:
        """The JSON text that is signed and sent, byte for byte, on every attempt."""
        envelope: dict[str, Any] = {
            "event": self.type.value,
            "type": self.type.value,
            "timestamp": iso_ms(self.event_ms),
            "webhook_id": self.webhook_id,
        }
        if self.generation_id:
            envelope["generation_id"] = self.generation_id
        envelope["data"] = self.data
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Attempt:
    at_ms: int
    trigger: str  # "scheduled" (the retry schedule) or "manual" (a redelivery or a test)
    status_code: int | None  # None: no HTTP answer (timeout, refused connection, refused URL)
    error: str | None
    duration_ms: int

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"at_ms": self.at_ms, "trigger": self.trigger, "duration_ms": self.duration_ms}
        if self.status_code is not None:
            item["status_code"] = self.status_code
        if self.error:
            item["error"] = self.error
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Attempt:
        return cls(
            at_ms=int(item["at_ms"]),
            trigger=str(item.get("trigger", "scheduled")),
            status_code=int(item["status_code"]) if item.get("status_code") is not None else None,
            error=item.get("error"),
            duration_ms=int(item.get("duration_ms", 0)),
        )

    def public(self) -> dict[str, Any]:
        return {
            "at": iso_ms(self.at_ms),
            "trigger": self.trigger,
            "status_code": self.status_code,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }


@dataclass
class Delivery:
    delivery_id: str
    webhook_id: str
    event: str
    created_ms: int
    state: DeliveryState
    body: str | None = None  # None when the body is kept in S3 under body_key
    body_key: str | None = None
    generation_id: str | None = None
    next_index: int = 0  # which entry of the retry schedule the next scheduled attempt is
    next_attempt_ms: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    final_reason: str | None = None  # why a FAILED delivery stopped
    manual_token: str | None = None  # a redelivery asked for and not yet attempted

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Delivery:
        return cls(
            delivery_id=item["delivery_id"],
            webhook_id=item["pk"],
            event=item["event"],
            created_ms=int(item["created_ms"]),
            state=DeliveryState(item["state"]),
            body=item.get("body"),
            body_key=item.get("body_key"),
            generation_id=item.get("generation_id"),
            next_index=int(item.get("next_index", 0)),
            next_attempt_ms=int(item["next_attempt_ms"]) if item.get("next_attempt_ms") is not None else None,
            attempts=[Attempt.from_item(a) for a in item.get("attempts") or []],
            final_reason=item.get("final_reason"),
            manual_token=item.get("manual_token"),
        )

    def public(self) -> dict[str, Any]:
        last = self.attempts[-1] if self.attempts else None
        return {
            "id": self.delivery_id,
            "object": "webhook.delivery",
            "webhook_id": self.webhook_id,
            "event": self.event,
            "generation_id": self.generation_id,
            "status": self.state.value,
            "reason": self.final_reason,
            "created_at": iso_ms(self.created_ms),
            "attempt_count": len(self.attempts),
            "last_status_code": last.status_code if last else None,
            "next_attempt_at": iso_ms(self.next_attempt_ms) if self.state == DeliveryState.PENDING else None,
            "attempts": [attempt.public() for attempt in self.attempts],
        }
