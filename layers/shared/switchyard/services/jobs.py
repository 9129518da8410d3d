"""Async jobs as callers see them: submit, read, list, cancel, retry, summarise."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from switchyard.adapters.batches_table import BatchesTable, get_batches_table
from switchyard.adapters.jobs_table import JobsTable, get_jobs_table
from switchyard.adapters.media_store import MediaStore
from switchyard.caches import cached
from switchyard.catalog import Endpoint
from switchyard.clock import iso, now_ms
from switchyard.errors import AsyncDisabled, Conflict, InvalidRequest, NotFound
from switchyard.ids import new_id
from switchyard.job_model import FINISHED, RETRYABLE, Job, JobStatus, JobWebhook, StoredAsset
from switchyard.job_results import JSON, body_fits
from switchyard.retention import expires_at
from switchyard.services import job_telemetry
from switchyard.services.job_lifecycle import JobLifecycle, get_job_lifecycle
from switchyard.services.rate_limits import get_rate_limiter
from switchyard.settings import Settings, get_settings
from switchyard.tracing import origin
from switchyard.validation import gateway_fields, provider_body

DISPATCHER_TICK_ID = "system#dispatcher"
SWEEPER_TICK_ID = "system#sweeper"
MAX_LIST_LIMIT = 100


@dataclass(frozen=True)
class Asset:
    content: bytes | None
    content_type: str
    redirect_url: str | None = None


class JobsService:
    def __init__(
        self,
        settings: Settings,
        table: JobsTable,
        lifecycle: JobLifecycle,
        media: MediaStore,
        batches: BatchesTable,
        count_unchecked_job: Callable[[str], None] | None = None,
    ):
        self.settings = settings
        self._table = table
        self._lifecycle = lifecycle
        self._media = media
        self._batches = batches
        self._count_unchecked_job = count_unchecked_job

    def ensure_enabled(self) -> None:
        if not self.settings.async_enabled:
            raise AsyncDisabled()

    # -- creating
    def new_job(
        self,
        account_id: str,
        endpoint: Endpoint,
        data: dict[str, Any],
        *,
        batch_id: str | None = None,
        workflow_run_id: str | None = None,
        workflow_step_id: str | None = None,
        task_token: str | None = None,
        webhook: JobWebhook | None = None,
    ) -> Job:
        """A QUEUED job for a validated body (not yet stored). With `webhook`, its end is announced to that
        endpoint (every end is announced at least once: switchyard/job_end.py)."""
        if not endpoint.can_queue:
            raise InvalidRequest(f"{endpoint.path} is synchronous only and cannot be queued.", param="async")
        now = now_ms()
        source = origin()
        job = Job(
            job_id=new_id("job_"),
            account_id=account_id,
            status=JobStatus.QUEUED,
            endpoint=endpoint.path,
            inference_type=endpoint.inference_type,
            service_type=endpoint.service_type.value,
            model=str(data["model"]),
            created_ms=now,
            queued_ms=now,
            batch_id=batch_id,
            workflow_run_id=workflow_run_id,
            workflow_step_id=workflow_step_id,
            task_token=task_token,
            expires_at=expires_at(now, self.settings.retention_days),
            request_id=source.request_id,
            trace_header=source.trace_header,
        )
        if webhook is not None:
            job.webhook_id, job.base_url = webhook.webhook_id, webhook.base_url
            job.batch_webhook_id, job.batch_total = webhook.batch_webhook_id, webhook.batch_total
        taken = gateway_fields(data)
        if taken:  # what the provider does not see, kept so the generation can show the request as sent
            job.client_fields = json.dumps(taken, separators=(",", ":"))
        job.body = json.dumps(provider_body(data), separators=(",", ":"))
        if not body_fits(job, self.settings.job_item_limit_bytes):  # the one size rule (job_results.py)
            job.body_key = f"payloads/{account_id}/{job.job_id}.json"
            self._media.put(job.body_key, job.body.encode(), JSON)
            job.body = None
        return job

    def submit(
        self,
        account_id: str,
        endpoint: Endpoint,
        data: dict[str, Any],
        *,
        webhook: JobWebhook | None = None,
        **step: str,
    ) -> Job:
        """Store a new job and wake the dispatcher; `step` names a workflow step's run, step and token.

        A caller's job was counted in its account's jobs in flight when its request was admitted; a
        workflow step's job is counted here (unchecked: its run was admitted)."""
        self.ensure_enabled()
        job = self.new_job(account_id, endpoint, data, webhook=webhook, **step)
        if step.get("workflow_run_id") and self._count_unchecked_job is not None:
            self._count_unchecked_job(account_id)
        self._table.create(job)
        self._lifecycle.enqueue(job)
        job_telemetry.jobs_submitted([job])
        return job

    # -- reading
    def get(self, account_id: str, job_id: str) -> Job:
        job = self._table.get(job_id)
        if job is None or job.account_id != account_id or not self.visible([job]):
            raise NotFound(f"No job '{job_id}'.")
        return job

    def find(self, job_id: str) -> Job | None:
        """Any account's job, for the gateway's own use (a workflow reading its steps' jobs)."""
        return self._table.get(job_id)

    def find_many(self, job_ids: list[str]) -> dict[str, Job]:
        return self._table.batch_get(job_ids) if job_ids else {}

    def visible(self, jobs: list[Job]) -> list[Job]:
        """Jobs of a batch that is not committed (still being created, or abandoned) do not exist yet.

        Only batch jobs need a look-up, one per distinct batch, and a committed batch is remembered.
        """
        committed = self._batches.committed({job.batch_id for job in jobs if job.batch_id})
        return [job for job in jobs if not job.batch_id or job.batch_id in committed]

    def active(self, account_id: str | None = None) -> list[Job]:
        """QUEUED and PROCESSING jobs that exist (of one account, or of everyone)."""
        return self.visible(self._table.active_jobs(account_id))

    def envelope(self, job: Job, asset_base_url: str | None, *, read_result: bool = True) -> dict[str, Any]:
        """The public envelope. A result kept in S3 is read and inlined only for one job's read
        (`read_result`) and only up to the read bound; lists pass False and show what the item holds."""
        return job.envelope(asset_base_url, result_text=self._result_text(job) if read_result else None)

    def processed_envelope(
        self, job: Job | None, asset_base_url: str | None, *, read_result: bool = True
    ) -> dict[str, Any] | None:
        """The envelope of a PROCESSED job, None for any other job or none."""
        if job is None or job.status != JobStatus.PROCESSED:
            return None
        return self.envelope(job, asset_base_url, read_result=read_result)

    def _result_text(self, job: Job) -> str | None:
        key = job.metadata_key if job.is_media else job.result_key
        if job.status != JobStatus.PROCESSED or job.result is not None or not key:
            return None
        if job.result_bytes is not None and job.result_bytes > self.settings.read_inline_result_limit_bytes:
            return None
        return self._media.get(key).content.decode()

    def list(
        self, account_id: str, *, status: str | None, active: bool, limit: int, after: str | None
    ) -> tuple[list[Job], bool]:
        statuses = None
        if status:
            wanted = tuple(s.strip().upper() for s in status.split(",") if s.strip())
            unknown = [s for s in wanted if s not in JobStatus.__members__]
            if unknown:
                raise InvalidRequest(
                    f"status: unknown status {', '.join(unknown)} (use {', '.join(JobStatus.__members__)}).",
                    param="status",
                )
            statuses = wanted
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest(f"limit: must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
        return self._table.list_for_account(
            account_id, statuses=statuses, limit=limit, after=after, active_only=active, keep=self.visible
        )

    # -- changing
    def cancel(self, account_id: str, job_id: str) -> tuple[Job, bool]:
        """(job, canceled): canceling a finished job changes nothing and says so."""
        job = self.get(account_id, job_id)
        if job.status in FINISHED:
            return job, False
        canceled = self._lifecycle.cancel(job_id)
        if canceled is None:  # it finished in the meantime
            return self.get(account_id, job_id), False
        return canceled, True

    def retry(self, account_id: str, job_id: str) -> Job:
        job = self.get(account_id, job_id)
        self.ensure_enabled()
        if job.status not in RETRYABLE:
            raise Conflict(
                f"Job '{job_id}' is {job.status.value}; only FAILED or CANCELED jobs can be retried."
            )
        if job.workflow_run_id:  # its step has ended; a re-run would change nothing
            raise Conflict(
                f"Job '{job_id}' is step '{job.workflow_step_id}' of workflow run "
                f"'{job.workflow_run_id}'; start a new run instead of retrying the job."
            )
        requeued = self._lifecycle.requeue_by_caller(job_id, account_id)  # its next end is announced too
        if requeued is None:
            raise Conflict(f"Job '{job_id}' changed state; only FAILED or CANCELED jobs can be retried.")
        return requeued

    # -- assets
    def asset(self, account_id: str, job_id: str, index: int = 0) -> Asset:
        """A PROCESSED job's stored output: a media job's `index`-th asset, or (index 0) an LLM answer
        kept in S3. Another account's job, or an index past the last, is not found."""
        job = self.get(account_id, job_id)
        found = self._stored_output(job, index) if job.status == JobStatus.PROCESSED else None
        if found is None:
            what = f"asset {index}" if index else "asset"
            raise NotFound(f"Job '{job_id}' has no stored {what}.")
        size = found.size or self._media.head_size(found.key)
        if size > self.settings.asset_inline_limit_bytes:
            return Asset(None, found.content_type, self._media.presigned_url(found.key))
        stored = self._media.get(found.key)
        return Asset(stored.content, stored.content_type)

    @staticmethod
    def _stored_output(job: Job, index: int) -> StoredAsset | None:
        if job.is_media:
            assets = job.stored_assets
            return assets[index] if 0 <= index < len(assets) else None
        if index == 0 and job.result_key:
            return StoredAsset(job.result_key, job.result_content_type or JSON, job.result_bytes or 0)
        return None

    # -- liveness and summary
    def record_tick(self, which: str) -> None:
        self._table.record_tick(which)

    def last_tick_ms(self, which: str) -> int | None:
        return self._table.last_tick_ms(which)

    def summary(self, account_id: str) -> dict[str, Any]:
        active = self.active(account_id)
        queued = sum(1 for job in active if job.status == JobStatus.QUEUED)
        processing = sum(1 for job in active if job.status == JobStatus.PROCESSING)
        dispatcher_tick = self._table.last_tick_ms(DISPATCHER_TICK_ID)
        stalled = worker_stalled(
            active, dispatcher_tick, now_ms(), self.settings.dispatcher_stalled_after_seconds
        )
        return {
            "object": "queue.summary",
            "async_enabled": self.settings.async_enabled,
            "worker_stalled": stalled,
            "active": queued + processing,
            "queued": queued,
            "processing": processing,
            "dispatcher_last_tick_at": iso(dispatcher_tick),
            "sweeper_last_tick_at": iso(self._table.last_tick_ms(SWEEPER_TICK_ID)),
        }


def worker_stalled(
    active: list[Job], dispatcher_tick_ms: int | None, now: int, stale_after_seconds: float
) -> bool:
    """Jobs are queued and the dispatcher has not ticked for `stale_after_seconds`. A job queued just
    now has not had its chance yet: with no tick ever, only once the oldest queued job waited as long."""
    queued = [job for job in active if job.status == JobStatus.QUEUED]
    if not queued:
        return False
    stale_after_ms = stale_after_seconds * 1000
    if dispatcher_tick_ms is None:
        return now - min(job.queued_ms for job in queued) > stale_after_ms
    return now - dispatcher_tick_ms > stale_after_ms


@cached
def get_jobs_service() -> JobsService:
    settings = get_settings()
    return JobsService(
        settings,
        get_jobs_table(),
        get_job_lifecycle(),
        MediaStore(settings.media_bucket),
        get_batches_table(),
        get_rate_limiter().count_unchecked,
    )
