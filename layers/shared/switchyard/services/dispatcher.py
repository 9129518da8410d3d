"""The dispatcher: take a provider slot, claim the job, push it, store the outcome, free the slot.

Every step is a conditional write, so a message delivered twice, a message from an older generation of
the job, or a job canceled meanwhile all end harmlessly. A job never runs twice at once: the claim only
succeeds for a QUEUED job of the message's generation, or for a PROCESSING job whose lease ran out.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

from switchyard.adapters import upstream
from switchyard.adapters.jobs_queue import JobMessage
from switchyard.caches import cached
from switchyard.catalog import ServiceType
from switchyard.clock import now_ms
from switchyard.errors import UpstreamError
from switchyard.job_model import Job, JobStatus
from switchyard.job_results import result_of
from switchyard.services.jobs import JobsService, get_jobs_service, new_claim_id
from switchyard.services.providers import Provider, ProvidersService, get_providers_service
from switchyard.settings import Settings, get_settings

logger = logging.getLogger(__name__)

LEASE_MARGIN_MS = 30_000


@dataclass(frozen=True)
class Outcome:
    """What happened to one message (for logs, metrics and tests)."""

    action: str  # processed | failed | retrying | waiting | no_provider | stale | canceled
    job_id: str
    detail: str = ""


class Dispatcher:
    def __init__(self, settings: Settings, jobs: JobsService, providers: ProvidersService):
        self.settings = settings
        self.jobs = jobs
        self.providers = providers

    def handle(self, message: JobMessage) -> Outcome:
        try:
            service_type = ServiceType(message.service_type)
        except ValueError:
            return self._fail(message, "invalid_request", f"Unknown service type '{message.service_type}'.")
        candidates = self.providers.candidates(message.account_id, message.model, service_type)
        if not candidates:
            return self._no_provider(message)
        lease_until = now_ms() + int(self.settings.job_upstream_timeout_seconds * 1000) + LEASE_MARGIN_MS
        # One lease per delivery, so a duplicate delivery can never free the slot of the run in progress.
        lease_key = f"{message.job_id}.{new_claim_id()}"
        provider = self._take_slot(candidates, lease_key, lease_until)
        if provider is None:
            return self._wait(message, "every provider slot is busy")
        try:
            job = self._claim(message, provider, lease_until)
            if job is None:
                return Outcome("stale", message.job_id, "already claimed, finished or superseded")
            if job.attempt > self.settings.job_max_attempts:
                return self._finish(
                    job,
                    JobStatus.FAILED,
                    error=(
                        "upstream_error",
                        f"Max retries exhausted after {job.attempt - 1} attempts; "
                        f"last error: {job.error_message or 'the job was lost while running'}",
                    ),
                )
            return self._run(job, provider)
        finally:
            self.providers.release_slot(provider.account_id, provider.provider_id, lease_key)

    # -- steps
    def _take_slot(self, candidates: list[Provider], lease_key: str, lease_until: int) -> Provider | None:
        for provider in random.sample(candidates, len(candidates)):
            if self.providers.acquire_slot(provider, lease_key, lease_until):
                return provider
        return None

    def _claim(self, message: JobMessage, provider: Provider, lease_until: int) -> Job | None:
        now = now_ms()
        return self.jobs.table.transition(
            message.job_id,
            from_statuses=(JobStatus.QUEUED, JobStatus.PROCESSING),
            to_status=JobStatus.PROCESSING,
            set_values={
                "claim_id": new_claim_id(),
                "provider_id": provider.provider_id,
                "lease_until_ms": lease_until,
                "started_ms": now,
                "seen_ms": now,
            },
            add={"attempt": 1},
            # QUEUED of this generation, or PROCESSING whose holder died (its lease ran out).
            extra_condition="gen = :gen AND (#status = :queued OR lease_until_ms < :now)",
            condition_values={":gen": message.gen, ":queued": JobStatus.QUEUED.value, ":now": now},
        )

    def _run(self, job: Job, provider: Provider) -> Outcome:
        body = job.body if job.body is not None else self.jobs.media.get(job.body_key).content.decode()
        client = upstream.get_client(
            self.settings.job_upstream_timeout_seconds, self.settings.upstream_connect_timeout_seconds
        )
        try:
            answer = upstream.post(
                client,
                provider.endpoint_url + job.endpoint,
                body.encode(),
                upstream.provider_request_headers(provider.secret, "application/json", job.job_id),
                timeout=self.settings.job_upstream_timeout_seconds,
            )
        except UpstreamError as error:
            return self._provider_failed(job, error.message)
        if answer.status_code >= 400:
            # The provider understood and refused the request: retrying the same body will not help.
            detail = answer.content[:500].decode(errors="replace")
            return self._finish(
                job,
                JobStatus.FAILED,
                error=("upstream_error", f"Provider error HTTP {answer.status_code}: {detail}"),
            )
        return self._store_result(job, answer)

    def _store_result(self, job: Job, answer: upstream.UpstreamResponse) -> Outcome:
        stored = result_of(
            job,
            answer.content,
            answer.headers.get("content-type", "application/octet-stream"),
            self.settings.inline_result_limit_bytes,
        )
        if stored.blob is not None and stored.result_key is not None:
            self.jobs.media.put(stored.result_key, stored.blob, stored.result_content_type or "")
        values = {
            name: value
            for name, value in (
                ("result", stored.result),
                ("result_key", stored.result_key),
                ("result_content_type", stored.result_content_type),
            )
            if value is not None
        }
        return self._finish(job, JobStatus.PROCESSED, values=values)

    def _provider_failed(self, job: Job, reason: str) -> Outcome:
        if job.attempt < self.settings.job_max_attempts:
            delay = min(
                self.settings.retry_backoff_base_seconds**job.attempt, self.settings.max_requeue_delay_seconds
            )
            requeued = self.jobs.table.transition(
                job.job_id,
                from_statuses=(JobStatus.PROCESSING,),
                to_status=JobStatus.QUEUED,
                set_values={"error_message": reason, "seen_ms": now_ms()},
                remove=("claim_id", "lease_until_ms"),
                add={"gen": 1},
                extra_condition="claim_id = :claim",
                condition_values={":claim": job.claim_id},
            )
            if requeued is None:
                return Outcome("canceled", job.job_id, "changed while running")
            self.jobs.enqueue(requeued, delay)
            return Outcome(
                "retrying", job.job_id, f"attempt {job.attempt} failed: {reason}; retry in {delay}s"
            )
        return self._finish(
            job,
            JobStatus.FAILED,
            error=(
                "upstream_error",
                f"Max retries exhausted after {job.attempt} attempts; last error: {reason}",
            ),
        )

    def _finish(
        self, job: Job, status: JobStatus, *, values: dict | None = None, error: tuple[str, str] | None = None
    ) -> Outcome:
        set_values = {"finished_ms": now_ms(), **(values or {})}
        remove: tuple[str, ...] = ("lease_until_ms",)
        if error:
            set_values.update(error_type=error[0], error_message=error[1])
        else:
            remove += ("error_type", "error_message")
        finished = self.jobs.table.transition(
            job.job_id,
            from_statuses=(JobStatus.PROCESSING,),
            to_status=status,
            set_values=set_values,
            remove=remove,
            extra_condition="claim_id = :claim",
            condition_values={":claim": job.claim_id},
        )
        if finished is None:
            # Canceled (or reclaimed after our lease ran out) while the provider worked: its answer is dropped.
            return Outcome("canceled", job.job_id, "the answer arrived after a cancel and was dropped")
        self.jobs.after_finish(finished)
        return Outcome(
            "processed" if status == JobStatus.PROCESSED else "failed", job.job_id, (error or ("", ""))[1]
        )

    def _no_provider(self, message: JobMessage) -> Outcome:
        waited = time.time() - message.queued_ms / 1000
        if waited < self.settings.no_provider_grace_seconds:
            return self._wait(message, "no provider online")
        failed = self.jobs.table.transition(
            message.job_id,
            from_statuses=(JobStatus.QUEUED,),
            to_status=JobStatus.FAILED,
            set_values={
                "finished_ms": now_ms(),
                "error_type": "no_provider",
                "error_message": f"No online provider serving model '{message.model}' for this user "
                f"(waited {int(waited)} s).",
            },
            extra_condition="gen = :gen",
            condition_values={":gen": message.gen},
        )
        if failed is None:
            return Outcome("stale", message.job_id)
        self.jobs.after_finish(failed)
        return Outcome("no_provider", message.job_id)

    def _wait(self, message: JobMessage, reason: str) -> Outcome:
        """Leave the job QUEUED and look again later; note that the dispatcher saw it.

        The longer a job has waited, the longer the pause before the next look (up to the cap), so a deep
        backlog does not turn into a storm of re-checks.
        """
        waited = max(0.0, time.time() - message.queued_ms / 1000)
        delay_seconds = int(max(self.settings.capacity_wait_seconds, waited / 4))
        seen = self.jobs.table.update(
            message.job_id,
            set_values={"seen_ms": now_ms(), "wait_reason": reason},
            condition="#status = :queued AND gen = :gen",
            condition_values={":queued": JobStatus.QUEUED.value, ":gen": message.gen},
        )
        if seen is None:
            return Outcome("stale", message.job_id)
        self.jobs.queue.send(message, min(delay_seconds, self.settings.max_requeue_delay_seconds))
        return Outcome("waiting", message.job_id, reason)

    def _fail(self, message: JobMessage, error_type: str, reason: str) -> Outcome:
        failed = self.jobs.table.transition(
            message.job_id,
            from_statuses=(JobStatus.QUEUED,),
            to_status=JobStatus.FAILED,
            set_values={"finished_ms": now_ms(), "error_type": error_type, "error_message": reason},
        )
        if failed is not None:
            self.jobs.after_finish(failed)
        return Outcome("failed", message.job_id, reason)


@cached
def get_dispatcher() -> Dispatcher:
    return Dispatcher(get_settings(), get_jobs_service(), get_providers_service())
