"""How a step's end becomes its outcome, and a run's steps the run's outcome (pure rules).

`record` hands a step's task result here: the state machine's Catch puts the task's error (one of
`task_errors`) and cause on it, or nothing when the task succeeded. Every message a caller reads about a
step that did not succeed is written here.
"""

from __future__ import annotations

import json
from typing import Any

from switchyard.workflows.model import FINAL_STEP_STATUSES, RunStatus, StepStatus
from switchyard.workflows.records import Step
from switchyard.workflows.task_errors import (
    CANCELED,
    JOB_CANCELED,
    JOB_FAILED,
    REJECTED,
    SKIPPED,
    STEP_BODY_ERROR,
    TIMEOUT,
)

Error = dict[str, Any]

_VERBS = {
    StepStatus.FAILED: "failed",
    StepStatus.REJECTED: "was rejected",
    StepStatus.TIMED_OUT: "timed out",
    StepStatus.CANCELED: "was canceled",
    StepStatus.SKIPPED: "was skipped",
}


def task_error(result: Any) -> str | None:
    """The error a step's task ended with, or None when it succeeded."""
    return result.get("Error") if isinstance(result, dict) else None


def step_outcome(
    step: Step, result: Any, *, job_error: Error | None, max_wait_seconds: int
) -> tuple[StepStatus, Error | None]:
    """The outcome to record for a step whose task ended with `result`.

    `job_error` is the error of the step's job, when the task says the job failed (JOB_FAILED); a step
    already final (approved, rejected, canceled, skipped) keeps what was decided.
    """
    status, name = step.status, step.step_id
    if status in FINAL_STEP_STATUSES:  # decided by approve/reject, cancel or a skip cascade
        return status, step.error
    error = task_error(result)
    if not error:
        if status == StepStatus.RUNNING and step.job_id:
            return StepStatus.SUCCEEDED, None
        if status == StepStatus.WAITING:  # approved without going through the route: still a yes
            return StepStatus.SUCCEEDED, None
        return StepStatus.FAILED, {
            "type": "workflow_error",
            "message": f"step '{name}' could not be scheduled",
        }
    cause = cause_message(result.get("Cause"))
    if error == TIMEOUT:
        timeout = step.timeout_seconds
        if status == StepStatus.WAITING:
            message = f"gate '{name}' got no decision within {timeout} s"
        elif status == StepStatus.RUNNING:
            message = f"step '{name}' did not finish within {timeout} s (its job was canceled)"
        else:
            message = f"step '{name}' waited for its dependencies longer than {max_wait_seconds} s"
        return StepStatus.TIMED_OUT, {"type": "timed_out", "message": message}
    if error == JOB_FAILED:
        if job_error is not None:
            return StepStatus.FAILED, job_error
        return StepStatus.FAILED, {"type": "upstream_error", "message": cause or "the step's job failed"}
    if error == JOB_CANCELED:
        return StepStatus.CANCELED, {"type": "canceled", "message": f"step '{name}''s job was canceled"}
    if error == REJECTED:
        return StepStatus.REJECTED, None
    if error == CANCELED:
        return StepStatus.CANCELED, run_canceled_error()
    if error == SKIPPED:
        return StepStatus.SKIPPED, step.error
    if error == STEP_BODY_ERROR:
        return StepStatus.FAILED, step.error or {"type": "invalid_request", "message": cause}
    return StepStatus.FAILED, {"type": "workflow_error", "message": f"{error}: {cause}".rstrip(": ")}


def run_canceled_error() -> Error:
    """What a step canceled with its run says."""
    return {"type": "canceled", "message": "The run was canceled."}


def skip_reason(upstream: Step, outcome: StepStatus) -> Error:
    """Why the steps downstream of one that did not succeed are skipped."""
    return {"type": "skipped", "message": f"skipped: upstream step '{upstream.step_id}' {verb(outcome)}"}


def unfinished_error(map_error: Any) -> Error:
    """Why a run whose state machine ended early failed (its unfinished steps are skipped with this)."""
    detail = cause_message(map_error.get("Cause")) if isinstance(map_error, dict) else ""
    return {
        "type": "workflow_error",
        "message": "the run's state machine ended before every step finished"
        + (f": {detail}" if detail else ""),
    }


def run_outcome(steps: list[Step]) -> tuple[RunStatus, Error | None]:
    """CANCELED is set by the cancel route; otherwise FAILED beats REJECTED beats SUCCEEDED."""
    for step in steps:
        status, name = step.status, step.step_id
        if status in (StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.CANCELED):
            kind = "gate" if step.is_gate else "step"
            detail = (step.error or {}).get("message") or status.value
            message = (
                detail
                if detail.startswith(("gate '", "step '"))
                else f"{kind} '{name}' {verb(status)}: {detail}"
            )
            return RunStatus.FAILED, {"type": f"step_{status.value}", "step_id": name, "message": message}
    for step in steps:
        if step.status == StepStatus.REJECTED:
            resolution = step.resolution or {}
            comment = resolution.get("comment")
            message = f"gate '{step.step_id}' was rejected by {resolution.get('by', 'a reviewer')}" + (
                f": {comment}" if comment else ""
            )
            return RunStatus.REJECTED, {"type": "gate_rejected", "step_id": step.step_id, "message": message}
    return RunStatus.SUCCEEDED, None


def first_problem(step: Step) -> Error | None:
    """What a step that just ended tells its RUNNING run at once, if it means the run cannot succeed
    (a skipped step says nothing: the step that caused the skip has said it)."""
    status, error = run_outcome([step])
    if status == RunStatus.SUCCEEDED or step.status == StepStatus.SKIPPED:
        return None
    return error


def verb(outcome: StepStatus) -> str:
    return _VERBS.get(outcome, str(outcome))


def cause_message(cause: Any) -> str:
    """A Lambda error's Cause is its JSON error payload; other causes are plain text."""
    if not isinstance(cause, str) or not cause:
        return ""
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(payload, dict) and "errorMessage" in payload:
        return str(payload["errorMessage"])
    return cause
