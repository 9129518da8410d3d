"""The dispatcher: take a provider slot, claim the job, push it, store the outcome, free the slot.

Every step is a conditional write, so a message delivered twice, a message from an older generation of
the job, or a job canceled meanwhile all end harmlessly: the transition it attempts (jobs_table.py)
finds the job in another state and answers None, and the dispatcher reports the message stale or
canceled and stops. A job never runs twice at once: the claim only succeeds for a QUEUED job of the
message's generation, or for a PROCESSING job whose lease ran out; and only the holder of the claim
may finish, fail or re-queue the run it claimed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from switchyard import metrics, tracing
from switchyard.adapters import upstream
from switchyard.adapters.jobs_queue import JobMessage
from switchyard.adapters.jobs_table import new_claim_id
from switchyard.adapters.media_store import MediaStore
from switchyard.caches import cached
from switchyard.catalog import ServiceType
from switchyard.clock import now_ms
from switchyard.errors import UpstreamError
from switchyard.job_model import Job
from switchyard.job_results import result_of
from switchyard.provider_model import Provider
from switchyard.services.job_lifecycle import JobLifecycle, get_job_lifecycle
from switchyard.services.providers import ProvidersService, get_providers_service
from switchyard.services.rate_limits import RateLimiter, get_rate_limiter
from switchyard.settings import Settings, get_settings

logger = logging.getLogger(__name__)

RESULT_NOT_STORED = "result_not_stored"
# A provider call given less than this (after the store reserve) is not started: the record waits.
MIN_CALL_SECONDS = 1.0
TimeLeft = Callable[[], float]


@dataclass(frozen=True)
class Outcome:
    """What happened to one message (for logs, metrics and tests)."""

    action: str  # processed | failed | not_stored | retrying | waiting | no_provider | stale | canceled
    job_id: str
    detail: str = ""


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        lifecycle: JobLifecycle,
        media: MediaStore,
        providers: ProvidersService,
        limiter: RateLimiter,
    ):
        self.settings = settings
        self.lifecycle = lifecycle
        self.media = media
        self.providers = providers
        self.limiter = limiter

    def handle(self, message: JobMessage, time_left: TimeLeft | None = None) -> Outcome:
        """Handle one message. `time_left` gives the seconds left to the invocation (the Lambda context's
        remaining time): a provider call is cut short to leave the store reserve, and never outlives the
        invocation, whose timeout the claim's lease outlives (the template derives both)."""
        try:
            service_type = ServiceType(message.service_type)
        except ValueError:
            return self._unrunnable(message, f"Unknown service type '{message.service_type}'.")
        candidates = self.providers.candidates(message.account_id, message.model, service_type)
        if not candidates:
            return self._no_provider(message)
        if self._call_seconds(time_left) < self._shortest_call:
            return self._wait(message, "the dispatcher's invocation had too little time left to run it")
        lease_until = now_ms() + int(self.settings.job_lease_seconds * 1000)
        # One lease per delivery, so a duplicate delivery can never free the slot of the run in progress.
        lease_key = f"{message.job_id}.{new_claim_id()}"
        # The account's share of the dispatchers first (rate_limits.py): one account's long jobs must not
        # hold every dispatcher while other accounts' jobs wait.
        if not self.limiter.take_running_slot(message.account_id, lease_key, lease_until):
            return self._wait(message, "the account is running as many jobs as it may at once")
        provider = self._take_slot(candidates, lease_key, lease_until)
        if provider is None:
            self.limiter.release_running_slot(message.account_id, lease_key)
            return self._wait(message, "every provider slot is busy")
        try:
            job = self.lifecycle.claim(message, provider_id=provider.provider_id, lease_until_ms=lease_until)
            if job is None:
                return Outcome("stale", message.job_id, "already claimed, finished or superseded")
            if job.attempt > self.settings.job_max_attempts:
                # Reclaimed after its last allowed attempt was lost (the runner died): this claim never runs.
                last_error = job.error_message or "the job was lost while running"
                return self._ended(
                    job,
                    self.lifecycle.fail_exhausted(job, attempts=job.attempt - 1, last_error=last_error),
                    "failed",
                )
            return self._run(job, provider, time_left)
        finally:
            self.providers.release_slot(provider.account_id, provider.provider_id, lease_key)
            self.limiter.release_running_slot(message.account_id, lease_key)

    # -- steps
    def _take_slot(self, candidates: list[Provider], lease_key: str, lease_until: int) -> Provider | None:
        for provider in random.sample(candidates, len(candidates)):
            if self.providers.acquire_slot(provider, lease_key, lease_until):
                return provider
        return None

    @property
    def _shortest_call(self) -> float:
        return min(self.settings.job_upstream_timeout_seconds, MIN_CALL_SECONDS)

    def _call_seconds(self, time_left: TimeLeft | None) -> float:
        """How long the provider call may take: the configured deadline, cut to what the invocation has
        left after the store reserve."""
        seconds = self.settings.job_upstream_timeout_seconds
        if time_left is not None:
            seconds = min(seconds, time_left() - self.settings.job_store_reserve_seconds)
        return seconds

    def _run(self, job: Job, provider: Provider, time_left: TimeLeft | None = None) -> Outcome:
        body = job.body if job.body is not None else self.media.get(job.body_key or "").content.decode()
        client = upstream.get_client(
            self.settings.job_upstream_timeout_seconds, self.settings.upstream_connect_timeout_seconds
        )
        url = provider.endpoint_url + job.endpoint
        headers = upstream.provider_request_headers(provider.secret, "application/json", job.job_id)
        # The provider knows the job by this UUID (its logs, its answer's x-request-id): say which is which.
        logger.info(
            "job %s attempt %d to provider %s as request %s",
            job.job_id,
            job.attempt,
            provider.provider_id,
            headers["x-request-id"],
        )
        if job.attempt == 1:  # a retry's wait includes its backoff: not the queue's latency
            metrics.record_dispatch_latency(now_ms() - job.queued_ms)
        deadline = max(self._shortest_call, self._call_seconds(time_left))
        try:
            with (
                metrics.provider_call(metrics.CallPath.ASYNC) as measured,
                tracing.provider_subsegment(url) as traced,
            ):
                answer = upstream.post(
                    client,
                    url,
                    body.encode(),
                    headers,
                    timeout=deadline,
                    deadline_seconds=deadline,
                    max_bytes=self.settings.provider_response_max_bytes,
                )
                measured.answered(answer.status_code)
                traced.answered(answer.status_code)
        except (upstream.AnswerTooLarge, upstream.CallLooped) as error:
            # The same request would get the same answer: fail now rather than spend the other attempts.
            return self._ended(job, self.lifecycle.fail(job, "upstream_error", error.message), "failed")
        except UpstreamError as error:
            return self._provider_failed(job, error.message)
        if answer.status_code >= 400:
            # The provider understood and refused the request: retrying the same body will not help.
            detail = answer.content[:500].decode(errors="replace")
            message = f"Provider error HTTP {answer.status_code}: {detail}"
            return self._ended(job, self.lifecycle.fail(job, "upstream_error", message), "failed")
        return self._store_result(job, answer)

    def _store_result(self, job: Job, answer: upstream.UpstreamResponse) -> Outcome:
        """Store the answer and finish the job. The provider has done its work: a result that cannot be
        stored fails the job, naming why, rather than leaving it for the sweeper to run again."""
        try:
            stored = result_of(
                job,
                answer.content,
                answer.headers.get("content-type", "application/octet-stream"),
                item_limit_bytes=self.settings.job_item_limit_bytes,
            )
            for blob in stored.blobs:
                self.media.put(blob.key, blob.content, blob.content_type)
            ended = self.lifecycle.finish(job, stored)
        except Exception as exc:  # any failure to store is this job's end, not a re-run
            logger.exception("the result of job %s could not be stored", job.job_id)
            message = (
                f"The provider answered, but its result could not be stored ({type(exc).__name__}: {exc})."
            )
            return self._ended(job, self.lifecycle.fail(job, RESULT_NOT_STORED, message), "not_stored")
        return self._ended(job, ended, "processed")

    def _provider_failed(self, job: Job, reason: str) -> Outcome:
        if job.attempt < self.settings.job_max_attempts:
            delay = min(
                self.settings.retry_backoff_base_seconds**job.attempt, self.settings.max_requeue_delay_seconds
            )
            if self.lifecycle.requeue_after_failure(job, reason, delay) is None:
                return Outcome("canceled", job.job_id, "changed while running")
            return Outcome(
                "retrying", job.job_id, f"attempt {job.attempt} failed: {reason}; retry in {delay}s"
            )
        ended = self.lifecycle.fail_exhausted(job, attempts=job.attempt, last_error=reason)
        return self._ended(job, ended, "failed")

    @staticmethod
    def _ended(job: Job, ended: Job | None, action: str) -> Outcome:
        if ended is None:
            # Canceled (or reclaimed after our lease ran out) while the provider worked: its answer is dropped.
            return Outcome("canceled", job.job_id, "the answer arrived after a cancel and was dropped")
        return Outcome(action, job.job_id, ended.error_message or "")

    def _no_provider(self, message: JobMessage) -> Outcome:
        waited = time.time() - message.queued_ms / 1000
        if waited < self.settings.no_provider_grace_seconds:
            return self._wait(message, "no provider online")
        if self.lifecycle.fail_no_provider(message, waited) is None:
            return Outcome("stale", message.job_id)
        return Outcome("no_provider", message.job_id)

    def _wait(self, message: JobMessage, reason: str) -> Outcome:
        """Leave the job QUEUED and look again later; note that the dispatcher saw it.

        The longer a job has waited, the longer the pause before the next look (up to the cap), so a deep
        backlog does not turn into a storm of re-checks.
        """
        waited = max(0.0, time.time() - message.queued_ms / 1000)
        delay_seconds = min(
            int(max(self.settings.capacity_wait_seconds, waited / 4)), self.settings.max_requeue_delay_seconds
        )
        if not self.lifecycle.note_waiting(message, reason, delay_seconds):
            return Outcome("stale", message.job_id)
        return Outcome("waiting", message.job_id, reason)

    def _unrunnable(self, message: JobMessage, reason: str) -> Outcome:
        self.lifecycle.fail_unrunnable(message.job_id, "invalid_request", reason)
        return Outcome("failed", message.job_id, reason)


@cached
def get_dispatcher() -> Dispatcher:
    settings = get_settings()
    return Dispatcher(
        settings,
        get_job_lifecycle(),
        MediaStore(settings.media_bucket),
        get_providers_service(),
        get_rate_limiter(),
    )
