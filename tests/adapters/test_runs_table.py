"""The runs table's transitions on in-process moto: runs and steps move only from the state each
transition names, None otherwise, and no transition ever creates an item."""

from __future__ import annotations

import pytest
from switchyard.workflows.model import RunStatus, StepKind, StepSpec, StepStatus
from switchyard.workflows.records import GATE, WAKE, Run, Step, TokenAnswer

READY = TokenAnswer.success({"ready": True}, 1)


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


def test_waking_counts_each_dependency_once_down_to_zero_and_the_last_owes_the_parked_token(runs):
    _park(runs, "publish", "wake_token")
    first, last = runs.wake_dependent("run_1", "publish", "draft", READY)
    assert (first.pending_count, last, first.wake_token, first.wake_answer) == (
        1,
        False,
        "token-publish",
        None,
    )
    assert runs.wake_dependent("run_1", "publish", "draft", READY) == (None, False)  # a retry counts nothing
    woken, last = runs.wake_dependent("run_1", "publish", "review", READY)
    assert (woken.pending_count, last) == (0, True)
    assert woken.done_deps == {"draft", "review"}
    assert woken.wake_answer == READY and woken.owes_answers
    assert runs.owing(before_ms=2**62, limit=10) == [("run_1", "publish")]
    assert runs.wake_dependent("run_1", "publish", "review", READY) == (None, False)


def test_an_owed_answer_is_marked_sent_and_only_a_step_owing_nothing_settles(runs):
    _park(runs, "publish", "wake_token")
    runs.wake_dependent("run_1", "publish", "draft", READY)
    woken, _ = runs.wake_dependent("run_1", "publish", "review", READY)
    assert runs.settle("run_1", "publish") is False  # the answer is not sent yet
    sent = runs.answered(woken, WAKE)
    assert sent.wake_answer.answered and not sent.owes_answers
    assert runs.answered(woken, GATE) is None  # it owes nothing there
    assert runs.settle("run_1", "publish") is True
    assert runs.owing(before_ms=2**62, limit=10) == []


def test_skip_moves_pending_steps_only_and_owes_their_token_and_their_dependents(runs):
    reason = {"type": "skipped", "message": "skipped: upstream step 'draft' failed"}
    answer = TokenAnswer.failure("Workflow.Skipped", reason["message"], 1)
    skipped = runs.skip("run_1", "publish", reason, answer)
    assert skipped.status == StepStatus.SKIPPED and skipped.recorded and skipped.error == reason
    assert skipped.followups_due and skipped.wake_answer == answer
    assert runs.skip("run_1", "publish", reason, answer) is None
    runs.answered(skipped, WAKE)
    assert runs.settle("run_1", "publish") is False  # its own dependents are still owed
    runs.followups_done(skipped)
    assert runs.settle("run_1", "publish") is True


def test_a_recorded_outcome_owes_its_dependents_until_they_are_done(runs):
    recorded = runs.record(runs.get_step("run_1", "draft"), StepStatus.SUCCEEDED, None)
    assert recorded.followups_due
    assert ("run_1", "draft") in runs.owing(before_ms=2**62, limit=10)
    assert runs.owing(before_ms=0, limit=10) == []  # too recent
    runs.followups_done(recorded)
    assert runs.settle("run_1", "draft") is True


def test_a_gate_is_decided_once_and_only_while_it_waits_with_its_token_owing_the_answer(runs):
    no = TokenAnswer.failure("Workflow.Rejected", "no", 1)
    yes = TokenAnswer.success({"decision": "approved"}, 1)
    assert runs.resolve_gate("run_1", "review", approve=True, by="acct_1", comment=None, answer=yes) is None
    _park(runs, "review", "gate_token", status="waiting", waiting_since="2026-06-13T12:00:00.000Z")
    rejected = runs.resolve_gate("run_1", "review", approve=False, by="acct_1", comment="no", answer=no)
    assert rejected.status == StepStatus.REJECTED and rejected.gate_token == "token-review"
    assert rejected.resolution["decision"] == "rejected" and rejected.resolution["comment"] == "no"
    assert rejected.gate_answer == no
    assert runs.resolve_gate("run_1", "review", approve=True, by="acct_1", comment=None, answer=yes) is None


def test_a_canceled_run_owes_its_steps_cancel_until_done(runs):
    canceled = runs.cancel("run_1", {"type": "canceled", "message": "by acct_1"})
    assert canceled.cancel_due and ("run_1", None) in runs.owing(before_ms=2**62, limit=10)
    assert runs.settle("run_1", None) is False
    assert runs.cancel_done("run_1").cancel_due is False
    assert runs.settle("run_1", None) is True


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


def test_a_wake_up_racing_another_dependencys_is_counted_all_the_same(runs, monkeypatch):
    _park(runs, "publish", "wake_token")
    real = runs._step
    calls = []

    def racing(*args, **kwargs):
        calls.append(kwargs.get("condition", ""))
        if len(calls) == 2:  # between draft's two tries, review counts down first
            monkeypatch.setattr(runs, "_step", real)
            assert runs.wake_dependent("run_1", "publish", "review", READY)[0].pending_count == 1
            monkeypatch.setattr(runs, "_step", racing)
        return real(*args, **kwargs)

    monkeypatch.setattr(runs, "_step", racing)
    woken, last = runs.wake_dependent("run_1", "publish", "draft", READY)

    assert (woken.pending_count, last, woken.done_deps) == (0, True, {"draft", "review"})
