"""The async job: its states, its stored shape and its public envelope."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from switchyard.catalog import JSON_RESULT_TYPES
from switchyard.clock import iso


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


ACTIVE = (JobStatus.QUEUED, JobStatus.PROCESSING)
FINISHED = (JobStatus.PROCESSED, JobStatus.FAILED, JobStatus.CANCELED)
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELED)


@dataclass(frozen=True)
class JobWebhook:
    """What a job carries when someone must hear of its end: its own webhook (metadata.webhook_id), or
    its batch's, and where its request came in (result URLs in the event)."""

    webhook_id: str | None = None
    base_url: str | None = None
    batch_webhook_id: str | None = None
    batch_total: int | None = None


@dataclass
class Job:
    job_id: str
    account_id: str
    status: JobStatus
    endpoint: str
    inference_type: str
    service_type: str
    model: str
    created_ms: int
    queued_ms: int
    body: str | None = None  # the provider body as JSON text (None when kept in S3 under body_key)
    body_key: str | None = None
    attempt: int = 0
    gen: int = 0
    claim_id: str | None = None
    provider_id: str | None = None
    lease_until_ms: int | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    result: str | None = None  # provider JSON answer (LLM) as text
    result_key: str | None = None  # S3 key of a stored asset or large result
    result_content_type: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    batch_id: str | None = None
    seen_ms: int | None = None  # when the dispatcher (or the sweeper) last looked at it while QUEUED
    wait_reason: str | None = None  # why the dispatcher left it QUEUED the last time it looked
    manual_retries: int | None = None  # how often its owner re-queued it (POST .../retry)
    # A workflow step's job: its run and step, and the task token its end answers.
    workflow_run_id: str | None = None
    workflow_step_id: str | None = None
    task_token: str | None = None
    # Webhooks: the endpoint that hears of its end (metadata.webhook_id) and the gateway URL the request
    # came through (for result URLs in the event); `webhook_outbox` while its end is still to be announced
    # (the jobs table's outbox index); a batch job's batch webhook and the batch's size (batch.completed).
    webhook_id: str | None = None
    base_url: str | None = None
    webhook_outbox: str | None = None
    batch_webhook_id: str | None = None
    batch_total: int | None = None
    # The request fields the provider does not get (`async`, metadata.webhook_id), as sent (JSON text).
    client_fields: str | None = None
    # Where it came from (switchyard/tracing.py): the API request that submitted it and that request's
    # X-Ray trace header, carried on every queue message so each dispatch joins the request's trace.
    request_id: str | None = None
    trace_header: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # attributes later features keep on the item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        values = {k: v for k, v in item.items() if k in known}
        for name in (
            "created_ms",
            "queued_ms",
            "attempt",
            "gen",
            "lease_until_ms",
            "started_ms",
            "finished_ms",
            "seen_ms",
            "manual_retries",
            "batch_total",
        ):
            if values.get(name) is not None:
                values[name] = int(values[name])
        values["status"] = JobStatus(values["status"])
        extra = {k: v for k, v in item.items() if k not in known and k != "active_account"}
        return cls(**values, extra=extra)

    def to_item(self) -> dict[str, Any]:
        item = {k: v for k, v in self.__dict__.items() if k != "extra" and v is not None}
        item["status"] = self.status.value
        item.update(self.extra)
        if self.status in ACTIVE:
            item["active_account"] = self.account_id  # sparse index of active work
        return item

    @property
    def is_media(self) -> bool:
        return self.inference_type not in JSON_RESULT_TYPES

    def envelope(self, asset_base_url: str | None = None) -> dict[str, Any]:
        """The public `inference.job` object."""
        out: dict[str, Any] = {
            "id": self.job_id,
            "object": "inference.job",
            "status": self.status.value,
            "inference_type": self.inference_type,
            "model": self.model,
            "created": self.created_ms // 1000,
            "queued_at": iso(self.queued_ms),
        }
        if self.started_ms:
            out["started_at"] = iso(self.started_ms)
        if self.finished_ms:
            out["finished_at"] = iso(self.finished_ms)
        out["attempts"] = self.attempt
        if self.batch_id:
            out["batch_id"] = self.batch_id
        if self.workflow_run_id:  # a workflow step's job
            out["workflow_run_id"] = self.workflow_run_id
            out["workflow_step_id"] = self.workflow_step_id
        if self.status == JobStatus.PROCESSED:
            if self.result is not None:
                out["result"] = json.loads(self.result)
            if self.is_media and self.result_key and asset_base_url is not None:
                out["result_url"] = f"{asset_base_url}/api/inference/assets/{self.job_id}/"
        if self.error_type:
            out["error"] = {"type": self.error_type, "message": self.error_message or ""}
        return out
