"""inference.net's GenerationForClient: an async job as the background path shows it.

`GET /v1/generation/<id>` answers it for any async job of the caller, and the completion webhooks carry
the same object in `data`. Timestamps are ISO 8601 in UTC with milliseconds.
"""

from __future__ import annotations

from typing import Any

from switchyard.job_model import Job, JobStatus
from switchyard.webhook_model import iso_ms

STATES = {
    JobStatus.QUEUED: "Queued",
    JobStatus.PROCESSING: "InProgress",
    JobStatus.PROCESSED: "Success",
    JobStatus.FAILED: "Failed",
    JobStatus.CANCELED: "Canceled",
}


def state_message(job: Job) -> str | None:
    if job.status == JobStatus.FAILED:
        return job.error_message or job.error_type or "The generation failed."
    if job.status == JobStatus.CANCELED:
        return job.error_message or "The generation was canceled."
    return None


def generation_for_client(job: Job, request: dict[str, Any], response: Any) -> dict[str, Any]:
    """`request` is the body as the caller sent it; `response` the provider's final answer (or None)."""
    return {
        "id": job.job_id,
        "state": STATES[job.status],
        "stateMessage": state_message(job),
        "request": request,
        "response": response if job.status == JobStatus.PROCESSED else None,
        "model": job.model,
        "createdAt": iso_ms(job.created_ms),
        "dispatchedAt": iso_ms(job.started_ms),
        "finishedAt": iso_ms(job.finished_ms),
    }
