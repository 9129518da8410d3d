"""What operators learn about jobs: metrics, and one structured log line per submission and per end.

The metrics (switchyard/metrics.py) carry only bounded dimensions (the inference type); who submitted a
job, and for which model, goes into these log lines instead, which the template's saved Logs Insights
queries rank ("top accounts by jobs", "by failures"). Each line is logged under the job's id as its
correlation id, like every other line of the job's life.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from switchyard import metrics
from switchyard.job_model import Job, JobStatus
from switchyard.logs import job_log_context

logger = logging.getLogger(__name__)


def jobs_submitted(jobs: Sequence[Job]) -> None:
    """Jobs stored and queued (one, or a batch's)."""
    for job in jobs:
        with job_log_context(job.job_id):
            logger.info(
                "job submitted",
                extra={
                    "account_id": job.account_id,
                    "inference_type": job.inference_type,
                    "model": job.model,
                    "batch_id": job.batch_id,
                    "workflow_run_id": job.workflow_run_id,
                    "request_id": job.request_id,
                },
            )
    metrics.record_jobs_submitted(job.inference_type for job in jobs)


def job_ended(job: Job) -> None:
    """The job-end hook's subscriber (wired in switchyard/wiring.py)."""
    duration_ms = job.finished_ms - job.created_ms if job.finished_ms else None
    with job_log_context(job.job_id):
        logger.info(
            "job ended",
            extra={
                "account_id": job.account_id,
                "status": job.status.value,
                "failed": int(job.status == JobStatus.FAILED),
                "inference_type": job.inference_type,
                "model": job.model,
                "attempts": job.attempt,
                "provider_id": job.provider_id,
                "error_type": job.error_type,
                "duration_ms": duration_ms,
                "batch_id": job.batch_id,
                "workflow_run_id": job.workflow_run_id,
            },
        )
    metrics.record_job_ended(job.status.value, job.inference_type, duration_ms)
