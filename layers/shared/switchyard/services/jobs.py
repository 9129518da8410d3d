"""Async jobs as callers see them: submit, read, list, cancel, retry, summarise."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from switchyard.adapters.batches_table import BatchesTable
from switchyard.adapters.jobs_queue import JobMessage, JobsQueue
from switchyard.adapters.jobs_table import JobsTable, now_ms
from switchyard.adapters.media_store import MediaStore
from switchyard.catalog import Endpoint
from switchyard.errors import AsyncDisabled, Conflict, InvalidRequest, NotFound
from switchyard.ids import new_id
from switchyard.job_model import ACTIVE, FINISHED, RETRYABLE, Job, JobStatus
from switchyard.settings import Settings, get_settings
from switchyard.validation import provider_body

logger = logging.getLogger(__name__)

DISPATCHER_TICK_ID = "system#dispatcher"
SWEEPER_TICK_ID = "system#sweeper"
MAX_LIST_LIMIT = 100


@dataclass(frozen=True)
class Asset:
    content: bytes | None
    content_type: str
    redirect_url: str | None = None


class JobsService:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.table = JobsTable(settings.jobs_table)
        self.queue = JobsQueue(settings.jobs_queue_url)
        self.media = MediaStore(settings.media_bucket)
        self.batches = BatchesTable(settings.batches_table)

    def ensure_enabled(self) -> None:
        if not self.settings.async_enabled:
            raise AsyncDisabled()

    # -- creating
    def new_job(self, account_id: str, endpoint: Endpoint, data: dict[str, Any], **extra: Any) -> Job:
        """A QUEUED job for a validated body (not yet stored)."""
        if not endpoint.can_queue:
            raise InvalidRequest(f"{endpoint.path} is synchronous only and cannot be queued.", param="async")
        now = now_ms()
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
            extra={k: v for k, v in extra.items() if v is not None},
        )
        body = json.dumps(provider_body(data), separators=(",", ":"))
        if len(body) > self.settings.inline_result_limit_bytes:
            job.body_key = f"payloads/{job.job_id}.json"
            self.media.put(job.body_key, body.encode(), "application/json")
        else:
            job.body = body
        return job

    def submit(self, account_id: str, endpoint: Endpoint, data: dict[str, Any], **extra: Any) -> Job:
        self.ensure_enabled()
        job = self.new_job(account_id, endpoint, data, **extra)
        self.table.create(job)
        self.enqueue(job)
        return job

    def enqueue(self, job: Job, delay_seconds: int = 0) -> None:
        """Wake the dispatcher. A lost message is not lost work: the sweeper re-sends it."""
        try:
            self.queue.send(JobMessage.for_job(job), delay_seconds)
        except Exception:  # the job is stored; the sweeper will re-queue it
            logger.exception("could not send job %s to the queue; the sweeper will re-send it", job.job_id)

    # -- reading
    def get(self, account_id: str, job_id: str) -> Job:
        job = self.table.get(job_id)
        if job is None or job.account_id != account_id or not self.visible([job]):
            raise NotFound(f"No job '{job_id}'.")
        return job

    def visible(self, jobs: list[Job]) -> list[Job]:
        """Jobs of a batch that is not committed (still being created, or abandoned) do not exist yet.

        Only batch jobs need a look-up, one per distinct batch, and a committed batch is remembered.
        """
        committed = self.batches.committed({job.batch_id for job in jobs if job.batch_id})
        return [job for job in jobs if not job.batch_id or job.batch_id in committed]

    def visible_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`visible` for raw job items (the active-work index)."""
        committed = self.batches.committed({item["batch_id"] for item in items if item.get("batch_id")})
        return [item for item in items if not item.get("batch_id") or item["batch_id"] in committed]

    def envelope(self, job: Job, asset_base_url: str | None) -> dict[str, Any]:
        if job.status == JobStatus.PROCESSED and not job.is_media and job.result is None and job.result_key:
            job.result = self.media.get(job.result_key).content.decode()
        return job.envelope(asset_base_url)

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
        return self.table.list_for_account(
            account_id, statuses=statuses, limit=limit, after=after, active_only=active, keep=self.visible
        )

    # -- changing
    def cancel(self, account_id: str, job_id: str) -> tuple[Job, bool]:
        """(job, canceled): canceling a finished job changes nothing and says so."""
        job = self.get(account_id, job_id)
        if job.status in FINISHED:
            return job, False
        canceled = self.cancel_active(job_id)
        if canceled is None:  # it finished in the meantime
            return self.get(account_id, job_id), False
        return canceled, True

    def cancel_active(self, job_id: str) -> Job | None:
        """QUEUED or PROCESSING -> CANCELED (conditional); None if the job had already finished."""
        canceled = self.table.transition(
            job_id,
            from_statuses=ACTIVE,
            to_status=JobStatus.CANCELED,
            set_values={"finished_ms": now_ms()},
            remove=("lease_until_ms",),
        )
        if canceled is not None:
            self.after_finish(canceled)
        return canceled

    def retry(self, account_id: str, job_id: str) -> Job:
        job = self.get(account_id, job_id)
        self.ensure_enabled()
        if job.status not in RETRYABLE:
            raise Conflict(
                f"Job '{job_id}' is {job.status.value}; only FAILED or CANCELED jobs can be retried."
            )
        if job.extra.get("workflow_run_id"):  # its step has ended; a re-run would change nothing
            raise Conflict(
                f"Job '{job_id}' is step '{job.extra.get('workflow_step_id')}' of workflow run "
                f"'{job.extra['workflow_run_id']}'; start a new run instead of retrying the job."
            )
        now = now_ms()
        requeued = self.table.transition(
            job_id,
            from_statuses=RETRYABLE,
            to_status=JobStatus.QUEUED,
            set_values={"attempt": 0, "queued_ms": now},
            add={"gen": 1, "manual_retries": 1},
            remove=(
                "error_type",
                "error_message",
                "claim_id",
                "provider_id",
                "lease_until_ms",
                "started_ms",
                "finished_ms",
                "result",
                "result_key",
                "result_content_type",
                "seen_ms",
            ),
            reactivate_for=account_id,
        )
        if requeued is None:
            raise Conflict(f"Job '{job_id}' changed state; only FAILED or CANCELED jobs can be retried.")
        self.enqueue(requeued)
        return requeued

    def after_finish(self, job: Job) -> None:
        """Work that follows a job's end, whoever ended it (dispatcher, cancel, sweeper)."""
        if job.extra.get("task_token"):
            # A workflow step's job: answer the step's task token (imported lazily: few jobs are steps).
            from switchyard.services.workflow_runner import report_job_end

            report_job_end(job)

    # -- assets
    def asset(self, account_id: str, job_id: str) -> Asset:
        job = self.get(account_id, job_id)
        if job.status != JobStatus.PROCESSED or not job.is_media or not job.result_key:
            raise NotFound(f"Job '{job_id}' has no stored asset.")
        size = self.media.head_size(job.result_key)
        if size > self.settings.asset_inline_limit_bytes:
            return Asset(None, job.result_content_type or "", self.media.presigned_url(job.result_key))
        stored = self.media.get(job.result_key)
        return Asset(stored.content, stored.content_type)

    # -- liveness and summary
    def record_tick(self, which: str) -> None:
        self.table.record_tick(which)

    def summary(self, account_id: str) -> dict[str, Any]:
        active = self.visible_items(self.table.active_jobs(account_id))
        queued = sum(1 for item in active if item.get("status") == JobStatus.QUEUED.value)
        processing = sum(1 for item in active if item.get("status") == JobStatus.PROCESSING.value)
        dispatcher_tick = self.table.last_tick_ms(DISPATCHER_TICK_ID)
        stale_after_ms = self.settings.dispatcher_stalled_after_seconds * 1000
        stalled = bool(queued) and (dispatcher_tick is None or now_ms() - dispatcher_tick > stale_after_ms)
        # A job queued just now has not had its chance yet: only call it stalled once work has waited.
        if stalled and dispatcher_tick is None:
            oldest = min(int(item.get("queued_ms", now_ms())) for item in active)
            stalled = now_ms() - oldest > stale_after_ms
        return {
            "object": "queue.summary",
            "async_enabled": self.settings.async_enabled,
            "worker_stalled": stalled,
            "active": queued + processing,
            "queued": queued,
            "processing": processing,
            "dispatcher_last_tick_at": _iso_or_none(dispatcher_tick),
            "sweeper_last_tick_at": _iso_or_none(self.table.last_tick_ms(SWEEPER_TICK_ID)),
        }


def _iso_or_none(ms: int | None) -> str | None:
    from switchyard.job_model import iso

    return iso(ms) if ms else None


def new_claim_id() -> str:
    return secrets.token_hex(8)


@lru_cache(maxsize=1)
def get_jobs_service() -> JobsService:
    return JobsService(get_settings())
