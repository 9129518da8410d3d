"""The job-end hook, the lifecycle that announces on it, and the workflow step's subscriber."""

from __future__ import annotations

import logging

import pytest
from switchyard.job_end import JobEndHook
from switchyard.job_model import Job, JobStatus
from switchyard.job_results import JobResult
from switchyard.services.job_lifecycle import JobLifecycle
from switchyard.services.step_tokens import answer_step_token
from switchyard.workflows.task_errors import JOB_CANCELED, JOB_FAILED


def _job(status: JobStatus = JobStatus.PROCESSED, **values) -> Job:
    return Job(
        job_id="job_1",
        account_id="acct_1",
        status=status,
        endpoint="/v1/chat/completions",
        inference_type="LLM",
        service_type="llm",
        model="m",
        created_ms=1,
        queued_ms=1,
        **values,
    )


# -- the hook


def test_given_subscribers_when_a_job_ends_then_each_hears_it_in_subscription_order():
    heard = []
    hook = JobEndHook()
    hook.subscribe("first", lambda job: heard.append(("first", job.job_id)))
    hook.subscribe("second", lambda job: heard.append(("second", job.job_id)))
    hook.announce(_job())
    assert heard == [("first", "job_1"), ("second", "job_1")]
    assert hook.subscribers == ("first", "second")


def test_given_a_failing_subscriber_then_it_is_logged_and_the_next_still_hears(caplog):
    heard = []
    hook = JobEndHook()
    hook.subscribe("broken", lambda job: 1 / 0)
    hook.subscribe("webhooks", heard.append)
    with caplog.at_level(logging.ERROR, logger="switchyard.job_end"):
        hook.announce(_job())  # does not raise
    assert [job.job_id for job in heard] == ["job_1"]
    assert "'broken' failed for job job_1" in caplog.text


def test_given_a_name_already_subscribed_then_subscribing_again_is_refused():
    hook = JobEndHook()
    hook.subscribe("metrics", lambda job: None)
    with pytest.raises(ValueError, match="metrics"):
        hook.subscribe("metrics", lambda job: None)


def test_given_a_subscriber_that_hears_some_ends_then_only_those_reach_it_and_need_the_outbox():
    heard = []
    hook = JobEndHook()
    hook.subscribe("metrics", heard.append, once=True)  # at most once: never needs the outbox
    hook.subscribe("webhooks", heard.append, hears=lambda job: job.webhook_id is not None)
    plain, with_webhook = _job(), _job(webhook_id="wh_1")
    assert (hook.must_be_heard(plain), hook.must_be_heard(with_webhook)) == (False, True)
    assert hook.announce(plain) and hook.announce(with_webhook)
    assert heard == [plain, with_webhook, with_webhook]


def test_given_an_at_least_once_subscriber_of_every_end_then_every_end_needs_the_outbox():
    hook = JobEndHook()
    hook.subscribe("audit", lambda job: None)
    assert hook.must_be_heard(_job())


def test_the_process_wiring_keeps_only_step_and_webhook_jobs_ends_in_the_outbox():
    from switchyard.wiring import get_job_end_hook

    hook = get_job_end_hook()
    assert not hook.must_be_heard(_job())
    assert hook.must_be_heard(_job(task_token="tok"))
    assert hook.must_be_heard(_job(webhook_id="wh_1"))
    assert hook.must_be_heard(_job(batch_id="batch_1", batch_webhook_id="wh_2"))


def test_the_process_wiring_subscribes_telemetry_step_token_jobs_in_flight_then_webhooks():
    from switchyard.wiring import get_job_end_hook

    assert get_job_end_hook().subscribers == (
        "job telemetry",
        "workflow step token",
        "jobs in flight",
        "webhooks",
    )


# -- the lifecycle: who announces, who re-queues


class _Table:
    """Answers each transition with what `answers` holds for it (None: someone else moved the job)."""

    def __init__(self, **answers):
        self.answers = answers
        self.calls = []

        self.outbox = []  # what each ending write was told (mark the end or not)

    def __getattr__(self, name):
        def transition(*args, **kwargs):
            self.calls.append(name)
            if "outbox" in kwargs:
                self.outbox.append(kwargs["outbox"])
            if name == "is_unannounced":
                return "unannounced" in args[0].extra
            return self.answers.get(name)

        return transition


