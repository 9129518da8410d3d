"""Every Step Functions token answer lands, whichever call fails: each call a decision makes is failed on
purpose here (SendTaskSuccess, SendTaskFailure, the dependents' DynamoDB writes, the job-end
announcement), and the run still ends, through the decider's own retry or the sweeper, never by a
state's timeout. Same stack as test_workflows.py (the real state machine on moto, its tasks in-process)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import reset_switchyard_caches
from tests.functional import test_workflows as workflows
from tests.functional.test_workflows import (
    RUNS,
    approve,
    finished,
    gate,
    llm,
    started,
    step_is,
    steps_of,
    wait_for,
    wait_for_execution,
)

# The stack with Step Functions executing (and the dispatcher's event source) of the workflow tests.
aws_stack = workflows.aws_stack
harness = workflows.harness
dispatcher = workflows.dispatcher


@pytest.fixture(autouse=True)
def _redrive_at_once(aws_stack, monkeypatch):
    """The sweeper re-drives what is owed without waiting the deployed minute."""
    monkeypatch.setenv("REDRIVE_AFTER_SECONDS", "0")
    reset_switchyard_caches()


class Injected:
    """Make `cls.method` raise a throttling error `times` times for calls where `when(*args)` holds."""

    def __init__(self, monkeypatch, cls: type, method: str, when: Callable[..., bool], times: int = 1):
        self.left = times
        self.raised = 0
        real = getattr(cls, method)

        def flaky(instance: Any, *args: Any, **kwargs: Any) -> Any:
            if self.left > 0 and when(*args, **kwargs):
                self.left -= 1
                self.raised += 1
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, method)
            return real(instance, *args, **kwargs)

        monkeypatch.setattr(cls, method, flaky)

    def stop(self) -> None:
        self.left = 0


def sfn_call(monkeypatch, method: str, when: Callable[..., bool], times: int = 1) -> Injected:
    from switchyard.adapters.stepfunctions import StepFunctions

    return Injected(monkeypatch, StepFunctions, method, when, times)


def sweep_until(harness, api, caller, run_id: str, condition, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        harness.sweep()
        run = wait_for(api, caller, run_id, lambda r: True)
        if condition(run):
            return run
        assert time.monotonic() < deadline, f"condition not reached; run is {run}"
        time.sleep(0.2)


REVIEWED = [
    llm("draft", "draft"),
    gate("review", ["draft"], timeout_seconds=600),
    llm("final", "final {{steps.review.output.comment}}", ["review"]),
]


# ---------------------------------------------------------------- gates


def test_a_gate_whose_answer_fails_keeps_its_decision_and_the_sweeper_sends_it(
    api,
    caller,
    online_provider,
    dispatcher,
    harness,
    monkeypatch,
):
    run = started(api, caller, REVIEWED)
    wait_for(api, caller, run["id"], step_is("review", "waiting"))
    failing = sfn_call(monkeypatch, "succeed", lambda token, output: output == {"decision": "approved"}, 99)

    response = approve(api, caller, run["id"], "review", comment="ship it")

    assert response.status == 200, response.content
    assert response.json()["step"]["gate"]["resolution"]["decision"] == "approved"
    again = approve(api, caller, run["id"], "review")
    assert again.status == 409 and "already approved" in again.json()["error"]["message"]
    assert failing.raised == 1
    time.sleep(1)
    assert steps_of(wait_for(api, caller, run["id"], lambda r: True))["final"]["status"] == "pending"

    failing.stop()  # Step Functions answers again
    done = sweep_until(harness, api, caller, run["id"], finished)

    assert done["status"] == "SUCCEEDED", done
    assert steps_of(done)["review"]["output"]["comment"] == "ship it"


# ---------------------------------------------------------------- a recorded step's dependents


def test_a_wake_up_whose_answer_fails_is_sent_by_records_retry(
    api,
    caller,
    online_provider,
    dispatcher,
    monkeypatch,
):
    failing = sfn_call(monkeypatch, "succeed", lambda token, output: output == {"ready": True})
    run = started(api, caller, [llm("a", "a"), llm("b", "b {{steps.a.output.text}}", ["a"])])

    done = wait_for(api, caller, run["id"], finished, timeout=30)

    assert failing.raised == 1
    assert done["status"] == "SUCCEEDED", done


def test_a_wake_up_whose_count_down_fails_is_done_by_records_retry_counting_once(
    api,
    caller,
    online_provider,
    dispatcher,
    monkeypatch,
):
    from switchyard.adapters.runs_table import RunsTable

    # "b" waits for "a" and "c": were a's success counted twice, "b" would start before "c" ends.
    failing = Injected(
        monkeypatch, RunsTable, "wake_dependent", lambda run_id, step_id, *rest: step_id == "b"
    )
    run = started(
        api,
        caller,
        [llm("a", "a"), gate("c", [], timeout_seconds=600), llm("b", "b", ["a", "c"])],
    )
    wait_for(api, caller, run["id"], lambda r: step_is("a", "succeeded")(r) and step_is("c", "waiting")(r))
    time.sleep(2)  # record's retry has run
    assert failing.raised == 1
    assert steps_of(wait_for(api, caller, run["id"], lambda r: True))["b"]["status"] == "pending"

    assert approve(api, caller, run["id"], "c").status == 200
    done = wait_for(api, caller, run["id"], finished, timeout=30)

    assert done["status"] == "SUCCEEDED", done
    assert steps_of(done)["b"]["started_at"] >= steps_of(done)["c"]["finished_at"]


def test_a_skip_whose_answer_fails_is_sent_by_records_retry(
    api,
    caller,
    online_provider,
    dispatcher,
    monkeypatch,
):
    from switchyard.workflows.task_errors import SKIPPED

    failing = sfn_call(monkeypatch, "fail", lambda token, error, cause="": error == SKIPPED)
    broken = llm("broken", "x")
    broken["body"]["model"] = "ghost-llm"  # no provider: the step fails, its dependents are skipped
    run = started(api, caller, [broken, llm("after", "y", ["broken"]), llm("last", "z", ["after"])])

    done = wait_for(api, caller, run["id"], finished, timeout=30)

    assert failing.raised == 1
    assert done["status"] == "FAILED"
    assert steps_of(done)["after"]["status"] == steps_of(done)["last"]["status"] == "skipped"
    assert steps_of(done)["last"]["error"]["message"] == "skipped: upstream step 'broken' failed"


def test_when_every_try_of_record_fails_the_sweeper_wakes_the_dependent(
    api,
    caller,
    online_provider,
    dispatcher,
    harness,
    monkeypatch,
    aws_stack,
):
    failing = sfn_call(monkeypatch, "succeed", lambda token, output: output == {"ready": True}, 99)
    run = started(api, caller, [llm("a", "a"), llm("b", "b", ["a"])])
    wait_for(api, caller, run["id"], step_is("a", "succeeded"))
    # Record's own retries (1 + 2 + 4 + 8 s) all fail, and its iteration ends without it.
    deadline = time.monotonic() + 40
    while failing.raised < 5:
        assert time.monotonic() < deadline, failing.raised
        time.sleep(0.5)
    assert steps_of(wait_for(api, caller, run["id"], lambda r: True))["b"]["status"] == "pending"

    failing.stop()
    done = sweep_until(harness, api, caller, run["id"], finished, timeout=30)

    assert done["status"] == "SUCCEEDED", done
    assert wait_for_execution(run["id"], aws_stack.environment) == "SUCCEEDED"


# ---------------------------------------------------------------- a run's cancel


def test_a_run_cancel_goes_through_every_step_when_one_answer_fails_and_the_sweeper_sends_it(
    api,
    caller,
    harness,
    monkeypatch,
    aws_stack,
):
    from switchyard.workflows.task_errors import CANCELED

    run = started(api, caller, [gate("g1", []), gate("g2", []), llm("after", "x", ["g1", "g2"])])
    wait_for(api, caller, run["id"], lambda r: step_is("g1", "waiting")(r) and step_is("g2", "waiting")(r))
    failing = sfn_call(monkeypatch, "fail", lambda token, error, cause="": error == CANCELED)  # the first

    response = api("POST", f"{RUNS}/{run['id']}/cancel", headers=caller.headers)

    assert response.status == 200, response.content
    assert [s["status"] for s in response.json()["steps"]] == ["canceled"] * 3
    assert failing.raised == 1
    time.sleep(1)
    import boto3

    arn = aws_stack.environment["WORKFLOW_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:")
    sfn = boto3.client("stepfunctions")
    assert sfn.describe_execution(executionArn=f"{arn}:{run['id']}")["status"] == "RUNNING"  # one gate waits

    report = harness.sweep()

    assert report["redriven_workflow_items"], report
    assert wait_for_execution(run["id"], aws_stack.environment, timeout=15) == "FAILED"  # RunCanceled
    assert wait_for(api, caller, run["id"], finished)["status"] == "CANCELED"


# ---------------------------------------------------------------- a step's job end


def test_a_step_jobs_end_whose_answer_fails_is_announced_again_by_the_sweeper(
    api,
    caller,
    online_provider,
    dispatcher,
    harness,
    monkeypatch,
):
    failing = sfn_call(monkeypatch, "succeed", lambda token, output: "job_id" in output)
    run = started(api, caller, [llm("a", "a"), llm("b", "b {{steps.a.output.text}}", ["a"])])
    wait_for(api, caller, run["id"], lambda r: steps_of(r)["a"]["job_status"] == "PROCESSED")
    time.sleep(1)
    assert failing.raised == 1
    assert steps_of(wait_for(api, caller, run["id"], lambda r: True))["a"]["status"] == "running"

    done = sweep_until(harness, api, caller, run["id"], finished, timeout=30)

    assert done["status"] == "SUCCEEDED", done


def test_a_step_jobs_end_whose_process_died_before_announcing_is_announced_by_the_sweeper(
    api,
    caller,
    online_provider,
    dispatcher,
    harness,
    monkeypatch,
):
    import threading

    from switchyard.job_end import JobEndHook

    ended = threading.Event()

    def die(self, job, again=False):  # the ending write happened; then the process is gone
        ended.set()

    with monkeypatch.context() as died:
        died.setattr(JobEndHook, "announce", die)
        run = started(api, caller, [llm("a", "a")])
        assert ended.wait(30)  # (the dispatcher's thread is past its announcement)
    time.sleep(1)
    assert steps_of(wait_for(api, caller, run["id"], lambda r: True))["a"]["status"] == "running"

    report = harness.sweep()

    assert report["reannounced_ends"] == [
        steps_of(wait_for(api, caller, run["id"], lambda r: True))["a"]["job_id"]
    ]
    assert wait_for(api, caller, run["id"], finished)["status"] == "SUCCEEDED"
