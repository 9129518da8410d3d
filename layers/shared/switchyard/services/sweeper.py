"""The sweeper (scheduled): re-queues work whose message was lost or whose runner died, frees expired
provider slots, deletes batches whose creation crashed, announces job ends not every subscriber heard,
does what workflow decisions still owe the state machine (workflow_followups.py), sends webhook
deliveries whose wait was too long for an SQS delay, records that it ran, and takes the census the
operators' gauges and alarms read (switchyard/metrics.py `record_sweep`: queue depth and age, worker
stalled, providers online, gates waiting)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from switchyard import metrics
from switchyard.adapters.runs_table import RunsTable, get_runs_table
from switchyard.caches import cached
from switchyard.clock import now_ms
from switchyard.job_model import Job, JobStatus
from switchyard.logs import job_log_context
from switchyard.services.batches import BatchesService, get_batches_service
from switchyard.services.job_lifecycle import JobLifecycle, get_job_lifecycle
from switchyard.services.jobs import (
    DISPATCHER_TICK_ID,
    SWEEPER_TICK_ID,
    JobsService,
    get_jobs_service,
    worker_stalled,
)
from switchyard.services.providers import ProvidersService, get_providers_service
from switchyard.services.rate_limits import RateLimiter, get_rate_limiter
from switchyard.services.webhook_events import WebhookEvents, get_webhook_events
from switchyard.services.workflow_followups import WorkflowFollowups, get_workflow_followups
from switchyard.settings import Settings, get_settings

logger = logging.getLogger(__name__)

LEASE_EXPIRED = "the job's runner stopped answering (lease expired mid-job)"
# Counting waiting gates scans the runs table: once every this many minutes, not on every sweep.
GATE_CENSUS_EVERY_MINUTES = 5


@dataclass
class SweepReport:
    requeued_lost: list[str] = field(default_factory=list)
    requeued_expired: list[str] = field(default_factory=list)
    failed_expired: list[str] = field(default_factory=list)
    expired_leases: int = 0
    abandoned_batches: list[str] = field(default_factory=list)
    reannounced_ends: list[str] = field(default_factory=list)
    abandoned_ends: list[str] = field(default_factory=list)
    redriven_workflow_items: list[str] = field(default_factory=list)
    webhooks_woken: int = 0


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        jobs: JobsService,
        lifecycle: JobLifecycle,
        providers: ProvidersService,
        batches: BatchesService | None = None,
        workflows: WorkflowFollowups | None = None,
        webhooks: WebhookEvents | None = None,
        runs: RunsTable | None = None,
        limiter: RateLimiter | None = None,
    ):
        self.settings = settings
        self.jobs = jobs
        self.lifecycle = lifecycle
        self.providers = providers
        self.batches = batches
        self.workflows = workflows
        self.webhooks = webhooks
        self.runs = runs
        self.limiter = limiter

    def sweep(self) -> SweepReport:
        report = SweepReport()
        now = now_ms()
        lost_after_ms = int(self.settings.lost_message_after_seconds * 1000)
        if self.batches is not None:
            report.abandoned_batches = self.batches.delete_abandoned()
        # Jobs of a batch still being created are inert: never re-queued (nor counted) before its commit.
        active = self.jobs.active()
        for job in active:
            with job_log_context(job.job_id):
                if job.status == JobStatus.QUEUED:
                    last_seen = job.seen_ms or job.queued_ms
                    if now - last_seen > lost_after_ms and self.lifecycle.requeue_lost(job) is not None:
                        report.requeued_lost.append(job.job_id)
                elif job.status == JobStatus.PROCESSING and job.lease_until_ms and job.lease_until_ms < now:
                    self._recover_expired(job, report)
        report.expired_leases = self.providers.expire_leases(now)
        if self.limiter is not None:
            report.expired_leases += self.limiter.expire_running_slots(now)
        self._announce_missed_ends(now, report)
        if self.workflows is not None:
            since = now - int(self.settings.redrive_after_seconds * 1000)
            report.redriven_workflow_items = self.workflows.redrive(since, self.settings.sweep_redrive_limit)
        if self.webhooks is not None:
            webhooks = self.webhooks.sweep()
            report.webhooks_woken = webhooks.woken
        self.jobs.record_tick(SWEEPER_TICK_ID)
        metrics.record_sweep(self._census(active, report, now))
        return report

    def _announce_missed_ends(self, now: int, report: SweepReport) -> None:
        """Ends still marked unannounced a while after they happened: announce them again (job_end.py)."""
        settings = self.settings
        since = now - int(settings.redrive_after_seconds * 1000)
        give_up_before = now - int(settings.job_end_redrive_max_age_seconds * 1000)
        for job_id in self.lifecycle.unannounced_ends(since, settings.sweep_redrive_limit):
            try:
                job = self.lifecycle.announce_again(job_id)
                if job is None:
                    continue
                report.reannounced_ends.append(job_id)
                too_old = (job.finished_ms or now) < give_up_before
                if too_old and self.lifecycle.give_up_announcing(job_id) is not None:
                    report.abandoned_ends.append(job_id)
            except Exception:  # one job must not keep the sweeper from the others
                logger.exception("could not announce the end of job %s again", job_id)

    def _census(self, active: list[Job], report: SweepReport, now: int) -> metrics.Census:
        """As the sweep found things (jobs it recovered count where they were)."""
        queued = [job for job in active if job.status == JobStatus.QUEUED]
        tick = self.jobs.last_tick_ms(DISPATCHER_TICK_ID)
        count_gates = self.runs is not None and (now // 60_000) % GATE_CENSUS_EVERY_MINUTES == 0
        return metrics.Census(
            jobs_queued=len(queued),
            jobs_running=sum(1 for job in active if job.status == JobStatus.PROCESSING),
            oldest_queued_age_seconds=(now - min(job.queued_ms for job in queued)) / 1000 if queued else 0.0,
            dispatcher_tick_age_seconds=(now - tick) / 1000 if tick is not None else None,
            worker_stalled=worker_stalled(active, tick, now, self.settings.worker_stalled_after_seconds),
            providers_online=self.providers.count_online(),
            jobs_recovered=len(report.requeued_lost)
            + len(report.requeued_expired)
            + len(report.failed_expired),
            workflow_gates_waiting=self.runs.count_waiting_gates() if count_gates and self.runs else None,
        )

    def _recover_expired(self, job: Job, report: SweepReport) -> None:
        """A run whose holder died: another attempt if it has one left, else FAILED (conditional on the
        dead run's claim, so a run reclaimed meanwhile is left alone)."""
        if job.attempt >= self.settings.job_max_attempts:
            if self.lifecycle.fail_exhausted(job, attempts=job.attempt, last_error=LEASE_EXPIRED):
                report.failed_expired.append(job.job_id)
        elif self.lifecycle.requeue_after_failure(job, LEASE_EXPIRED):
            report.requeued_expired.append(job.job_id)


@cached
def get_sweeper() -> Sweeper:
    return Sweeper(
        get_settings(),
        get_jobs_service(),
        get_job_lifecycle(),
        get_providers_service(),
        get_batches_service(),
        get_workflow_followups(),
        get_webhook_events(),
        get_runs_table(),
        get_rate_limiter(),
    )
