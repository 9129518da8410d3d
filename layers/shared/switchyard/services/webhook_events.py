"""Announcing what happened to the webhook endpoints that asked to hear of it.

At-least-once, from the happening to a 2xx (the delivery function, `webhook_delivery`, does the sending):

1. A happening has a *stable webhook-id*. The delivery id (sent as `webhook-id`) is derived from what
   happened: a job's end (job id and the generation it ended at), a run's end, a gate starting to wait,
   a batch becoming complete. Announcing it again yields the same id, and storing the delivery is a
   conditional write, so every announcer may simply announce again until it has succeeded: duplicates
   end as "already stored". Retries and redeliveries reuse the stored delivery, hence the same id.
2. Nothing is lost before the delivery is stored. Every job's final transition (whoever makes it) marks
   the job unannounced *in the same write*: the jobs table's one outbox of job ends, the sparse
   `unannounced_ends` index (switchyard/job_end.py). The job-end hook announces to every subscriber,
   this one included, and takes the job out of the index only when all of them returned; this subscriber
   raises when it could not store (and queue) what it owes, and if its process dies in between, the
   sweeper finds the job there and announces it again. Run ends and gate waits are announced by Step
   Functions tasks that are retried until they succeed; a test is announced by the request that asked
   for it.
3. Nothing is lost after. A pending delivery either has a message in SQS (durable: the delivery function
   deletes it only after recording the attempt, and SQS parks it in the alarmed DLQ after 5 failed
   receives) or a wake time in the webhooks table's sparse `by_wake` index: when a message could not be
   sent, when a retry's message goes out (written with the attempt, in case the process dies before it
   sends), and for waits longer than SQS can delay a message (900 s: the sweeper sends the message shortly
   before it is due). A first announcement that stored its delivery and died before sending is announced
   again (point 2), and an announcement that finds its delivery stored and never attempted sends again.

A batch's completion is counted from its jobs' announcements (a hint: a job retried after its end counts
twice), and confirmed from the jobs themselves before batch.completed is announced.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from switchyard import metrics
from switchyard.adapters.batches_table import BatchesTable, get_batches_table
from switchyard.adapters.jobs_table import JobsTable, get_jobs_table
from switchyard.adapters.media_store import MediaStore
from switchyard.adapters.webhook_queue import DeliveryMessage, SendFailed, WebhookQueue, get_webhook_queue
from switchyard.adapters.webhooks_table import WebhooksTable, get_webhooks_table
from switchyard.batch_model import BatchState, BatchStatus
from switchyard.caches import cached
from switchyard.catalog import ServiceType
from switchyard.clock import ms_from_iso, now_ms
from switchyard.generation import generation_of
from switchyard.ids import new_id
from switchyard.job_model import Job
from switchyard.services.webhook_directory import EndpointDirectory, get_endpoint_directory
from switchyard.settings import Settings, get_settings
from switchyard.webhook_model import (
    Delivery,
    DeliveryState,
    EndpointStatus,
    Event,
    EventType,
    WebhookEndpoint,
)
from switchyard.workflows.records import Run

logger = logging.getLogger(__name__)


@dataclass
class WebhookSweepReport:
    woken: int = 0  # deliveries whose message the sweeper sent
    parked: int = 0  # deliveries in the wake index after the sweep (the backlog gauge)


class WebhookEvents:
    def __init__(
        self,
        settings: Settings,
        table: WebhooksTable,
        queue: WebhookQueue,
        directory: EndpointDirectory,
        media: MediaStore,
        jobs: JobsTable,
        batches: BatchesTable,
    ):
        self.settings = settings
        self.table = table
        self.queue = queue
        self.directory = directory
        self.media = media
        self.jobs = jobs
        self.batches = batches

    # ------------------------------------------------------------ job ends
    def announce_job_end(self, job: Job) -> None:
        """Store and queue what the end of `job` owes its webhook and its batch's. Raises when it could
        not: the job stays unannounced and the sweeper announces it again (emit is idempotent)."""
        if job.webhook_id:
            self.emit(self.generation_event(job))
        if job.batch_webhook_id:
            self._batch_job_ended(job)

    def generation_event(self, job: Job) -> Event:
        kind = (
            EventType.EMBEDDING_COMPLETED
            if job.service_type == ServiceType.EMBEDDING.value
            else EventType.GENERATION_COMPLETED
        )
        return Event(
            type=kind,
            webhook_id=str(job.webhook_id),
            source=f"job:{job.job_id}:{job.gen}",
            event_ms=int(job.finished_ms or now_ms()),
            data=generation_of(job, self.media, job.base_url, self.settings.read_inline_result_limit_bytes),
            generation_id=job.job_id,
        )

    def _batch_job_ended(self, job: Job) -> None:
        batch_id, webhook_id = str(job.batch_id), str(job.batch_webhook_id)
        total = int(job.batch_total or 0)
        ended, announced_ms = self.table.count_batch_end(
            batch_id, webhook_id=webhook_id, total=total, expires_at=self._expires_at()
        )
        if announced_ms is None and ended < total:
            return
        batch = self._batch_view(batch_id)
        if batch is None or batch["status"] != BatchStatus.DONE:
            return  # counted twice somewhere (a retried job): a later end confirms again
        announced_ms = announced_ms or self.table.announce_batch(batch_id, now_ms())
        self.emit(
            Event(
                type=EventType.BATCH_COMPLETED,
                webhook_id=webhook_id,
                source=f"batch:{batch_id}",
                event_ms=announced_ms,
                data=batch,
            )
        )

    def _batch_view(self, batch_id: str) -> dict[str, Any] | None:
        """The batch as GET /v1/batches/<id> shows it, from its jobs' current statuses."""
        batch = self.batches.get(batch_id)
        if batch is None or batch.state != BatchState.COMMITTED:
            return None
        summaries = self.jobs.summaries(batch.job_ids)
        return batch.public([summaries[job_id] for job_id in batch.job_ids if job_id in summaries])

    # ------------------------------------------------------------ workflows
    def run_ended(self, run: Run, summary: dict[str, Any]) -> None:
        """workflow.run.completed, for a run whose start named a webhook. Raises if it could not be
        stored: the caller is a Step Functions task, retried until it succeeds."""
        if not run.webhook_id:
            return
        self.emit(
            Event(
                type=EventType.WORKFLOW_RUN_COMPLETED,
                webhook_id=run.webhook_id,
                source=f"run:{run.run_id}",
                event_ms=int(run.finished_ms or now_ms()),
                data=summary,
            )
        )

    def gate_waiting(self, run: Run, gate: dict[str, Any]) -> None:
        """workflow.gate.waiting (data: `gate`), so that a person can be told to approve. Raises like
        run_ended. The webhook-id is the gate's: a retried task announces the same event."""
        if not run.webhook_id:
            return
        self.emit(
            Event(
                type=EventType.WORKFLOW_GATE_WAITING,
                webhook_id=run.webhook_id,
                source=f"gate:{run.run_id}:{gate['step_id']}",
                event_ms=ms_from_iso(gate.get("waiting_since")) or now_ms(),
                data=gate,
            )
        )

    # ------------------------------------------------------------ storing and waking
    def emit(self, event: Event) -> Delivery | None:
        """Store the delivery of `event` (once) and wake the delivery function; None when the endpoint
        is gone or does not take this event type."""
        endpoint = self.directory.get(event.webhook_id)
        if endpoint is None:
            logger.info("webhook %s is gone; %s not announced", event.webhook_id, event.type.value)
            return None
        if not endpoint.accepts(event.type):
            return None
        now = now_ms()
        first_delay = self.settings.webhook_retry_schedule[0]
        delivery = self._new_delivery(event, now, now + first_delay * 1000)
        reason = None
        if endpoint.status == EndpointStatus.DISABLED:
            delivery.state, delivery.next_attempt_ms = DeliveryState.FAILED, None
            reason = f"endpoint disabled ({endpoint.disabled_reason})"
        pending = delivery.state == DeliveryState.PENDING
        queued = pending and first_delay <= self._queue_limit()
        # A delivery whose message SQS takes needs no wake time (that saves two index writes a delivery);
        # one whose message could not be sent, or that waits longer than SQS can delay, gets one.
        created = self.table.create_delivery(
            delivery,
            expires_at=self._expires_at(),
            wake_ms=None if queued else self.wake_ms(now, first_delay),
            final_reason=reason,
        )
        if not created:  # announced before: send again if it may have stopped between storing and sending
            stored = self.table.get_delivery(event.webhook_id, event.delivery_id)
            if (
                queued
                and stored is not None
                and stored.state == DeliveryState.PENDING
                and not stored.attempts
            ):
                self.send_message(self.scheduled_message(stored, 0, event.body()), first_delay)
            return stored
        if queued:
            self.send_message(self.scheduled_message(delivery, 0, event.body()), first_delay)
        return delivery

    def send_test(self, endpoint: WebhookEndpoint) -> Delivery:
        """A webhook.test event, attempted once at once, even on a disabled endpoint (a 2xx enables it)."""
        now = now_ms()
        event = Event(
            type=EventType.TEST,
            webhook_id=endpoint.webhook_id,
            source=new_id("test_"),
            event_ms=now,
            data={
                "webhook_id": endpoint.webhook_id,
                "url": endpoint.url,
                "message": "A test event from Switchyard: verify its signature with your secret.",
            },
        )
        delivery = self._new_delivery(event, now, None)
        delivery.manual_token = secrets.token_hex(8)
        self.table.create_delivery(delivery, expires_at=self._expires_at(), wake_ms=None)
        self.queue.send(
            DeliveryMessage(
                endpoint.webhook_id,
                delivery.delivery_id,
                token=delivery.manual_token,
                event=delivery.event,
                body=event.body(),
            )
        )
        return delivery

    def _new_delivery(self, event: Event, now: int, next_attempt_ms: int | None) -> Delivery:
        body = event.body()
        delivery = Delivery(
            delivery_id=event.delivery_id,
            webhook_id=event.webhook_id,
            event=event.type.value,
            created_ms=now,
            state=DeliveryState.PENDING,
            generation_id=event.generation_id,
            next_index=0,
            next_attempt_ms=next_attempt_ms,
        )
        # The size rule of a job's item holds for a delivery's too (each attempt rewrites the item, billed
        # per KB of all of it): a larger body lives in S3.
        if len(body.encode()) > self.settings.job_item_limit_bytes:
            delivery.body_key = f"webhooks/{event.webhook_id}/{delivery.delivery_id}.json"
            self.media.put(delivery.body_key, body.encode(), "application/json")
        else:
            delivery.body = body
        return delivery

    def scheduled_message(self, delivery: Delivery, index: int, body: str | None) -> DeliveryMessage:
        return DeliveryMessage(
            delivery.webhook_id,
            delivery.delivery_id,
            index=index,
            event=delivery.event,
            generation_id=delivery.generation_id,
            body=body,
        )

    def wake_ms(self, now: int, delay_seconds: float) -> int:
        """When the sweeper should look at a delivery whose next attempt is `delay_seconds` away."""
        due = now + int(delay_seconds * 1000)
        if delay_seconds <= self._queue_limit():  # its message is on the way: look only if it was lost
            return due + self.settings.webhook_lost_message_seconds * 1000
        return due - self.settings.webhook_wake_ahead_seconds * 1000  # parked: send its message then

    def _queue_limit(self) -> int:
        return self.settings.webhook_max_queue_delay_seconds

    def send_message(self, message: DeliveryMessage, delay_seconds: float) -> None:
        """Wake the delivery function. A message SQS refuses gives its delivery a wake time, so the sweeper
        sends it (if even that fails, the announcement fails and is retried: see the module's invariants)."""
        try:
            self.queue.send(message, int(round(delay_seconds)))
        except SendFailed as exc:
            logger.warning("could not queue delivery %s (%s); the sweeper will", message.delivery_id, exc)
            if message.index is not None:
                now = now_ms()
                self.table.mark_woken(
                    message.webhook_id,
                    message.delivery_id,
                    message.index,
                    now + self.settings.webhook_lost_message_seconds * 1000,
                )

    def _expires_at(self) -> int:
        return now_ms() // 1000 + self.settings.webhook_delivery_retention_days * 86400

    # ------------------------------------------------------------ the sweeper's share
    def sweep(self) -> WebhookSweepReport:
        report = WebhookSweepReport()
        now = now_ms()
        for item in self.table.due_for_wake(now):
            try:
                report.woken += self._wake(item, now)
            except Exception:
                logger.exception("could not wake delivery %s", item.get("delivery_id"))
        report.parked = self.table.count_parked()
        metrics.record_webhook_backlog(report.parked)
        return report

    def _wake(self, item: dict[str, Any], now: int) -> int:
        index = int(item.get("next_index", 0))
        due = int(item.get("next_attempt_ms") or now)
        delay = max(0.0, (due - now) / 1000)
        webhook_id, delivery_id = item["pk"], item["delivery_id"]
        # Look again later in case this message is lost too.
        if not self.table.mark_woken(
            webhook_id, delivery_id, index, max(due, now) + self.settings.webhook_lost_message_seconds * 1000
        ):
            return 0
        message = DeliveryMessage(
            webhook_id,
            delivery_id,
            index=index,
            event=item.get("event"),
            generation_id=item.get("generation_id"),
        )
        self.send_message(message, min(delay, self._queue_limit()))
        return 1


@cached
def get_webhook_events() -> WebhookEvents:
    return WebhookEvents(
        get_settings(),
        get_webhooks_table(),
        get_webhook_queue(),
        get_endpoint_directory(),
        MediaStore(get_settings().media_bucket),
        get_jobs_table(),
        get_batches_table(),
    )


def has_webhook(job: Job) -> bool:
    """A webhook hears of this job's end: its own, or its batch's (both set when it was submitted)."""
    return bool(job.webhook_id or job.batch_webhook_id)


def announce_job_end(job: Job) -> None:
    """The job-end hook's webhook subscriber (switchyard.wiring): nothing at all for a job that no
    webhook hears of. Raises when what it owes could not be stored, so the end is announced again."""
    if has_webhook(job):
        get_webhook_events().announce_job_end(job)
