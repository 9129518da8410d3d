"""The pure workflow rules: a task result to a step outcome, steps to a run outcome, and the views."""

from __future__ import annotations

import pytest
from switchyard.workflows import outcomes, views
from switchyard.workflows.model import RunStatus, StepKind, StepStatus
from switchyard.workflows.outputs import step_values
from switchyard.workflows.records import Run, Step
from switchyard.workflows.task_errors import JOB_FAILED, REJECTED, STEP_BODY_ERROR, TIMEOUT


def _step(status: StepStatus, kind: StepKind = StepKind.INFERENCE, **values) -> Step:
    defaults = {"endpoint": "/v1/chat/completions"} if kind == StepKind.INFERENCE else {}
    return Step(
        run_id="run_1",
        step_id="draft",
        index=0,
        kind=kind,
        status=status,
        timeout_seconds=60,
        **{**defaults, **values},
    )


def _outcome(step: Step, result, job_error=None):
    return outcomes.step_outcome(step, result, job_error=job_error, max_wait_seconds=3600)


def test_given_a_running_step_whose_task_succeeded_then_it_succeeded():
    assert _outcome(_step(StepStatus.RUNNING, job_id="job_1"), {}) == (StepStatus.SUCCEEDED, None)


def test_given_a_step_already_decided_then_its_decision_stands_whatever_the_task_says():
    canceled = _step(StepStatus.CANCELED, error={"type": "canceled", "message": "The run was canceled."})
    assert _outcome(canceled, {"Error": JOB_FAILED}) == (StepStatus.CANCELED, canceled.error)


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (StepStatus.WAITING, StepKind.GATE, "gate 'draft' got no decision within 60 s"),
        (
            StepStatus.RUNNING,
            StepKind.INFERENCE,
            "step 'draft' did not finish within 60 s (its job was canceled)",
        ),
        (
            StepStatus.PENDING,
            StepKind.INFERENCE,
            "step 'draft' waited for its dependencies longer than 3600 s",
        ),
    ],
)
def test_given_a_timeout_then_the_message_says_what_the_step_was_waiting_for(status, kind, message):
    assert _outcome(_step(status, kind), {"Error": TIMEOUT}) == (
        StepStatus.TIMED_OUT,
        {"type": "timed_out", "message": message},
    )


def test_given_the_job_failed_then_the_step_carries_the_job_error_or_the_cause():
    step = _step(StepStatus.RUNNING, job_id="job_1")
    job_error = {"type": "no_provider", "message": "No online provider"}
    assert _outcome(step, {"Error": JOB_FAILED}, job_error) == (StepStatus.FAILED, job_error)
    assert _outcome(step, {"Error": JOB_FAILED, "Cause": "boom"}) == (
        StepStatus.FAILED,
        {"type": "upstream_error", "message": "boom"},
    )


def test_given_a_bad_body_then_the_error_noted_by_start_job_is_kept():
    noted = {"type": "invalid_request", "message": "step 'draft': body.model: Field required"}
    step = _step(StepStatus.RUNNING, error=noted)
    cause = '{"errorMessage": "step \'draft\': body.model: Field required"}'
    assert _outcome(step, {"Error": STEP_BODY_ERROR, "Cause": cause}) == (StepStatus.FAILED, noted)


def test_given_an_unknown_task_error_then_a_lambda_cause_is_read_from_its_json():
    assert _outcome(
        _step(StepStatus.RUNNING), {"Error": "Lambda.Unknown", "Cause": '{"errorMessage": "OOM"}'}
    ) == (
        StepStatus.FAILED,
        {"type": "workflow_error", "message": "Lambda.Unknown: OOM"},
    )


