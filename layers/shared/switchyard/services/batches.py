"""Batches as callers see them: up to 256 async requests submitted, read, listed and canceled together.

Creating a batch is crash safe without a transaction (which would stop at 100 items): the batch item is
written CREATING, then its jobs (BatchWriteItem), then one conditional write commits the batch, and only
then are the jobs queued (SendMessageBatch). Until the commit, the batch and its jobs are invisible and
inert; a batch whose creator died before committing is deleted, jobs and all, by the sweeper. A message
SQS refused after the commit is re-sent by the sweeper's lost-message pass, like any job's.
"""

from __future__ import annotations

import builtins
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from switchyard.adapters.batches_table import BatchesTable, get_batches_table
from switchyard.adapters.jobs_table import JobsTable, get_jobs_table
from switchyard.batch_model import Batch, BatchState, JobSummary
from switchyard.caches import cached
from switchyard.catalog import Endpoint, endpoint_for
from switchyard.clock import now_ms
from switchyard.errors import ApiError, InvalidRequest, NotFound, TooLarge
from switchyard.ids import new_id
from switchyard.job_model import ACTIVE, Job, JobWebhook
from switchyard.logs import carry_log_keys
from switchyard.services import job_telemetry
from switchyard.services.job_lifecycle import JobLifecycle, get_job_lifecycle
from switchyard.services.jobs import JobsService, get_jobs_service
from switchyard.services.webhooks import WebhooksService, get_webhooks_service
from switchyard.settings import Settings, get_settings
from switchyard.validation import validate_inference_body, webhook_id_of

logger = logging.getLogger(__name__)

MAX_ITEMS = 256
MAX_LABEL_LENGTH = 256
MAX_LIST_LIMIT = 50
MAX_REPORTED_PROBLEMS = 10
# The async-capable JSON endpoints; 3D and the file-upload endpoints are not batch-submittable.
BATCH_ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/images/generations",
    "/v1/videos/generations",
    "/v1/music/generations",
    "/v1/audio/speech",
    "/v1/embeddings",
)


class BatchCreationFailed(ApiError):
    status_code = 500
    error_type = "server_error"


@dataclass(frozen=True)
class BatchItem:
    endpoint: Endpoint
    body: dict[str, Any]  # the caller's body minus `async`


@dataclass(frozen=True)
class BatchRequest:
    items: tuple[BatchItem, ...]
    label: str | None
    webhook_id: str | None = None  # metadata.webhook_id: hears batch.completed

    def fingerprint_payload(self) -> dict[str, Any]:
        """What must match for an Idempotency-Key replay."""
        payload: dict[str, Any] = {
            "label": self.label,
            "requests": [{"endpoint": item.endpoint.path, "body": item.body} for item in self.items],
        }
        if self.webhook_id:
            payload["webhook_id"] = self.webhook_id
        return payload


def parse_batch_request(data: dict[str, Any]) -> BatchRequest:
    """Validate every item as its direct call would be; any problem rejects the whole batch."""
    requests = data.get("requests")
    if requests is None:
        raise InvalidRequest("requests: Field required", param="requests")
    if not isinstance(requests, list):
        raise InvalidRequest("requests: must be an array of {endpoint, body} objects.", param="requests")
    if not requests:
        raise InvalidRequest("requests: must contain at least 1 item.", param="requests")
    if len(requests) > MAX_ITEMS:
        raise TooLarge(
            f"requests: a batch holds at most {MAX_ITEMS} items; got {len(requests)}.", param="requests"
        )
    label = data.get("label")
    if label is not None and not isinstance(label, str):
        raise InvalidRequest("label: must be a string.", param="label")
    if label is not None and len(label) > MAX_LABEL_LENGTH:
        raise InvalidRequest(f"label: at most {MAX_LABEL_LENGTH} characters.", param="label")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidRequest("metadata: must be an object.", param="metadata")
    webhook_id = webhook_id_of(data)

    items: list[BatchItem] = []
    problems: list[InvalidRequest] = []
    for index, raw in enumerate(requests):
        try:
            items.append(_parse_item(index, raw))
        except InvalidRequest as problem:
            problems.append(problem)
    if problems:
        messages = [p.message for p in problems[:MAX_REPORTED_PROBLEMS]]
        if len(problems) > MAX_REPORTED_PROBLEMS:
            messages.append(f"and {len(problems) - MAX_REPORTED_PROBLEMS} more malformed items")
        raise InvalidRequest("; ".join(messages), param=problems[0].param)
    return BatchRequest(tuple(items), label, webhook_id)


