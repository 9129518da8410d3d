"""The rate limiter's cost and exactness on moto: an instance leases blocks of an account's minute in one
unconditional ADD and admits from them in memory (services/rate_limits.py). What must hold:
- no request makes more than one DynamoDB call, a minute's first included, and a warm one makes none;
- several instances (each its own lease) never admit more than the limit between them, and admit exactly
  the limit when every one keeps asking;
- a caller over its limit costs no call while refused; an operator's raised limit is in force within 10 s;
- an async submission's lease and its jobs' reservation are one call.
"""

from __future__ import annotations

import threading
import time

import pytest
from switchyard.errors import RateLimited


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table_calls(monkeypatch):
    """Every DynamoDB UpdateItem/GetItem from now on, by the thread that made it."""
    import botocore.client

    calls: list[tuple[int, str]] = []
    real = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        calls.append((threading.get_ident(), operation))
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls


def new_limiter(clock=None, renew=None, count_active=None):
    from switchyard.adapters.jobs_table import get_jobs_table
    from switchyard.adapters.limits_table import LimitsTable
    from switchyard.services.rate_limits import RateLimiter
    from switchyard.settings import get_settings

    settings = get_settings()
    table = LimitsTable(settings.limits_table)  # each instance its own client: nothing shared but the table
    kwargs = {"clock": clock} if clock is not None else {}
    count_active = count_active or get_jobs_table().count_active
    return RateLimiter(settings, table, count_active, renew_in_background=renew, **kwargs)


def set_limits(account_id, rpm=None, jobs=None):
    from switchyard.services.rate_limits import get_rate_limiter

    get_rate_limiter().set_limits(account_id, requests_per_minute=rpm, max_active_jobs=jobs)


def stored_item(aws_stack, account_id):
    import boto3

    table = boto3.resource("dynamodb").Table(aws_stack.environment["LIMITS_TABLE"])
    return table.get_item(Key={"account_id": account_id}, ConsistentRead=True)["Item"]


MINUTE = 1_800_000_000  # an epoch second that starts a UTC minute


def test_a_warm_account_makes_no_call_and_none_makes_more_than_one(aws_stack, caller, table_calls):
    set_limits(caller.account_id, rpm=100_000)
    renewals: list[threading.Thread] = []

    def renew(action):
        thread = threading.Thread(target=action)
        renewals.append(thread)
        thread.start()
        thread.join()  # deterministic: the renewal lands before the next request

    clock = Clock(MINUTE + 1)
    limiter = new_limiter(clock, renew)
    del table_calls[:]
    me = threading.get_ident()
    per_request = []
    for _ in range(300):
        before = len([c for c in table_calls if c[0] == me])
        limiter.admit(caller.account_id)
        per_request.append(len([c for c in table_calls if c[0] == me]) - before)
    assert max(per_request) == 1
    # The first request learns the account's limit (a lease of one), the second leases a block; every
    # later lease is renewed ahead, off the requests' path.
    assert per_request[:2] == [1, 1]
    assert sum(per_request) == 2
    # 300 requests, leases of at most 50: eight calls in all, not 300.
    assert len(table_calls) == 2 + len(renewals) <= 8


def test_a_minutes_first_request_and_an_async_submission_are_one_call_each(aws_stack, caller, table_calls):
    clock = Clock(MINUTE + 30)
    limiter = new_limiter(clock)
    limiter.admit(caller.account_id)
    assert len(table_calls) == 1
    for minute in (1, 2, 3):
        clock.now = MINUTE + 60 * minute + 1
        before = len(table_calls)
        allowance = limiter.admit(caller.account_id)
        assert len(table_calls) - before == 1
        assert allowance.limit == 600 and allowance.remaining == 599
    # Only this minute's counter and the previous one stay on the item.
    counters = sorted(
        name for name in stored_item(aws_stack, caller.account_id) if name.startswith("requests_")
    )
    assert counters == [f"requests_{MINUTE + 120}", f"requests_{MINUTE + 180}"]
    # A submission at a new minute: its lease and its job's reservation in the same UpdateItem.
    clock.now = MINUTE + 241
    before = len(table_calls)
    assert limiter.admit(caller.account_id, jobs=1).jobs_reserved == 1
    assert len(table_calls) - before == 1
    assert stored_item(aws_stack, caller.account_id)["jobs_in_flight"] == 1