def test_failed_beats_rejected_beats_succeeded():
    rejected = _step(StepStatus.REJECTED, StepKind.GATE, resolution={"by": "acct_9", "comment": "no"})
    failed = _step(StepStatus.FAILED, error={"type": "upstream_error", "message": "HTTP 500"})
    assert outcomes.run_outcome([rejected]) == (
        RunStatus.REJECTED,
        {"type": "gate_rejected", "step_id": "draft", "message": "gate 'draft' was rejected by acct_9: no"},
    )
    status, error = outcomes.run_outcome([rejected, failed])
    assert status == RunStatus.FAILED
    assert error == {"type": "step_failed", "step_id": "draft", "message": "step 'draft' failed: HTTP 500"}
    assert outcomes.run_outcome([_step(StepStatus.SUCCEEDED)]) == (RunStatus.SUCCEEDED, None)


def test_a_skipped_step_tells_its_run_nothing_the_step_that_skipped_it_has_not():
    assert outcomes.first_problem(_step(StepStatus.SKIPPED)) is None
    assert outcomes.first_problem(_step(StepStatus.TIMED_OUT))["type"] == "step_timed_out"


def test_rejected_by_the_route_is_a_rejection():
    assert _outcome(_step(StepStatus.WAITING, StepKind.GATE), {"Error": REJECTED}) == (
        StepStatus.REJECTED,
        None,
    )


# -- what steps expose, and the views


def test_a_gate_exposes_its_decision_and_an_llm_step_its_text():
    gate = _step(
        StepStatus.SUCCEEDED,
        StepKind.GATE,
        resolution={"decision": "approved", "by": "acct_1", "at_ms": 1_781_352_000_250, "comment": None},
    )
    assert step_values(gate, None)["output"] == {
        "decision": "approved",
        "comment": None,
        "by": "acct_1",
        "at": "2026-06-13T12:00:00Z",
    }
    llm = _step(StepStatus.SUCCEEDED, job_id="job_1")
    envelope = {"result": {"choices": [{"message": {"content": "hi"}}]}}
    assert step_values(llm, envelope) == {
        "output": {"text": "hi", "response": envelope["result"]},
        "result_url": None,
        "job_id": "job_1",
    }
    assert step_values(llm, None)["output"] is None  # its job is not PROCESSED


def test_views_show_whole_second_times_and_a_precise_duration():
    step = _step(
        StepStatus.SUCCEEDED, job_id="job_1", started_ms=1_781_352_000_250, finished_ms=1_781_352_001_999
    )
    view = views.step_view(step, "PROCESSED", {"output": None})
    assert (view["started_at"], view["finished_at"]) == ("2026-06-13T12:00:00Z", "2026-06-13T12:00:01Z")
    assert view["duration_ms"] == 1749
    run = Run(
        run_id="run_1",
        account_id="acct_1",
        status=RunStatus.SUCCEEDED,
        created_ms=1_781_352_000_999,
        inputs_json='{"topic": "tides"}',
        step_count=1,
    )
    whole = views.run_view(run, [step], [view])
    assert whole["created_at"] == "2026-06-13T12:00:00Z"
    assert whole["inputs"] == {"topic": "tides"}
    assert whole["step_counts"] == {"succeeded": 1}


def test_a_waiting_gate_shows_when_it_started_waiting_and_when_it_expires():
    gate = _step(StepStatus.WAITING, StepKind.GATE, waiting_since="2026-06-13T12:00:00.500Z", prompt="ok?")
    view = views.step_view(gate, None, {})
    assert view["gate"]["waiting_since"] == "2026-06-13T12:00:00Z"
    assert view["gate"]["expires_at"] == "2026-06-13T12:01:00Z"
    assert view["started_at"] == "2026-06-13T12:00:00Z"


def test_a_step_record_survives_its_item_shape():
    step = _step(
        StepStatus.PENDING, depends_on=("a",), dependents=("c",), pending_count=1, body_json='{"x":1}'
    )
    item = {**step.to_item(), "sk": "step#draft", "wake_token": "tok"}
    read = Step.from_item(item)
    assert read.wake_token == "tok" and read.body == {"x": 1} and read.depends_on == ("a",)
    assert read.extra == {}