def _parse_item(index: int, raw: Any) -> BatchItem:
    where = f"requests[{index}]"
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where}: must be an object with endpoint and body.", param=where)
    path = raw.get("endpoint")
    if not isinstance(path, str) or not path:
        raise InvalidRequest(f"{where}.endpoint: Field required", param=f"{where}.endpoint")
    endpoint = endpoint_for(path)
    if endpoint is None or endpoint.path not in BATCH_ENDPOINTS:
        raise InvalidRequest(
            f"{where}.endpoint: '{path}' is not batch-submittable (use one of {', '.join(BATCH_ENDPOINTS)}).",
            param=f"{where}.endpoint",
        )
    body = raw.get("body")
    if not isinstance(body, dict):
        raise InvalidRequest(f"{where}.body: must be a JSON object.", param=f"{where}.body")
    if not isinstance(body.get("async", False), bool):
        raise InvalidRequest(
            f"{where}.body.async: Input should be a valid boolean", param=f"{where}.body.async"
        )
    body = {k: v for k, v in body.items() if k != "async"}  # every item is async already
    try:
        validate_inference_body(endpoint.path, body, prefix=f"{where}.body.")
    except InvalidRequest as problem:
        param = f"{where}.body.{problem.param}" if problem.param else f"{where}.body"
        raise InvalidRequest(problem.message, param=param) from problem
    webhook_id_of(body, f"{where}.body.")  # its type now; whose it is once the caller is known
    return BatchItem(endpoint, body)


