"""Every change of a job's state after it was written, with what must follow it.

The conditions live in the jobs table adapter (one named transition per change, None when someone else
moved the job first); this module adds the two follow-ups no caller may forget: a job put back in the
queue gets a message that wakes the dispatcher, and a job that ended is announced on the job-end hook,
by the one writer whose ending write succeeded (and again by the sweeper, if not every subscriber heard:
`announce_again`). The dispatcher, the sweeper, the jobs, batches and workflow services all change jobs
through here.
"""

from __future__ import annotations

import logging

from switchyard.adapters.jobs_queue import JobMessage, JobsQueue
from switchyard.adapters.jobs_table import JobsTable, get_jobs_table
from switchyard.caches import cached
from switchyard.job_end import JobEndHook
from switchyard.job_model import FINISHED, Job
from switchyard.job_results import JobResult
from switchyard.logs import job_log_context
from switchyard.settings import get_settings
from switchyard.wiring import get_job_end_hook

logger = logging.getLogger(__name__)


class JobLifecycle:
    def __init__(self, table: JobsTable, queue: JobsQueue, job_end: JobEndHook):
        self.table = table
        self.queue = queue
        self.job_end = job_end

    # -- waking the dispatcher
    def enqueue(self, job: Job, delay_seconds: int = 0) -> None:
        """Wake the dispatcher. A lost message is not lost work: the sweeper re-sends it."""
        try:
            self.queue.send(JobMessage.for_job(job), delay_seconds)
        except Exception:  # the job is stored; the sweeper will re-queue it
            with job_log_context(job.job_id):
                logger.exception(
                    "could not send job %s to the queue; the sweeper will re-send it", job.job_id
                )

    def enqueue_many(self, jobs: list[Job]) -> None:
        try:
            refused = self.queue.send_many([JobMessage.for_job(job) for job in jobs])
        except Exception:  # the jobs are stored; the sweeper re-sends them
            logger.exception("could not queue %d jobs; the sweeper will re-send them", len(jobs))
            return
        if refused:
            logger.warning("SQS refused %d job messages; the sweeper will re-send them", len(refused))

    # -- running
    def claim(self, message: JobMessage, *, provider_id: str, lease_until_ms: int) -> Job | None:
        return self.table.claim(
            message.job_id, gen=message.gen, provider_id=provider_id, lease_until_ms=lease_until_ms
        )

    def note_waiting(self, message: JobMessage, reason: str, delay_seconds: int) -> bool:
        """The job stays QUEUED and its message comes back after the delay; False if it moved on."""
        if self.table.note_waiting(message.job_id, gen=message.gen, reason=reason) is None:
            return False
        self.queue.send(message, delay_seconds)  # a failure fails the record: SQS redelivers it
        return True

    # -- back to the queue
    def requeue_after_failure(self, job: Job, reason: str, delay_seconds: int = 0) -> Job | None:
        requeued = self.table.requeue_after_failure(job, reason)
        if requeued is not None:
            self.enqueue(requeued, delay_seconds)
        return requeued

    def requeue_lost(self, job: Job) -> Job | None:
        requeued = self.table.requeue_lost(job)
        if requeued is not None:
            self.enqueue(requeued)
        return requeued

    def requeue_by_caller(self, job_id: str, account_id: str) -> Job | None:
        requeued = self.table.requeue_by_caller(job_id, account_id)
        if requeued is not None:
            self.enqueue(requeued)
        return requeued

    # -- ends (each announced once, by the writer that ended the job)
    # The run's claimed `job` says whether its end must wait in the outbox (job_end.py): a plain job's
    # does not, and costs neither the mark nor the write that takes it off.
    def finish(self, job: Job, result: JobResult) -> Job | None:
        return self._ended(self.table.finish(job, result, outbox=self.job_end.must_be_heard(job)))

    def fail(self, job: Job, error_type: str, message: str) -> Job | None:
        return self._ended(self.table.fail(job, error_type, message, outbox=self.job_end.must_be_heard(job)))

    def fail_exhausted(self, job: Job, *, attempts: int, last_error: str) -> Job | None:
        return self._ended(
            self.table.fail_exhausted(
                job, attempts=attempts, last_error=last_error, outbox=self.job_end.must_be_heard(job)
            )
        )

    def fail_no_provider(self, message: JobMessage, waited_seconds: float) -> Job | None:
        return self._ended(
            self.table.fail_no_provider(
                message.job_id, gen=message.gen, model=message.model, waited_seconds=waited_seconds
            )
        )

    def fail_unrunnable(self, job_id: str, error_type: str, message: str) -> Job | None:
        return self._ended(self.table.fail_unrunnable(job_id, error_type, message))

    def cancel(self, job_id: str) -> Job | None:
        """QUEUED or PROCESSING -> CANCELED; None if the job had already finished."""
        return self._ended(self.table.cancel(job_id))

    # -- workflow steps
    def hand_over_token(self, job_id: str, token: str) -> Job | None:
        return self.table.hand_over_token(job_id, token)

    # -- announcing ends (at least once: switchyard/job_end.py)
    def unannounced_ends(self, before_ms: int, limit: int) -> list[str]:
        return self.table.unannounced_ends(before_ms, limit)

    def announce_again(self, job_id: str) -> Job | None:
        """Announce an end not every subscriber has heard; the job when it was announced again (whether
        or not everyone heard this time), None when there was nothing left to announce."""
        job = self.table.get(job_id)
        if job is None or job.status not in FINISHED or not self.table.is_unannounced(job):
            return None
        self._announce(job, again=True)
        return job

    def give_up_announcing(self, job_id: str) -> Job | None:
        job = self.table.get(job_id)
        if job is None or not self.table.is_unannounced(job):
            return None
        logger.error(
            "gave up announcing the end of job %s (%s, finished %s): a job-end subscriber kept failing",
            job.job_id,
            job.status,
            job.finished_ms,
        )
        self.table.mark_announced(job)
        return job

    def _ended(self, job: Job | None) -> Job | None:
        if job is not None:
            self._announce(job)
        return job

    def _announce(self, job: Job, *, again: bool = False) -> None:
        with job_log_context(job.job_id):  # what subscribers log belongs to the job's life
            if not self.job_end.announce(job, again=again):
                return  # the mark stays: the sweeper announces it again
            if not self.table.is_unannounced(job):
                return  # an end nobody had to hear was never marked
            try:
                self.table.mark_announced(job)
            except Exception:  # the job has ended; a mark left behind only means one more announcement
                logger.exception(
                    "could not mark the end of job %s announced; it will be announced again", job.job_id
                )


@cached
def get_job_lifecycle() -> JobLifecycle:
    return JobLifecycle(get_jobs_table(), JobsQueue(get_settings().jobs_queue_url), get_job_end_hook())
