"""Per-account rate limits and quotas, shared by every Lambda instance through one DynamoDB item each
(adapters/limits_table.py).

What is limited, and what may overshoot (the invariants):
- Requests per minute: every inference call (sync, streaming or async), batch submission, workflow run
  start and job retry counts once, in fixed one-minute windows (UTC minutes). A request is admitted by one
  conditional UpdateItem that counts it only if the count is below the window's limit, so no window ever
  admits more than its limit, however many instances run. As with any fixed window, a client can get
  2 x limit through in the two seconds around a minute boundary; nothing else overshoots.
- Jobs in flight (queued or running): an async submission reserves its jobs (a batch, all of them) in the
  same UpdateItem, only if they fit under the limit; a job ending releases its place (job-end hook). A
  reserved place a request did not use (a replayed Idempotency-Key, a refused batch) is released at once.
  Workflow steps' jobs count without being checked (their run was admitted), so steps can push an account
  over its limit; its own submissions then wait. The count can only drift upward (a process that died
  between ending a job and releasing its place: the job-end hook is at-most-once), which would refuse
  jobs the account is owed: so before refusing, the count is checked against the jobs table and corrected.
  That correction can count a job created in the last moment of the index's lag as absent, letting the
  account overshoot by that many (in practice one or two jobs, once); it never undercounts otherwise.
- The warm path pays exactly one DynamoDB call per limited request (the admission); the first request of
  a minute pays two more (one instance starts the new window; the others see it started).

Over a limit: 429 `rate_limit_exceeded` with Retry-After. Every answer to a limited request carries
OpenAI's x-ratelimit-limit-requests / -remaining-requests / -reset-requests headers.

The dispatcher's share: with `account_max_running_jobs` set, an account runs at most that many jobs at
once (leases on the same item, freed when the job's run ends or swept when they expire), so it cannot hold
every dispatcher while other accounts' jobs wait.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from switchyard.adapters.jobs_table import get_jobs_table
from switchyard.adapters.limits_table import Counters, Done, LimitsTable, get_limits_table
from switchyard.caches import cached
from switchyard.errors import RateLimited
from switchyard.job_model import Job
from switchyard.settings import Settings, get_settings

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# No end time to announce for jobs in flight: the time a short job takes.
JOBS_RETRY_AFTER_SECONDS = 5
_MAX_TRIES = 6


def duration(seconds: float) -> str:
    """OpenAI's format for x-ratelimit-reset-*: 59s, 1m30s, 250ms."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


@dataclass(frozen=True)
class Allowance:
    """An admitted request: where the account's requests-per-minute stand after it."""

    limit: int
    remaining: int
    reset_seconds: float
    jobs_reserved: int = 0

    def headers(self) -> dict[str, str]:
        """OpenAI's rate-limit headers (the SDKs and routers read them)."""
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(max(0, self.remaining)),
            "x-ratelimit-reset-requests": duration(self.reset_seconds),
        }