def test_instances_never_admit_more_than_the_limit_between_them(aws_stack, caller):
    set_limits(caller.account_id, rpm=400)
    clock = Clock(MINUTE + 5)
    limiters = [new_limiter(clock) for _ in range(3)]
    admitted = []
    lock = threading.Lock()

    def client(limiter):
        while True:
            try:
                limiter.admit(caller.account_id)
            except RateLimited:
                return
            with lock:
                admitted.append(1)

    threads = [threading.Thread(target=client, args=(limiters[i % 3],)) for i in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Every instance kept asking until it was refused: the whole limit was used, and not one more.
    assert len(admitted) == 400
    assert stored_item(aws_stack, caller.account_id)[f"requests_{MINUTE}"] >= 400


def test_a_refused_caller_costs_no_call_and_a_raised_limit_counts_within_10_s(aws_stack, caller, table_calls):
    set_limits(caller.account_id, rpm=3)
    clock = Clock(MINUTE + 1)
    limiter = new_limiter(clock)
    for _ in range(3):
        limiter.admit(caller.account_id)
    with pytest.raises(RateLimited) as refused:
        limiter.admit(caller.account_id)
    assert refused.value.retry_after == pytest.approx(59)
    before = len(table_calls)
    for _ in range(50):
        with pytest.raises(RateLimited):
            limiter.admit(caller.account_id)
    assert len(table_calls) == before  # 50 refusals, no DynamoDB call
    # An operator raises the limit: this instance asks again once its 10 s of belief are over.
    set_limits(caller.account_id, rpm=10)
    clock.now += 10.5
    assert limiter.admit(caller.account_id).limit == 10


def test_a_submission_that_does_not_fit_writes_nothing_and_uses_no_request(aws_stack, caller):
    set_limits(caller.account_id, jobs=2)
    clock = Clock(MINUTE + 1)
    limiter = new_limiter(clock, count_active=lambda account_id: 2)  # the jobs table agrees: no drift
    limiter.admit(caller.account_id, jobs=2)
    with pytest.raises(RateLimited, match="Too many jobs in flight: 2"):
        limiter.admit(caller.account_id, jobs=1)
    assert stored_item(aws_stack, caller.account_id)["jobs_in_flight"] == 2
    # The refused request was not counted: with the next one, 2 of the 600 are admitted, not 3.
    assert limiter.admit(caller.account_id).remaining == 600 - 2


def test_an_account_in_use_at_a_minutes_end_has_the_next_minute_leased_before_it_begins(
    aws_stack, caller, table_calls
):
    def renew(action):
        thread = threading.Thread(target=action)
        thread.start()
        thread.join()

    clock = Clock(MINUTE + 30)
    limiter = new_limiter(clock, renew)
    for _ in range(2):  # the limit learnt, a block leased
        limiter.admit(caller.account_id)
    clock.now = MINUTE + 55  # the minute's last 10 s: the next one is leased in the background
    limiter.admit(caller.account_id)
    clock.now = MINUTE + 60.5
    me = threading.get_ident()
    before = len([c for c in table_calls if c[0] == me])
    allowance = limiter.admit(caller.account_id)
    assert len([c for c in table_calls if c[0] == me]) == before  # the new minute's first request: no call
    assert allowance.window == MINUTE + 60
    assert stored_item(aws_stack, caller.account_id)[f"requests_{MINUTE + 60}"] == 30


def test_a_background_lease_call_waits_for_the_request_that_set_it_off_to_get_going():
    # The request that set a lease call off is on its way to its first byte: the call waits rather than
    # share the CPU with it, on a thread of its own.
    from switchyard.services.rate_limits import LEASE_CALL_DELAY_SECONDS, _start_thread

    ran: list[tuple[float, str]] = []
    done = threading.Event()
    started = time.perf_counter()

    def action():
        ran.append((time.perf_counter() - started, threading.current_thread().name))
        done.set()

    _start_thread(action)
    assert not ran  # not on the caller's thread
    assert done.wait(5)
    ((after, thread_name),) = ran
    assert after >= LEASE_CALL_DELAY_SECONDS and thread_name == "rate-limit-lease"