class BatchesService:
    def __init__(
        self,
        settings: Settings,
        jobs: JobsService,
        lifecycle: JobLifecycle,
        jobs_table: JobsTable,
        table: BatchesTable,
        webhooks: WebhooksService,
    ):
        self.settings = settings
        self.jobs = jobs
        self.lifecycle = lifecycle
        self.jobs_table = jobs_table
        self.table = table
        self.webhooks = webhooks

    def ensure_enabled(self) -> None:
        self.jobs.ensure_enabled()

    # -- creating
    def submit(self, account_id: str, request: BatchRequest, base_url: str | None = None) -> dict[str, Any]:
        self.ensure_enabled()
        webhooks = self._webhooks_of(account_id, request, base_url)  # a 400 before anything is stored
        batch_id = new_id("batch_")
        jobs = [
            self._new_job(account_id, batch_id, item, webhook)
            for item, webhook in zip(request.items, webhooks, strict=True)
        ]
        batch = Batch(
            batch_id=batch_id,
            account_id=account_id,
            state=BatchState.CREATING,
            created_ms=jobs[0].created_ms,
            job_ids=[job.job_id for job in jobs],
            label=request.label,
            expires_at=jobs[0].expires_at,
        )
        self.table.create(batch)  # 1. the invisible marker, findable by the sweeper
        try:
            self.jobs_table.batch_create(jobs)  # 2. the jobs, inert while their batch is not committed
            committed = self.table.commit(batch_id)  # 3. everything becomes visible at once
        except Exception:
            self._discard(batch)
            raise
        if not committed:  # the sweeper gave up on it first (only if creation outlived the abandon delay)
            self._discard(batch)
            raise BatchCreationFailed("The batch took too long to create and was discarded; submit it again.")
        batch.state = BatchState.COMMITTED
        self.lifecycle.enqueue_many(jobs)  # 4. wake the dispatcher (the sweeper re-sends what SQS refused)
        job_telemetry.jobs_submitted(jobs)
        return batch.public([JobSummary(job.job_id, job.status, job.inference_type) for job in jobs])

    def _new_job(self, account_id: str, batch_id: str, item: BatchItem, webhook: JobWebhook | None) -> Job:
        return self.jobs.new_job(account_id, item.endpoint, item.body, batch_id=batch_id, webhook=webhook)

    def _webhooks_of(
        self, account_id: str, request: BatchRequest, base_url: str | None
    ) -> list[JobWebhook | None]:
        """Per item, whom its job's end concerns: the webhook its own body names, and the batch's (its
        end counts towards batch.completed)."""
        if request.webhook_id:
            self.webhooks.require(account_id, request.webhook_id)
        found = []
        for index, item in enumerate(request.items):
            own = self.webhooks.job_webhook(account_id, item.body, base_url, where=f"requests[{index}].body.")
            if request.webhook_id:
                own = JobWebhook(
                    webhook_id=own.webhook_id if own else None,
                    base_url=base_url,
                    batch_webhook_id=request.webhook_id,
                    batch_total=len(request.items),
                )
            found.append(own)
        return found

    def _discard(self, batch: Batch) -> None:
        """Best effort: a batch that will never be committed goes now rather than at the next sweep."""
        try:
            if self._abandon(batch.batch_id):
                self._delete(batch)
        except Exception:  # the sweeper deletes what is left
            logger.exception("could not discard batch %s; the sweeper will", batch.batch_id)

    def _abandon(self, batch_id: str) -> bool:
        """Make sure the batch can never be committed; False if it was (its commit went through, even if
        the answer was lost: the batch is live) or is already gone."""
        if self.table.abandon(batch_id):
            return True
        current = self.table.get(batch_id)
        return current is not None and current.state == BatchState.ABANDONED

    def _delete(self, batch: Batch) -> None:
        # Jobs first: while the batch item exists, the sweeper can still find what is left.
        self.jobs_table.batch_delete(batch.job_ids)
        self.table.delete(batch.batch_id)

    # -- reading
    def get(self, account_id: str, batch_id: str) -> dict[str, Any]:
        batch = self._visible_batch(account_id, batch_id)
        return batch.public(self._jobs_of(batch, self.jobs_table.summaries(batch.job_ids)))

    # Below this method, `list` in an annotation names it: those annotations spell `builtins.list`.
    def list(self, account_id: str, *, limit: int, after: str | None) -> tuple[list[dict[str, Any]], bool]:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest(f"limit: must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
        batches, has_more = self.table.list_for_account(account_id, limit=limit, after=after)
        summaries = self.jobs_table.summaries([job_id for batch in batches for job_id in batch.job_ids])
        return [batch.public(self._jobs_of(batch, summaries), with_jobs=False) for batch in batches], has_more

    def _visible_batch(self, account_id: str, batch_id: str) -> Batch:
        batch = self.table.get(batch_id)
        if batch is None or batch.account_id != account_id or batch.state != BatchState.COMMITTED:
            raise NotFound(f"No batch '{batch_id}'.")
        return batch

    @staticmethod
    def _jobs_of(batch: Batch, summaries: dict[str, JobSummary]) -> builtins.list[JobSummary]:
        return [summaries[job_id] for job_id in batch.job_ids if job_id in summaries]

    # -- changing
    def cancel(self, account_id: str, batch_id: str) -> dict[str, Any]:
        """Cancel every QUEUED or PROCESSING job; each cancel is conditional, so a job that finishes
        meanwhile keeps its result."""
        batch = self._visible_batch(account_id, batch_id)
        active = [s.job_id for s in self.jobs_table.summaries(batch.job_ids).values() if s.status in ACTIVE]
        if active:
            with ThreadPoolExecutor(max_workers=min(8, len(active))) as pool:
                list(pool.map(carry_log_keys(self.lifecycle.cancel), active))
        return batch.public(self._jobs_of(batch, self.jobs_table.summaries(batch.job_ids)))

    # -- housekeeping (the sweeper)
    def delete_abandoned(self) -> builtins.list[str]:
        """Delete batches whose creator died before committing them, with their jobs."""
        cutoff = now_ms() - int(self.settings.batch_abandon_after_seconds * 1000)
        deleted = []
        for batch in self.table.uncommitted_before(cutoff):
            # The creator may still commit (the index is also eventually consistent): delete only a batch
            # that is out of CREATING for good.
            try:
                if self._abandon(batch.batch_id):
                    self._delete(batch)
                    deleted.append(batch.batch_id)
            except Exception:  # one batch must not stop the sweep; the next one retries
                logger.exception("could not delete abandoned batch %s", batch.batch_id)
        return deleted


@cached
def get_batches_service() -> BatchesService:
    return BatchesService(
        get_settings(),
        get_jobs_service(),
        get_job_lifecycle(),
        get_jobs_table(),
        get_batches_table(),
        get_webhooks_service(),
    )
