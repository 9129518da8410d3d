"""inference.net's GenerationForClient: an async job as the background path shows it.

`GET /v1/generation/<id>` answers it for any async job of the caller, and the completion webhooks carry
the same object in `data`. Timestamps are ISO 8601 in UTC with milliseconds (switchyard.clock.iso_ms).
"""

from __future__ import annotations

import json
from typing import Any

from switchyard.adapters.media_store import MediaStore
from switchyard.clock import iso_ms
from switchyard.job_model import Job, JobStatus

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


def generation_for_client(
    job: Job, request: dict[str, Any], response: Any, links: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`request` is the body as the caller sent it; `response` the provider's final answer (or None);
    `links` where an answer too large to inline is (`responseUrl`, `responseBytes`)."""
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
        **(links or {}),
    }


def generation_of(
    job: Job, media: MediaStore, base_url: str | None, inline_limit_bytes: int
) -> dict[str, Any]:
    """The GenerationForClient of a stored job (a large body, or a result up to `inline_limit_bytes`, is
    read from S3). A larger text answer is not inlined: one answer (or webhook body) must stay bounded, so
    `response` is null and `responseUrl` / `responseBytes` say where it is, as `result_url` does on a job."""
    if _too_large_to_inline(job, inline_limit_bytes):
        envelope = job.envelope(base_url)  # the job's own links: result_url, result_bytes
        return generation_for_client(
            job,
            request_as_sent(job, media),
            None,
            {"responseUrl": envelope.get("result_url"), "responseBytes": envelope.get("result_bytes")},
        )
    return generation_for_client(job, request_as_sent(job, media), response_of(job, media, base_url))


def _too_large_to_inline(job: Job, inline_limit_bytes: int) -> bool:
    # An unknown size counts as too large: a read is bounded, whatever the item says.
    return (
        job.status == JobStatus.PROCESSED
        and not job.is_media
        and job.result is None
        and bool(job.result_key)
        and (job.result_bytes is None or job.result_bytes > inline_limit_bytes)
    )


def request_as_sent(job: Job, media: MediaStore) -> dict[str, Any]:
    """The request body as the caller sent it: what the provider got, plus the gateway's own fields."""
    text = job.body if job.body is not None else media.get(str(job.body_key)).content.decode()
    request: dict[str, Any] = json.loads(text)
    request.update(json.loads(job.client_fields or "{}"))
    return request


def response_of(job: Job, media: MediaStore, base_url: str | None) -> Any:
    """The provider's answer: its JSON for text and embeddings; for media, where the stored asset is
    (`url`, under the gateway that took the request) and the provider's JSON without the bytes."""
    if job.status != JobStatus.PROCESSED:
        return None
    if job.result is None and job.result_key and not job.is_media:
        job.result = media.get(job.result_key).content.decode()
    envelope = job.envelope(base_url)
    if not job.is_media:
        return envelope.get("result")
    return {
        "object": "inference.asset",
        "url": envelope.get("result_url"),
        "content_type": job.result_content_type,
        "metadata": envelope.get("result"),
        "assets": envelope.get("assets", []),  # every output of a multi-output job; `url` is the first
    }
