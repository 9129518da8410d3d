"""The batch: async jobs submitted together. Its counts and status are derived from its jobs' statuses
when it is read, so they are right however many jobs finish at the same time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from switchyard.job_model import JobStatus


class BatchState(StrEnum):
    """Where the batch's creation stands (stored). Only a COMMITTED batch, and its jobs, exist for callers."""

    CREATING = "CREATING"  # its jobs are being written; nothing of it is visible or runs
    COMMITTED = "COMMITTED"  # one conditional write made the whole batch visible at once
    ABANDONED = "ABANDONED"  # its creator died before committing; the sweeper is deleting it


class BatchStatus(StrEnum):
    """The public aggregate status (derived, never stored)."""

    PENDING = "PENDING"  # every job still queued
    PROCESSING = "PROCESSING"  # some job queued or running, and not all of them queued
    DONE = "DONE"  # every job finished: processed, failed or canceled (a fully canceled batch is DONE)


@dataclass(frozen=True)
class JobSummary:
    job_id: str
    status: JobStatus
    inference_type: str

    def to_public(self) -> dict[str, str]:
        return {"id": self.job_id, "status": self.status.value, "inference_type": self.inference_type}


@dataclass
class Batch:
    batch_id: str
    account_id: str
    state: BatchState
    created_ms: int
    job_ids: list[str] = field(default_factory=list)  # submission order
    label: str | None = None
    expires_at: int | None = None  # epoch seconds: the table's TTL (retention.py)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Batch:
        return cls(
            batch_id=item["batch_id"],
            account_id=item["account_id"],
            state=BatchState(item["state"]),
            created_ms=int(item["created_ms"]),
            job_ids=list(item.get("job_ids") or []),
            label=item.get("label"),
            expires_at=int(item["expires_at"]) if item.get("expires_at") is not None else None,
        )

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "batch_id": self.batch_id,
            "account_id": self.account_id,
            "state": self.state.value,
            "created_ms": self.created_ms,
            "job_ids": self.job_ids,
            "total": len(self.job_ids),
        }
        if self.label is not None:
            item["label"] = self.label
        if self.expires_at is not None:
            item["expires_at"] = self.expires_at
        return item

    def public(self, jobs: list[JobSummary], *, with_jobs: bool = True) -> dict[str, Any]:
        """The public batch object, from the current statuses of its jobs (in submission order)."""
        counts = Counter(job.status for job in jobs)
        out: dict[str, Any] = {
            "id": self.batch_id,
            "object": "batch",
            "label": self.label,
            "status": aggregate_status(counts, len(jobs)).value,
            "total": len(self.job_ids),
            "queued": counts[JobStatus.QUEUED],
            "processing": counts[JobStatus.PROCESSING],
            "processed": counts[JobStatus.PROCESSED],
            "failed": counts[JobStatus.FAILED],
            "canceled": counts[JobStatus.CANCELED],
            "created": self.created_ms // 1000,
        }
        if with_jobs:
            out["jobs"] = [job.to_public() for job in jobs]
        return out


def aggregate_status(counts: Counter[JobStatus], total: int) -> BatchStatus:
    queued = counts[JobStatus.QUEUED]
    if total and queued == total:
        return BatchStatus.PENDING
    if queued or counts[JobStatus.PROCESSING]:
        return BatchStatus.PROCESSING
    return BatchStatus.DONE
