"""The webhook delivery function's work: one attempt per message, and what follows it.

Only a 2xx is a success. A 410 disables the endpoint (its receiver says it is gone for good). Anything
else (another status, a 3xx: redirects are never followed, a timeout after 15 s, a refused connection, a
URL the endpoint policy now refuses) is retried on the schedule (Standard Webhooks': at once, 5 s, 5 min,
30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h, each with ±10% jitter; a longer `Retry-After` wins, up to a
day). After the last attempt the delivery is failed for good: it stays in the log and can be redelivered,
and the result itself stays readable (GET /v1/generation/<id>).

Why duplicate or stale messages end harmlessly: every message names the attempt it is for (the schedule
index, or a redelivery's token), and an attempt is recorded only on condition that the delivery is still
waiting for exactly that attempt. A message that arrives twice may send twice (receivers deduplicate on
`webhook-id`, which never changes), but it is recorded once, and it never schedules a second chain of
retries. A message without a body (sent by the sweeper) reads the delivery first and is dropped if the
attempt it names is no longer the one due.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from dataclasses import dataclass

from switchyard.adapters import webhook_http
from switchyard.adapters.media_store import MediaStore
from switchyard.adapters.webhook_queue import DeliveryMessage
from switchyard.adapters.webhooks_table import WebhooksTable
from switchyard.caches import cached
from switchyard.clock import now_ms
from switchyard.services.webhook_directory import EndpointDirectory
from switchyard.services.webhook_events import WebhookEvents, get_webhook_events
from switchyard.settings import Settings, get_settings
from switchyard.webhook_model import Attempt, Delivery, DeliveryState, EndpointStatus, WebhookEndpoint
from switchyard.webhook_signing import delivery_headers

logger = logging.getLogger(__name__)

JITTER = 0.1
MAX_RETRY_AFTER_SECONDS = 24 * 3600


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None when absent or malformed."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def next_delay(
    schedule: tuple[int, ...], failed_index: int, retry_after: str | None, rng: random.Random | None = None
) -> float | None:
    """Seconds until the attempt after the failed attempt `failed_index`; None when the schedule is done."""
    if failed_index + 1 >= len(schedule):
        return None
    delay = float(schedule[failed_index + 1])
    if delay >= 5:  # spread retries that failed together (an outage) so they do not return together
        delay *= (rng or random).uniform(1 - JITTER, 1 + JITTER)
    asked = retry_after_seconds(retry_after)
    if asked is not None:
        delay = max(delay, min(asked, MAX_RETRY_AFTER_SECONDS))
    return delay


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one message came to (for logs, metrics and tests)."""

    action: str  # succeeded | retrying | failed | disabled | stale | waiting
    delivery_id: str
    detail: str = ""


