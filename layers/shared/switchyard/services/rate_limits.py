"""Per-account rate limits and quotas, shared by every Lambda instance through one DynamoDB item each
(adapters/limits_table.py).

What is limited, and what may overshoot (the invariants):
- Requests per minute: every inference call (sync, streaming or async), batch submission, workflow run
  start and job retry counts once, in fixed one-minute windows (UTC minutes). Each instance (a Lambda
  container, the local stack's process) takes a block of an account's requests of the current minute from
  DynamoDB in one `ADD` (a lease) and admits from it in memory until it runs low; the counter only grows,
  so the block is a range of request numbers and the part of it above the limit is refused. No window
  ever admits more than its limit, however many instances run. As with any fixed window, a client can get
  2 x limit through in the two seconds around a minute boundary; nothing else overshoots.
- The price of leasing is the other way: requests an instance leased and has not used are not available
  to the others, so an account near its limit may be refused a little early, by at most the requests
  other instances hold. A lease is at most 1/20 of what was left of the window when it was taken (and
  at most 50; one request while the instance does not know the account's limit yet), so near the limit
  blocks shrink to one request and stranded requests with them. An
  instance refused for the window remembers it (for up to 10 s, within the window): a client that keeps
  calling over its limit costs no DynamoDB call, and a limit an operator raises is in force in every
  instance within 10 s.
- Jobs in flight (queued or running): an async submission reserves its jobs (a batch, all of them) in a
  conditional write, only if they fit under the limit; a job ending releases its place (job-end hook). A
  reserved place a request did not use (a replayed Idempotency-Key, a refused batch) is released at once.
  Workflow steps' jobs count without being checked (their run was admitted), so steps can push an account
  over its limit; its own submissions then wait. The count can only drift upward (a process that died
  between ending a job and releasing its place: the job-end hook is at-most-once), which would refuse
  jobs the account is owed: so before refusing, the count is checked against the jobs table and corrected.
  That correction can count a job created in the last moment of the index's lag as absent, letting the
  account overshoot by that many (in practice one or two jobs, once); it never undercounts otherwise.
- DynamoDB calls: a request admitted from a lease makes none; one that needs a lease or reserves jobs
  makes one (both in the same UpdateItem when it needs both); a lease half used is renewed by one
  background call while the rest of it is admitted, and an account in use in a minute's last
  10 s gets the next minute's lease the same way (if it then goes quiet, those places go unused), so under
  steady traffic no request waits for DynamoDB. Only refusals may make more (giving back a reservation a
  refused request made).

Over a limit: 429 `rate_limit_exceeded` with Retry-After. Every answer to a limited request carries
OpenAI's x-ratelimit-limit-requests / -remaining-requests / -reset-requests headers; "remaining" is what
the account had left when this instance last counted, minus what it has admitted since (other
instances' requests since then are not in it).

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
from switchyard.adapters.limits_table import (
    Counters,
    Done,
    JobsReservation,
    LimitsTable,
    get_limits_table,
    window_attribute,
)
from switchyard.caches import cached
from switchyard.errors import RateLimited
from switchyard.job_model import Job
from switchyard.settings import Settings, get_settings
from switchyard.ttl_cache import refuse_io_if_cached_only

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# No end time to announce for jobs in flight: the time a short job takes.
JOBS_RETRY_AFTER_SECONDS = 5
# A lease: this share of what the window had left when the instance last counted, at most MAX_LEASE.
LEASE_FRACTION = 20
MAX_LEASE = 50
# In its minute's last this many seconds, an account's lease in use leases the next minute in the background.
PRELEASE_SECONDS = 10.0
# A background lease call waits this long: it is set off by a request's admission, and started at once it
# shared the CPU (boto3's signing and parsing hold the GIL) with that very request's start. Measured on
# the streaming benchmark, every stream whose start overlapped a lease call was among the slowest (first
# token 12-54 ms against a median of 9 on a slow machine): one per minute, much of the first-token p99.
# Renewing at half a lease (below) leaves that wait room: 25 requests in 20 ms is 1,250 per second.
LEASE_CALL_DELAY_SECONDS = 0.02
# How long an instance believes an account is over its limit without asking again (within the window).
REFUSED_FOR_SECONDS = 10.0
_MAX_TRIES = 4
_MAX_ACCOUNTS = 10_000  # accounts an instance keeps a lease for


def _window_of(now: float) -> int:
    return int(now // WINDOW_SECONDS) * WINDOW_SECONDS


def _start_thread(action: Callable[[], None]) -> None:
    """Run a lease call on a thread of its own, LEASE_CALL_DELAY_SECONDS from now."""
    timer = threading.Timer(LEASE_CALL_DELAY_SECONDS, action)
    timer.name, timer.daemon = "rate-limit-lease", True
    timer.start()


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
    window: int = 0  # the window it was admitted in (epoch second its minute began)

    def headers(self) -> dict[str, str]:
        """OpenAI's rate-limit headers (the SDKs and routers read them)."""
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(max(0, self.remaining)),
            "x-ratelimit-reset-requests": duration(self.reset_seconds),
        }