class _Queue:
    def __init__(self, fail: bool = False):
        self.sent = []
        self.fail = fail

    def send(self, message, delay_seconds=0):
        if self.fail:
            raise RuntimeError("SQS is down")
        self.sent.append((message.job_id, message.gen, delay_seconds))


def _lifecycle(table, queue=None):
    heard = []
    hook = JobEndHook()
    hook.subscribe("test", heard.append)
    return JobLifecycle(table, queue or _Queue(), hook), heard


def test_given_the_ending_write_succeeds_then_the_end_is_announced_once():
    ended = _job(JobStatus.PROCESSED)
    lifecycle, heard = _lifecycle(_Table(finish=ended))
    assert lifecycle.finish(_job(JobStatus.PROCESSING), JobResult(result="{}")) is ended
    assert heard == [ended]


def test_given_an_end_nobody_had_to_hear_then_its_writer_does_not_mark_it_nor_take_a_mark_off():
    table = _Table(finish=_job(JobStatus.PROCESSED))  # as stored: no unannounced mark
    hook = JobEndHook()
    hook.subscribe("webhooks", lambda job: None, hears=lambda job: job.webhook_id is not None)
    lifecycle = JobLifecycle(table, _Queue(), hook)
    lifecycle.finish(_job(JobStatus.PROCESSING), JobResult(result="{}"))
    assert table.calls == ["finish", "is_unannounced"]
    assert table.outbox == [False]


@pytest.mark.parametrize(
    "call",
    [
        lambda lc: lc.finish(_job(JobStatus.PROCESSING), JobResult(result="{}")),
        lambda lc: lc.fail(_job(JobStatus.PROCESSING), "upstream_error", "HTTP 400"),
        lambda lc: lc.fail_exhausted(_job(JobStatus.PROCESSING), attempts=3, last_error="timeout"),
        lambda lc: lc.fail_unrunnable("job_1", "invalid_request", "unknown service type"),
        lambda lc: lc.cancel("job_1"),
    ],
)
def test_given_someone_else_moved_the_job_first_then_nothing_is_announced(call):
    lifecycle, heard = _lifecycle(_Table())
    assert call(lifecycle) is None
    assert heard == []


def test_given_a_requeue_then_the_new_generation_is_sent_with_its_delay_and_nothing_is_announced():
    requeued = _job(JobStatus.QUEUED, gen=2)
    queue = _Queue()
    lifecycle, heard = _lifecycle(_Table(requeue_after_failure=requeued), queue)
    assert lifecycle.requeue_after_failure(_job(JobStatus.PROCESSING), "HTTP 502", 4) is requeued
    assert queue.sent == [("job_1", 2, 4)]
    assert heard == []


def test_given_a_requeue_that_lost_the_race_then_no_message_is_sent():
    queue = _Queue()
    lifecycle, _ = _lifecycle(_Table(), queue)
    assert lifecycle.requeue_lost(_job(JobStatus.QUEUED)) is None
    assert queue.sent == []


def test_given_sqs_refuses_a_requeue_message_then_the_job_stays_requeued_for_the_sweeper():
    requeued = _job(JobStatus.QUEUED, gen=2)
    lifecycle, _ = _lifecycle(_Table(requeue_by_caller=requeued), _Queue(fail=True))
    assert lifecycle.requeue_by_caller("job_1", "acct_1") is requeued  # does not raise


# -- the workflow step's subscriber


class _Sfn:
    def __init__(self, fail: bool = False):
        self.answers = []
        self.fail_calls = fail

    def succeed(self, token, output):
        if self.fail_calls:
            raise RuntimeError("throttled")
        self.answers.append(("succeed", token, output["status"]))

    def fail(self, token, error, cause=""):
        self.answers.append(("fail", token, error))


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (JobStatus.PROCESSED, ("succeed", "tok", "PROCESSED")),
        (JobStatus.FAILED, ("fail", "tok", JOB_FAILED)),
        (JobStatus.CANCELED, ("fail", "tok", JOB_CANCELED)),
    ],
)
def test_given_a_step_job_ends_then_its_task_token_is_answered_with_its_outcome(status, answer):
    sfn = _Sfn()
    answer_step_token(_job(status, task_token="tok"), sfn=sfn)
    assert sfn.answers == [answer]


