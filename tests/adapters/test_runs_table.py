"""The runs table's transitions on in-process moto: runs and steps move only from the state each
transition names, None otherwise, and no transition ever creates an item."""

from __future__ import annotations

import pytest
from switchyard.workflows.model import RunStatus, StepKind, StepSpec, StepStatus
from switchyard.workflows.records import Run, Step


@pytest.fixture
def runs(aws_stack):
    from switchyard.adapters.runs_table import get_runs_table

    table = get_runs_table()
    run = Run(run_id="run_1", account_id="acct_1", status=RunStatus.RUNNING, created_ms=1, step_count=3)
    draft = StepSpec(
        id="draft", kind=StepKind.INFERENCE, endpoint="/v1/chat/completions", body={"model": "m"}
    )
    review = StepSpec(id="review", kind=StepKind.GATE, depends_on=("draft",), prompt="ok?")
    publish = StepSpec(id="publish", kind=StepKind.INFERENCE, depends_on=("draft", "review"), body={})
    table.create(
        run,
        [
            Step.from_spec("run_1", 0, draft, ("review", "publish"), 60),
            Step.from_spec("run_1", 1, review, ("publish",), 60),
            Step.from_spec("run_1", 2, publish, (), 60),
        ],
    )
    return table


def _park(runs, step_id: str, attribute: str, **extra) -> None:
    """What the state machine writes on a step item itself (its updateItem.waitForTaskToken)."""
    from switchyard.adapters.runs_table import step_key

    names = {f"#{i}": name for i, name in enumerate([attribute, *extra])}
    values = {f":{i}": value for i, value in enumerate(["token-" + step_id, *extra.values()])}
    runs._table.update_item(
        Key=step_key("run_1", step_id),
        UpdateExpression="SET " + ", ".join(f"#{i} = :{i}" for i in range(len(names))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def test_a_run_reads_back_with_its_steps_in_order(runs):
    assert runs.get_run("run_1").status == RunStatus.RUNNING
    assert [s.step_id for s in runs.get_steps("run_1")] == ["draft", "review", "publish"]
    assert runs.get_step("run_1", "publish").pending_count == 2
    listed, has_more = runs.list_for_account("acct_1", limit=10, after=None)
    assert [r.run_id for r in listed] == ["run_1"] and not has_more


def test_a_step_starts_only_with_its_dependencies_done_and_keeps_its_job_only_while_running(runs):
    assert runs.start_step("run_1", "publish") is None  # two dependencies pending
    started = runs.start_step("run_1", "draft")
    assert started.status == StepStatus.RUNNING and started.started_ms
    assert runs.start_step("run_1", "draft") is None
    assert runs.attach_job("run_1", "draft", "job_1").job_id == "job_1"
    runs.cancel_step(runs.get_step("run_1", "draft"), {"type": "canceled", "message": "x"})
    assert runs.attach_job("run_1", "draft", "job_2") is None


def test_an_outcome_is_recorded_once_and_only_over_the_status_it_was_decided_on(runs):
    runs.start_step("run_1", "draft")
    seen = runs.get_step("run_1", "draft")
    runs.cancel_step(seen, {"type": "canceled", "message": "The run was canceled."})
    assert runs.record(seen, StepStatus.SUCCEEDED, None) is None  # it moved since it was read
    current = runs.get_step("run_1", "draft")
    recorded = runs.record(current, StepStatus.CANCELED, current.error)
    assert recorded.recorded and recorded.status == StepStatus.CANCELED
    assert runs.record(current, StepStatus.CANCELED, None) is None


def test_waking_counts_down_to_zero_and_no_further_and_hands_back_the_parked_token(runs):
    _park(runs, "publish", "wake_token")
    first = runs.wake_dependent("run_1", "publish")
    assert first.pending_count == 1 and first.wake_token == "token-publish"
    assert runs.wake_dependent("run_1", "publish").pending_count == 0
    assert runs.wake_dependent("run_1", "publish") is None


def test_skip_moves_pending_steps_only(runs):
    reason = {"type": "skipped", "message": "skipped: upstream step 'draft' failed"}
    skipped = runs.skip("run_1", "publish", reason)
    assert skipped.status == StepStatus.SKIPPED and skipped.recorded and skipped.error == reason
    assert runs.skip("run_1", "publish", reason) is None


def test_a_gate_is_decided_once_and_only_while_it_waits_with_its_token(runs):
    assert runs.resolve_gate("run_1", "review", approve=True, by="acct_1", comment=None) is None  # pending
    _park(runs, "review", "gate_token", status="waiting", waiting_since="2026-06-13T12:00:00.000Z")
    rejected = runs.resolve_gate("run_1", "review", approve=False, by="acct_1", comment="no")
    assert rejected.status == StepStatus.REJECTED and rejected.gate_token == "token-review"
    assert rejected.resolution["decision"] == "rejected" and rejected.resolution["comment"] == "no"
    assert runs.resolve_gate("run_1", "review", approve=True, by="acct_1", comment=None) is None


def test_a_run_notes_its_first_problem_once_and_finishes_or_cancels_only_while_running(runs):
    assert runs.note_problem("run_1", {"type": "step_failed", "message": "first"}).error["message"] == "first"
    assert runs.note_problem("run_1", {"type": "step_failed", "message": "second"}) is None
    finished = runs.finish("run_1", RunStatus.SUCCEEDED, None)
    assert finished.status == RunStatus.SUCCEEDED and finished.error is None and finished.finished_ms
    assert runs.finish("run_1", RunStatus.FAILED, {"type": "x"}) is None
    assert runs.cancel("run_1", {"type": "canceled", "message": "by acct_1"}) is None


def test_no_transition_creates_an_item(runs):
    assert runs.set_execution("run_nope", "arn") is None
    assert runs.note_step_error("run_1", "nope", {"type": "invalid_request", "message": "x"}) is None
    assert runs.get_run("run_nope") is None and runs.get_step("run_1", "nope") is None