@dataclass
class _Lease:
    """This instance's share of one account's window."""

    window: int
    limit: int
    left: int = 0  # leased and not yet admitted
    counted: int = 0  # the window's count (every instance's) when this instance last counted
    size: int = 1  # the last lease's size
    refused_until: float = 0.0  # over the limit (this instance's belief) until then
    renewing: bool = False
    preleasing: bool = False  # the next minute's lease is being (or was) taken
    stale: tuple[str, ...] = ()  # attributes of past windows the item holds, dropped by the next count

    def remaining(self) -> int:
        return self.limit - self.counted + self.left


class RateLimiter:
    def __init__(
        self,
        settings: Settings,
        table: LimitsTable,
        count_active_jobs: Callable[[str], int],
        clock: Callable[[], float] = time.time,
        renew_in_background: Callable[[Callable[[], None]], None] | None = None,
    ):
        self._settings = settings
        self._table = table
        self._count_active_jobs = count_active_jobs
        self._clock = clock
        self._renew_in_background = renew_in_background or _start_thread
        self._leases: dict[str, _Lease] = {}
        # Leases of the next minute, taken in the last seconds of this one for accounts in use, so that a
        # minute's first request does not wait for its lease.
        self._next_leases: dict[str, _Lease] = {}
        # What each account's jobs override was last seen to be (the reservation's condition names it).
        self._jobs_overrides: dict[str, int | None] = {}
        # What each account's limit was last seen to be, for a window's first lease.
        self._rpm_limits: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- admission
    def admit(self, account_id: str, jobs: int = 0) -> Allowance:
        """Count one request (reserving `jobs` jobs in flight) or raise RateLimited.

        Inside `ttl_cache.cached_only()` (the stream front's event loop) a request that would have to call
        DynamoDB raises WouldLoad before anything is counted."""
        now = self._clock()
        window = _window_of(now)
        if not jobs:
            admitted = self._admit_from_lease(account_id, window, now)
            if admitted is not None:
                return admitted
        refuse_io_if_cached_only()
        return self._admit_counting(account_id, jobs, window, now)

    def give_back(self, account_id: str, allowance: Allowance) -> None:
        """A request admitted and then not served (the stream front retries it on a worker thread): its
        place returns to this instance's lease if the window is still the same."""
        self._return_place(account_id, allowance.window)

    def _admit_from_lease(self, account_id: str, window: int, now: float) -> Allowance | None:
        """Admit from this instance's lease (no I/O); None when it has nothing left."""
        with self._lock:
            lease = self._lease(account_id, window)
            if lease.refused_until > now:
                raise self._over_requests(lease.limit, window, now)
            if lease.left <= 0:
                return None
            lease.left -= 1
            allowance = self._allowance(lease, window, now)
            renew = self._should_renew(lease)
            if renew:
                lease.renewing = True
            prelease = not lease.preleasing and now >= window + WINDOW_SECONDS - PRELEASE_SECONDS
            if prelease:
                lease.preleasing = True
        if renew:
            self._renew_in_background(lambda: self._renew(account_id, window))
        if prelease:
            self._renew_in_background(lambda: self._prelease(account_id, window + WINDOW_SECONDS))
        return allowance

    def _admit_counting(self, account_id: str, jobs: int, window: int, now: float) -> Allowance:
        """One UpdateItem: a lease when this instance has none left, the jobs' reservation when there are."""
        corrected = False
        for _ in range(_MAX_TRIES):
            with self._lock:
                lease = self._lease(account_id, window)
                from_lease = lease.left > 0  # a submission's request can come from the lease: jobs only
                if from_lease:
                    lease.left -= 1
                size = 0 if from_lease else self._lease_size(account_id, lease)
                drop = lease.stale
                override = self._jobs_overrides.get(account_id)
            reservation = None
            if jobs:
                jobs_limit = self._settings.account_max_active_jobs if override is None else override
                reservation = JobsReservation(jobs, override, jobs_limit - jobs)
            try:
                result = self._table.count(
                    account_id, window=window, requests=size, drop=drop, reservation=reservation
                )
            except Exception:
                if from_lease:
                    self._return_place(account_id, window)
                raise
            seen = result.counters
            self._remember(account_id, seen)
            if isinstance(result, Done):
                with self._lock:
                    lease = self._record(self._lease(account_id, window), seen, size, now)
                    admitted = from_lease or lease.left > 0
                    if not from_lease and admitted:
                        lease.left -= 1
                    allowance = self._allowance(lease, window, now, jobs)
                if admitted:
                    return allowance
                if jobs:  # reserved with a count that found the window spent
                    self.release(account_id, jobs)
                raise self._over_requests(lease.limit, window, now)
            # Only a reservation is conditional: its jobs did not fit (nothing was written).
            if from_lease:
                self._return_place(account_id, window)
            if seen.jobs_override != override:
                continue  # an operator changed the account's jobs limit: the room was computed from another
            if not corrected and self._correct_jobs_in_flight(account_id, seen.jobs_in_flight):
                corrected = True
                continue
            jobs_limit = self._settings.account_max_active_jobs if override is None else override
            with self._lock:
                headers = self._allowance(self._lease(account_id, window), window, now).headers()
            raise RateLimited(
                f"Too many jobs in flight: {seen.jobs_in_flight} of this account's limit of "
                f"{jobs_limit} are queued or running, and this request adds {jobs}. "
                "Retry when some have finished.",
                retry_after=JOBS_RETRY_AFTER_SECONDS,
                limit_headers=headers,
            )
        raise RateLimited(
            "The rate limiter is contended; retry shortly.",
            retry_after=1,
            limit_headers=Allowance(
                self._settings.account_requests_per_minute, 0, window + WINDOW_SECONDS - now
            ).headers(),
        )

    def _renew(self, account_id: str, window: int) -> None:
        """Lease more of `window` ahead of need (a background thread)."""
        try:
            if _window_of(self._clock()) != window:
                return  # the window ended meanwhile: the next request leases the new one
            with self._lock:
                lease = self._lease(account_id, window)
                size, drop = self._lease_size(account_id, lease), lease.stale
            result = self._table.count(account_id, window=window, requests=size, drop=drop)
            self._remember(account_id, result.counters)
            with self._lock:
                self._record(self._lease(account_id, window), result.counters, size, self._clock())
        except Exception:
            logger.exception("could not renew the rate-limit lease of %s", account_id)
        finally:
            with self._lock:
                self._lease(account_id, window).renewing = False

    def _prelease(self, account_id: str, window: int) -> None:
        """Lease the coming minute `window` ahead of its first request (a background thread)."""
        try:
            with self._lock:
                lease = _Lease(
                    window, self._rpm_limits.get(account_id, self._settings.account_requests_per_minute)
                )
                size = self._lease_size(account_id, lease)
            result = self._table.count(account_id, window=window, requests=size)
            self._remember(account_id, result.counters)
            with self._lock:
                current = self._leases.get(account_id)
                if current is None or current.window < window:  # not begun yet: it takes this one over
                    self._next_leases[account_id] = self._record(lease, result.counters, size, self._clock())
                    if len(self._next_leases) > _MAX_ACCOUNTS:
                        self._next_leases.clear()
        except Exception:
            logger.exception("could not lease the next minute of %s", account_id)

    # -- the lease's bookkeeping (all under self._lock)
    def _lease(self, account_id: str, window: int) -> _Lease:
        lease = self._leases.get(account_id)
        if lease is not None and lease.window > window:
            # A request that read the clock just before the minute ended, finishing after the next began:
            # it counts in its own window without disturbing the new lease.
            return _Lease(window, lease.limit)
        if lease is None or lease.window < window:
            limit = self._rpm_limits.get(account_id, self._settings.account_requests_per_minute)
            stale: tuple[str, ...] = ()
            if lease is not None:
                past = (lease.window - WINDOW_SECONDS, lease.window)
                stale = (*lease.stale, *(window_attribute(w) for w in past if w < window - WINDOW_SECONDS))
            if len(self._leases) >= _MAX_ACCOUNTS:
                self._leases.clear()  # bounded memory: forgotten leases only cost their unused places
            ahead = self._next_leases.pop(account_id, None)
            if ahead is not None and ahead.window == window:
                ahead.stale = tuple(dict.fromkeys((*ahead.stale, *stale)))
                lease = self._leases[account_id] = ahead
            else:
                lease = self._leases[account_id] = _Lease(window, limit, stale=stale)
        return lease

    def _record(self, lease: _Lease, seen: Counters, size: int, now: float) -> _Lease:
        """What a count said: the window's total, the limit, and which of the `size` places it handed out
        fall under the limit (the counter only grows: they are the numbers total - size + 1 .. total)."""
        window = lease.window
        limit = seen.rpm_override or self._settings.account_requests_per_minute
        total = seen.requests_in(window)
        lease.limit = limit
        lease.counted = max(lease.counted, total)
        lease.stale = tuple(seen.stale_attributes(window))
        if size:
            lease.size = size
            lease.left += max(0, min(total, limit) - (total - size))
            if lease.left <= 0:
                lease.refused_until = min(window + WINDOW_SECONDS, now + REFUSED_FOR_SECONDS)
        return lease

    def _lease_size(self, account_id: str, lease: _Lease) -> int:
        if account_id not in self._rpm_limits:
            return 1  # the account's limit is not known yet: the first count learns it
        return max(1, min(MAX_LEASE, (lease.limit - lease.counted) // LEASE_FRACTION))

    def _should_renew(self, lease: _Lease) -> bool:
        """Renew ahead when a lease worth it (4 or more) is down to its last half."""
        return lease.size >= 4 and not lease.renewing and lease.left <= lease.size // 2

    def _return_place(self, account_id: str, window: int) -> None:
        with self._lock:
            lease = self._leases.get(account_id)
            if lease is not None and lease.window == window:
                lease.left += 1

    def _remember(self, account_id: str, seen: Counters) -> None:
        with self._lock:
            self._jobs_overrides[account_id] = seen.jobs_override
            self._rpm_limits[account_id] = seen.rpm_override or self._settings.account_requests_per_minute
            if len(self._rpm_limits) > _MAX_ACCOUNTS:
                self._rpm_limits.clear()
                self._jobs_overrides.clear()

    def _allowance(self, lease: _Lease, window: int, now: float, jobs: int = 0) -> Allowance:
        return Allowance(lease.limit, lease.remaining(), window + WINDOW_SECONDS - now, jobs, window)

    def _over_requests(self, limit: int, window: int, now: float) -> RateLimited:
        reset = window + WINDOW_SECONDS - now
        return RateLimited(
            f"Rate limit reached for requests: {limit} per minute for this account. "
            f"Try again in {math.ceil(reset)} s.",
            retry_after=reset,
            limit_headers=Allowance(limit, 0, reset).headers(),
        )

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
            # handed out to the instances that count them, not all of them admitted yet
            "requests_this_minute": counters.requests_in(_window_of(self._clock())),
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
