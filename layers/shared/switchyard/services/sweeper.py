"""The sweeper (scheduled): re-queues work whose message was lost or whose runner died, frees expired
provider slots, deletes batches whose creation crashed, and records that it ran."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from switchyard.caches import cached
from switchyard.clock import now_ms
from switchyard.job_model import Job, JobStatus
from switchyard.services.batches import BatchesService, get_batches_service
from switchyard.services.jobs import SWEEPER_TICK_ID, JobsService, get_jobs_service
from switchyard.services.providers import ProvidersService, get_providers_service
from switchyard.settings import Settings, get_settings

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    requeued_lost: list[str] = field(default_factory=list)
    requeued_expired: list[str] = field(default_factory=list)
    failed_expired: list[str] = field(default_factory=list)
    expired_leases: int = 0
    abandoned_batches: list[str] = field(default_factory=list)


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        jobs: JobsService,
        providers: ProvidersService,
        batches: BatchesService | None = None,
    ):
        self.settings = settings
        self.jobs = jobs
        self.providers = providers
        self.batches = batches

    def sweep(self) -> SweepReport:
        report = SweepReport()
        now = now_ms()
        lost_after_ms = int(self.settings.lost_message_after_seconds * 1000)
        if self.batches is not None:
            report.abandoned_batches = self.batches.delete_abandoned()
        # Jobs of a batch still being created are inert: never re-queued (nor counted) before its commit.
        for item in self.jobs.visible_items(self.jobs.table.active_jobs()):
            job = Job.from_item(item)
            if job.status == JobStatus.QUEUED:
                last_seen = int(job.extra.get("seen_ms") or job.queued_ms)
                if now - last_seen > lost_after_ms and self._requeue_lost(job, now):
                    report.requeued_lost.append(job.job_id)
            elif job.status == JobStatus.PROCESSING and job.lease_until_ms and job.lease_until_ms < now:
                self._recover_expired(job, report)
        report.expired_leases = self.providers.expire_leases(now)
        self.jobs.record_tick(SWEEPER_TICK_ID)
        return report

    def _requeue_lost(self, job: Job, now: int) -> bool:
        # A new generation: if the old message was only late, it is now stale and is dropped.
        requeued = self.jobs.table.update(
            job.job_id,
            set_values={"seen_ms": now},
            add={"gen": 1},
            condition="#status = :queued AND gen = :gen",
            condition_values={":queued": JobStatus.QUEUED.value, ":gen": job.gen},
        )
        if requeued is None:
            return False
        self.jobs.enqueue(requeued)
        return True

    def _recover_expired(self, job: Job, report: SweepReport) -> None:
        reason = "the job's runner stopped answering (lease expired mid-job)"
        condition = "claim_id = :claim AND lease_until_ms = :lease"
        values = {":claim": job.claim_id, ":lease": job.lease_until_ms}
        if job.attempt >= self.settings.job_max_attempts:
            failed = self.jobs.table.transition(
                job.job_id,
                from_statuses=(JobStatus.PROCESSING,),
                to_status=JobStatus.FAILED,
                set_values={
                    "finished_ms": now_ms(),
                    "error_type": "upstream_error",
                    "error_message": f"Max retries exhausted after {job.attempt} attempts; last error: {reason}",
                },
                remove=("lease_until_ms",),
                extra_condition=condition,
                condition_values=values,
            )
            if failed is not None:
                report.failed_expired.append(job.job_id)
                self.jobs.after_finish(failed)
            return
        requeued = self.jobs.table.transition(
            job.job_id,
            from_statuses=(JobStatus.PROCESSING,),
            to_status=JobStatus.QUEUED,
            set_values={"error_message": reason, "seen_ms": now_ms()},
            remove=("claim_id", "lease_until_ms"),
            add={"gen": 1},
            extra_condition=condition,
            condition_values=values,
        )
        if requeued is not None:
            report.requeued_expired.append(job.job_id)
            self.jobs.enqueue(requeued)


@cached
def get_sweeper() -> Sweeper:
    return Sweeper(get_settings(), get_jobs_service(), get_providers_service(), get_batches_service())
