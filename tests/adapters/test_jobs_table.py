"""The jobs table's transitions on in-process moto: each moves a job only from the state it names, and
answers None (changing nothing) otherwise."""

from __future__ import annotations

import pytest
from switchyard.job_model import Job, JobStatus
from switchyard.job_results import JobResult

FAR_FUTURE = 4_000_000_000_000  # epoch ms, year 2096: a lease that holds


@pytest.fixture
def table(aws_stack):
    from switchyard.adapters.jobs_table import get_jobs_table

    return get_jobs_table()


def _stored(table, status: JobStatus = JobStatus.QUEUED, job_id: str = "job_1", **values) -> Job:
    job = Job(
        job_id=job_id,
        account_id="acct_1",
        status=status,
        endpoint="/v1/chat/completions",
        inference_type="LLM",
        service_type="llm",
        model="m",
        created_ms=1,
        queued_ms=1,
        body="{}",
        **values,
    )
    table.create(job)
    return job


def _claimed(table, **values) -> Job:
    _stored(table, **values)
    job = table.claim("job_1", gen=0, provider_id="box-1", lease_until_ms=FAR_FUTURE)
    assert job is not None
    return job


def test_claim_takes_a_queued_job_of_its_generation_once(table):
    _stored(table)
    claimed = table.claim("job_1", gen=0, provider_id="box-1", lease_until_ms=FAR_FUTURE)
    assert claimed.status == JobStatus.PROCESSING and claimed.attempt == 1 and claimed.claim_id
    assert (
        table.claim("job_1", gen=0, provider_id="box-2", lease_until_ms=FAR_FUTURE) is None
    )  # its lease holds
    assert [job.job_id for job in table.active_jobs("acct_1")] == ["job_1"]


def test_claim_refuses_a_message_of_an_older_generation(table):
    _stored(table, gen=2)
    assert table.claim("job_1", gen=1, provider_id="box-1", lease_until_ms=FAR_FUTURE) is None
    assert table.get("job_1").status == JobStatus.QUEUED


def test_claim_takes_over_a_run_whose_lease_ran_out(table):
    _stored(table)
    first = table.claim("job_1", gen=0, provider_id="box-1", lease_until_ms=1)
    second = table.claim("job_1", gen=0, provider_id="box-2", lease_until_ms=FAR_FUTURE)
    assert second is not None and second.claim_id != first.claim_id and second.attempt == 2


def test_finish_needs_the_claim_it_was_given(table):
    claimed = _claimed(table)
    stale = Job(**{**claimed.__dict__, "claim_id": "someone-else"})
    assert table.finish(stale, JobResult(result="{}")) is None
    done = table.finish(claimed, JobResult(result='{"ok":1}'))
    assert done.status == JobStatus.PROCESSED and done.result == '{"ok":1}' and done.lease_until_ms is None
    assert table.active_jobs("acct_1") == []  # out of the sparse index of active work
    assert table.finish(claimed, JobResult(result="{}")) is None  # a second delivery changes nothing


def test_an_ending_write_marks_the_end_unannounced_unless_told_nobody_must_hear_it(table):
    claimed = _claimed(table)
    assert table.is_unannounced(table.fail(claimed, "upstream_error", "HTTP 400"))
    assert table.unannounced_ends(FAR_FUTURE, 10) == ["job_1"]
    _stored(table, job_id="job_2")
    plain = table.claim("job_2", gen=0, provider_id="box-1", lease_until_ms=FAR_FUTURE)
    assert not table.is_unannounced(table.finish(plain, JobResult(result="{}"), outbox=False))
    assert table.unannounced_ends(FAR_FUTURE, 10) == ["job_1"]


def test_requeue_after_failure_is_a_new_generation_keeping_the_error(table):
    claimed = _claimed(table)
    requeued = table.requeue_after_failure(claimed, "HTTP 502")
    assert requeued.status == JobStatus.QUEUED and requeued.gen == 1
    assert requeued.error_message == "HTTP 502" and requeued.claim_id is None
    assert table.requeue_after_failure(claimed, "again") is None  # the claim is gone


def test_fail_exhausted_names_the_attempts_and_the_last_error(table):
    claimed = _claimed(table)
    failed = table.fail_exhausted(claimed, attempts=3, last_error="timeout")
    assert failed.status == JobStatus.FAILED and failed.error_type == "upstream_error"
    assert failed.error_message == "Max retries exhausted after 3 attempts; last error: timeout"


def test_cancel_moves_only_active_jobs(table):
    _stored(table)
    assert table.cancel("job_1").status == JobStatus.CANCELED
    assert table.cancel("job_1") is None


def test_requeue_by_caller_clears_the_last_run_and_reactivates(table):
    claimed = _claimed(table)
    assert table.requeue_by_caller("job_1", "acct_1") is None  # PROCESSING is not retryable
    table.fail(claimed, "upstream_error", "HTTP 400")
    requeued = table.requeue_by_caller("job_1", "acct_1")
    assert requeued.status == JobStatus.QUEUED and requeued.attempt == 0 and requeued.gen == 1
    assert requeued.manual_retries == 1 and requeued.error_type is None and requeued.started_ms is None
    assert [job.job_id for job in table.active_jobs("acct_1")] == ["job_1"]


def test_fail_no_provider_and_note_waiting_need_the_message_generation(table):
    _stored(table, gen=1)
    assert table.note_waiting("job_1", gen=0, reason="busy") is None
    assert table.note_waiting("job_1", gen=1, reason="busy").wait_reason == "busy"
    assert table.fail_no_provider("job_1", gen=0, model="m", waited_seconds=120) is None
    failed = table.fail_no_provider("job_1", gen=1, model="m", waited_seconds=120.7)
    assert failed.error_type == "no_provider"
    assert failed.error_message == "No online provider serving model 'm' for this user (waited 120 s)."


def test_requeue_lost_bumps_the_generation_of_a_queued_job_only(table):
    job = _stored(table)
    assert table.requeue_lost(job).gen == 1
    assert table.requeue_lost(job) is None  # the generation it saw is gone


def test_hand_over_token_only_while_the_job_is_active(table):
    _stored(table, task_token="old")
    assert table.hand_over_token("job_1", "new").task_token == "new"
    table.cancel("job_1")
    assert table.hand_over_token("job_1", "newer") is None