class WebhookDeliverer:
    def __init__(
        self,
        settings: Settings,
        table: WebhooksTable,
        directory: EndpointDirectory,
        events: WebhookEvents,
        media: MediaStore,
    ):
        self.settings = settings
        self.table = table
        self.directory = directory
        self.events = events
        self.media = media

    def deliver(self, message: DeliveryMessage) -> DeliveryOutcome:
        if message.token is not None:
            return self._manual(message, message.token)
        return self._scheduled(message)

    # ------------------------------------------------------------ the schedule
    def _scheduled(self, message: DeliveryMessage) -> DeliveryOutcome:
        index = message.index or 0
        delivery = Delivery(
            message.delivery_id,
            message.webhook_id,
            message.event or "",
            0,
            DeliveryState.PENDING,
            body=message.body,
            generation_id=message.generation_id,
        )
        if message.body is None:
            stored = self.table.get_delivery(message.webhook_id, message.delivery_id)
            if stored is None or stored.state != DeliveryState.PENDING or stored.next_index != index:
                return DeliveryOutcome("stale", message.delivery_id, "no longer due")
            early = ((stored.next_attempt_ms or 0) - now_ms()) / 1000
            if early > 1:  # woken ahead of time (a wait longer than SQS can delay): wait the rest
                self.events.send_message(
                    message, max(1, min(early, self.settings.webhook_max_queue_delay_seconds))
                )
                return DeliveryOutcome("waiting", message.delivery_id, f"due in {early:.0f} s")
            delivery = stored
        endpoint = self.directory.get(message.webhook_id)
        if endpoint is None or endpoint.status == EndpointStatus.DISABLED:
            reason = (
                "endpoint deleted" if endpoint is None else f"endpoint disabled ({endpoint.disabled_reason})"
            )
            self.table.record_scheduled_attempt(delivery, index, None, final_reason=reason)
            return DeliveryOutcome("failed", message.delivery_id, reason)
        body = self._body(delivery)
        response = self._post(endpoint, delivery, body)
        attempt = Attempt(now_ms(), "scheduled", response.status_code, response.error, response.duration_ms)
        if response.succeeded:
            self.table.record_scheduled_attempt(delivery, index, attempt, succeeded=True)
            return DeliveryOutcome("succeeded", message.delivery_id, f"HTTP {response.status_code}")
        if response.status_code == 410:
            self._disable(endpoint)
            self.table.record_scheduled_attempt(
                delivery, index, attempt, final_reason="the receiver answered 410 Gone: endpoint disabled"
            )
            return DeliveryOutcome("disabled", message.delivery_id, "410 Gone")
        delay = next_delay(self.settings.webhook_retry_schedule, index, response.retry_after)
        if delay is None:
            reason = f"gave up after {index + 1} attempts (last: {response.error})"
            self.table.record_scheduled_attempt(delivery, index, attempt, final_reason=reason)
            return DeliveryOutcome("failed", message.delivery_id, reason)
        now = now_ms()
        recorded = self.table.record_scheduled_attempt(
            delivery,
            index,
            attempt,
            retry_at_ms=now + int(delay * 1000),
            wake_ms=self.events.wake_ms(now, delay),
        )
        if recorded is None:
            return DeliveryOutcome("stale", message.delivery_id, "attempt already recorded")
        if delay <= self.settings.webhook_max_queue_delay_seconds:
            # Small bodies ride along again; a large one is read from the delivery by the next attempt.
            self.events.send_message(self.events.scheduled_message(delivery, index + 1, delivery.body), delay)
        return DeliveryOutcome("retrying", message.delivery_id, f"{response.error}; next in {delay:.0f} s")

    # ------------------------------------------------------------ redeliveries and tests
    def _manual(self, message: DeliveryMessage, token: str) -> DeliveryOutcome:
        delivery = self.table.get_delivery(message.webhook_id, message.delivery_id)
        if delivery is None or delivery.manual_token != token:
            return DeliveryOutcome("stale", message.delivery_id, "redelivery superseded")
        endpoint = self.directory.get(message.webhook_id)
        if endpoint is None:
            attempt = Attempt(now_ms(), "manual", None, "endpoint deleted", 0)
            self._record_manual(delivery, token, attempt, succeeded=False)
            return DeliveryOutcome("failed", message.delivery_id, "endpoint deleted")
        response = self._post(endpoint, delivery, self._body(delivery))
        attempt = Attempt(now_ms(), "manual", response.status_code, response.error, response.duration_ms)
        self._record_manual(delivery, token, attempt, succeeded=response.succeeded)
        if response.succeeded:
            if endpoint.status == EndpointStatus.DISABLED and self.table.enable_endpoint(endpoint.webhook_id):
                self.directory.invalidate(endpoint.webhook_id)
            return DeliveryOutcome("succeeded", message.delivery_id, f"HTTP {response.status_code}")
        if response.status_code == 410:
            self._disable(endpoint)
            return DeliveryOutcome("disabled", message.delivery_id, "410 Gone")
        return DeliveryOutcome("failed", message.delivery_id, response.error or "")

    def _record_manual(self, delivery: Delivery, token: str, attempt: Attempt, *, succeeded: bool) -> None:
        # A delivery with a schedule still running keeps it; one without (finished, or a test) now says
        # how its latest attempt went.
        scheduled = delivery.state == DeliveryState.PENDING and delivery.next_attempt_ms is not None
        reason = None if succeeded or scheduled else f"redelivery failed: {attempt.error}"
        self.table.record_manual_attempt(delivery, token, attempt, succeeded=succeeded, final_reason=reason)

    # ------------------------------------------------------------ plumbing
    def _body(self, delivery: Delivery) -> str:
        if delivery.body is not None:
            return delivery.body
        if delivery.body_key:
            return self.media.get(delivery.body_key).content.decode()
        raise LookupError(f"delivery {delivery.delivery_id} has no body")

    def _post(self, endpoint: WebhookEndpoint, delivery: Delivery, body: str) -> webhook_http.WebhookResponse:
        headers = delivery_headers(
            secrets=endpoint.signing_secrets(now_ms()),
            webhook_id=delivery.delivery_id,
            timestamp=int(time.time()),
            body=body,
            event=delivery.event,
            endpoint_id=endpoint.webhook_id,
            generation_id=delivery.generation_id,
        )
        return webhook_http.post_webhook(
            endpoint.url,
            body.encode(),
            headers,
            timeout_seconds=self.settings.webhook_timeout_seconds,
            policy=self.settings.provider_endpoint_policy,
        )

    def _disable(self, endpoint: WebhookEndpoint) -> None:
        if self.table.disable_endpoint(endpoint.webhook_id, "the receiver answered 410 Gone", now_ms()):
            logger.warning("webhook %s disabled: its receiver answered 410 Gone", endpoint.webhook_id)
        self.directory.invalidate(endpoint.webhook_id)


@cached
def get_webhook_deliverer() -> WebhookDeliverer:
    events = get_webhook_events()
    return WebhookDeliverer(get_settings(), events.table, events.directory, events, events.media)