def test_given_a_job_that_is_no_step_then_no_token_is_answered():
    sfn = _Sfn()
    answer_step_token(_job(JobStatus.PROCESSED), sfn=sfn)
    assert sfn.answers == []


def test_given_a_handed_over_token_then_that_token_is_answered():
    sfn = _Sfn()
    answer_step_token(_job(JobStatus.PROCESSED, task_token="old"), "new", sfn)
    assert sfn.answers == [("succeed", "new", "PROCESSED")]


def test_given_step_functions_fails_then_the_subscriber_raises_so_the_end_is_announced_again():
    with pytest.raises(RuntimeError, match="throttled"):
        answer_step_token(_job(JobStatus.PROCESSED, task_token="tok"), sfn=_Sfn(fail=True))


# -- at least once


def test_given_every_subscriber_hears_then_announce_says_so_and_one_failure_says_not():
    hook = JobEndHook()
    hook.subscribe("fine", lambda job: None)
    assert hook.announce(_job()) is True
    hook.subscribe("broken", lambda job: 1 / 0)
    assert hook.announce(_job()) is False


def test_given_every_subscriber_heard_then_the_end_is_marked_announced_else_it_stays_for_the_sweeper():
    ended = _job(JobStatus.PROCESSED, extra={"unannounced": "end#1"})  # as its ending write marked it
    table = _Table(finish=ended, mark_announced=True)
    lifecycle, _ = _lifecycle(table)
    lifecycle.finish(_job(JobStatus.PROCESSING), JobResult(result="{}"))
    assert table.calls == ["finish", "is_unannounced", "mark_announced"]
    assert table.outbox == [True]  # the test subscriber hears every end

    table = _Table(finish=ended)
    hook = JobEndHook()
    hook.subscribe("broken", lambda job: 1 / 0)
    JobLifecycle(table, _Queue(), hook).finish(_job(JobStatus.PROCESSING), JobResult(result="{}"))
    assert table.calls == ["finish"]


def test_given_marking_the_end_fails_then_the_ending_call_still_returns_the_ended_job():
    ended = _job(JobStatus.PROCESSED, extra={"unannounced": "end#1"})

    class _Refusing(_Table):
        def mark_announced(self, job):
            raise RuntimeError("DynamoDB is throttling")

    lifecycle, heard = _lifecycle(_Refusing(finish=ended))
    assert lifecycle.finish(_job(JobStatus.PROCESSING), JobResult(result="{}")) is ended
    assert heard == [ended]


def test_given_an_at_most_once_subscriber_then_it_hears_the_first_announcement_only_and_never_holds_the_mark():
    heard = []
    hook = JobEndHook()
    hook.subscribe("telemetry", lambda job: heard.append("telemetry"), once=True)
    hook.subscribe("webhooks", lambda job: heard.append("webhooks"))
    assert hook.announce(_job()) is True
    assert hook.announce(_job(), again=True) is True  # the sweeper's: no second count
    assert heard == ["telemetry", "webhooks", "webhooks"]

    failing = JobEndHook()
    failing.subscribe("telemetry", lambda job: 1 / 0, once=True)
    assert failing.announce(_job()) is True  # a lost metric does not make the end owed again


def test_given_the_wired_hook_then_only_the_counters_are_at_most_once():
    # The telemetry and the jobs-in-flight release count an end: a re-announcement must not count it again
    # (a release lost with a crash is a drift the rate limiter corrects from the jobs table).
    from switchyard.wiring import get_job_end_hook

    hook = get_job_end_hook()
    assert hook.subscribers == ("job telemetry", "workflow step token", "jobs in flight", "webhooks")
    assert [s.name for s in hook._subscriptions if s.once] == ["job telemetry", "jobs in flight"]