class RateLimiter:
    def __init__(
        self,
        settings: Settings,
        table: LimitsTable,
        count_active_jobs: Callable[[str], int],
        clock: Callable[[], float] = time.time,
    ):
        self._settings = settings
        self._table = table
        self._count_active_jobs = count_active_jobs
        self._clock = clock
        # What each account's jobs limit was last seen to be (the admission's condition names it).
        self._jobs_limits: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- admission
    def admit(self, account_id: str, jobs: int = 0) -> Allowance:
        """Count one request (reserving `jobs` jobs in flight) or raise RateLimited."""
        now = self._clock()
        window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        with self._lock:
            believed = self._jobs_limits.get(account_id, self._settings.account_max_active_jobs)
        corrected = False
        for _ in range(_MAX_TRIES):
            result = self._table.admit(account_id, window=window, jobs=jobs, jobs_limit=believed)
            seen = result.counters
            if seen.jobs_limit is not None:
                with self._lock:
                    self._jobs_limits[account_id] = seen.jobs_limit
            if isinstance(result, Done):
                return self._allowance(seen, window, now, jobs)
            if seen.window_start is not None and seen.window_start > window:
                window = seen.window_start  # another instance's clock is ahead: its window is the current one
                continue
            if seen.window_start != window or seen.rpm_limit is None or seen.jobs_limit is None:
                self._table.start_window(
                    account_id,
                    window=window,
                    default_rpm=self._settings.account_requests_per_minute,
                    default_jobs=self._settings.account_max_active_jobs,
                    seen=seen.window_start if seen.window_start != window else None,
                )
                continue
            if seen.request_count >= seen.rpm_limit:
                reset = window + WINDOW_SECONDS - now
                raise RateLimited(
                    f"Rate limit reached for requests: {seen.rpm_limit} per minute for this account. "
                    f"Try again in {math.ceil(reset)} s.",
                    retry_after=reset,
                    limit_headers=Allowance(seen.rpm_limit, 0, reset).headers(),
                )
            if seen.jobs_limit != believed:
                believed = seen.jobs_limit
                continue
            if not corrected and self._correct_jobs_in_flight(account_id, seen.jobs_in_flight):
                corrected = True
                continue
            raise RateLimited(
                f"Too many jobs in flight: {seen.jobs_in_flight} of this account's limit of "
                f"{seen.jobs_limit} are queued or running, and this request adds {jobs}. "
                "Retry when some have finished.",
                retry_after=JOBS_RETRY_AFTER_SECONDS,
                limit_headers=self._allowance(seen, window, now, 0).headers(),
            )
        raise RateLimited(
            "The rate limiter is contended; retry shortly.",
            retry_after=1,
            limit_headers=Allowance(
                self._settings.account_requests_per_minute, 0, window + WINDOW_SECONDS - now
            ).headers(),
        )

    def _allowance(self, seen: Counters, window: int, now: float, jobs: int) -> Allowance:
        limit = seen.rpm_limit or self._settings.account_requests_per_minute
        return Allowance(limit, limit - seen.request_count, window + WINDOW_SECONDS - now, jobs)

    def _correct_jobs_in_flight(self, account_id: str, counted: int) -> bool:
        """The count, corrected to the jobs table's if it drifted high; True if that made room."""
        actual = self._count_active_jobs(account_id)
        if actual >= counted:
            return False
        logger.warning(
            "jobs in flight of %s drifted: counted %d, the jobs table has %d", account_id, counted, actual
        )
        return self._table.correct_jobs_in_flight(account_id, counted=counted, actual=actual)

    # -- jobs in flight
    def release(self, account_id: str, jobs: int) -> None:
        """Give back places that were reserved and not used, or whose jobs ended."""
        if jobs > 0:
            self._table.release_jobs(account_id, jobs)

    def count_unchecked(self, account_id: str, jobs: int = 1) -> None:
        self._table.add_jobs(account_id, jobs)

    def job_ended(self, job: Job) -> None:
        """The job-end hook's subscriber: an ended job leaves the account's jobs in flight."""
        self.release(job.account_id, 1)

    # -- an operator's limits
    def set_limits(
        self, account_id: str, *, requests_per_minute: int | None, max_active_jobs: int | None
    ) -> dict[str, Any]:
        counters = self._table.set_limits(account_id, rpm=requests_per_minute, max_jobs=max_active_jobs)
        return self.describe(account_id, counters)

    def limits(self, account_id: str) -> dict[str, Any]:
        return self.describe(account_id, self._table.get(account_id))

    def describe(self, account_id: str, counters: Counters) -> dict[str, Any]:
        return {
            "account_id": account_id,
            "requests_per_minute": counters.rpm_override or self._settings.account_requests_per_minute,
            "max_active_jobs": counters.jobs_override or self._settings.account_max_active_jobs,
            "overridden": {
                "requests_per_minute": counters.rpm_override is not None,
                "max_active_jobs": counters.jobs_override is not None,
            },
            "jobs_in_flight": counters.jobs_in_flight,
        }

    # -- the dispatcher's share
    def take_running_slot(self, account_id: str, lease_key: str, until_ms: int) -> bool:
        share = self._settings.account_max_running_jobs
        return share <= 0 or self._table.take_running_slot(account_id, lease_key, until_ms, share)

    def release_running_slot(self, account_id: str, lease_key: str) -> None:
        if self._settings.account_max_running_jobs > 0:
            self._table.release_running_slot(account_id, lease_key)

    def expire_running_slots(self, now_ms: int) -> int:
        return self._table.expire_running_slots(now_ms) if self._settings.account_max_running_jobs > 0 else 0


@cached
def get_rate_limiter() -> RateLimiter:
    return RateLimiter(get_settings(), get_limits_table(), get_jobs_table().count_active)


def release_ended_job(job: Job) -> None:
    get_rate_limiter().job_ended(job)
