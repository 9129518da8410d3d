"""The workflow state machine's tasks (WorkflowStepFunction) and the job-end callback.

- `start_job`: an inference step's dependencies are done: build its body from inputs and upstream
  outputs and submit an ordinary async job carrying the step's task token.
- `record`: a step ended (or could not run): record its outcome once, then wake its dependents
  (success) or skip them, transitively (anything else).
- `finish`: every step is final: decide the run's status.
- `report_job_end`: called by `JobsService.after_finish` for a step's job: answer the step's token.

Exactly-once wake-ups: a waiting step parks by storing its token on its own item on condition that
dependencies are still pending (the state machine's updateItem.waitForTaskToken); a finishing step
decrements each dependent's pending count on the same item and answers the token it finds when the
count reaches 0. Both are single-item atomic writes, so exactly one side sees "count 0 and a token".
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

from switchyard.adapters.jobs_table import now_ms
from switchyard.adapters.runs_table import RunsTable, run_key, step_key
from switchyard.adapters.stepfunctions import StepFunctions
from switchyard.catalog import endpoint_for
from switchyard.errors import ApiError
from switchyard.job_model import Job, JobStatus
from switchyard.services.jobs import JobsService, get_jobs_service
from switchyard.services.workflows import step_values
from switchyard.settings import Settings, get_settings
from switchyard.validation import validate_inference_body
from switchyard.workflows import references as refs
from switchyard.workflows.model import FINAL_STEP_STATUSES, RunStatus, StepKind, StepStatus

logger = logging.getLogger(__name__)

# Errors the state machine passes to `record` (Catch ResultPath), by who raises them.
JOB_FAILED = "Workflow.JobFailed"  # report_job_end: the step's job FAILED
JOB_CANCELED = "Workflow.JobCanceled"  # report_job_end: the step's job was CANCELED
REJECTED = "Workflow.Rejected"  # the reject route
CANCELED = "Workflow.Canceled"  # the run's cancel route
SKIPPED = "Workflow.Skipped"  # record: an upstream step did not succeed
TIMEOUT = "States.Timeout"


class StepNotRunnable(Exception):
    """start_job found the step already skipped or canceled (the state machine records what it is)."""


class StepBodyError(Exception):
    """The step's body could not be built from its references, or is not a valid request."""


def report_job_end(job: Job, token: str | None = None, sfn: StepFunctions | None = None) -> None:
    """Answer a step job's task token with the job's outcome. Never raises: the job has ended either
    way, and a step whose token stays unanswered times out (its state has a TimeoutSeconds)."""
    token = token or job.extra.get("task_token")
    if not token:
        return
    sfn = sfn or StepFunctions()
    try:
        if job.status == JobStatus.PROCESSED:
            sfn.succeed(token, {"job_id": job.job_id, "status": job.status.value})
        elif job.status == JobStatus.FAILED:
            sfn.fail(token, JOB_FAILED, f"{job.error_type}: {job.error_message}")
        elif job.status == JobStatus.CANCELED:
            sfn.fail(token, JOB_CANCELED, "the step's job was canceled")
    except Exception:  # see the docstring
        logger.exception("could not answer the task token of job %s", job.job_id)


class WorkflowRunner:
    def __init__(self, settings: Settings, jobs: JobsService):
        self.settings = settings
        self.jobs = jobs
        self.runs = RunsTable(settings.runs_table)
        self.sfn = StepFunctions()

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        action = event.get("action")
        if action == "start_job":
            return self.start_job(event["run_id"], event["step_id"], event["task_token"])
        if action == "record":
            return self.record(event["run_id"], event["step_id"], event.get("result") or {})
        if action == "finish":
            return self.finish(event["run_id"], event.get("map_error"))
        raise ValueError(f"unknown workflow task action {action!r}")

    # ---------------------------------------------------------------- start_job

    def start_job(self, run_id: str, step_id: str, token: str) -> dict[str, Any]:
        run, step = self.runs.get_run(run_id), self.runs.get_step(run_id, step_id)
        if run is None or step is None:
            raise StepNotRunnable(f"run {run_id} has no step {step_id}")
        if step["status"] == StepStatus.RUNNING and step.get("job_id"):
            # The state machine retried this task (a Lambda service error) with a new token.
            return self._hand_over_token(step["job_id"], token)
        if step["status"] == StepStatus.PENDING:
            moved = self.runs.update(
                step_key(run_id, step_id),
                set_values={"status": StepStatus.RUNNING.value, "started_ms": now_ms()},
                condition="#status = :pending AND pending_count = :zero",
                condition_values={":pending": StepStatus.PENDING.value, ":zero": 0},
            )
            if moved is None:
                step = self.runs.get_step(run_id, step_id) or step
                raise StepNotRunnable(f"step '{step_id}' is {step['status']}")
            step = moved
        elif step["status"] != StepStatus.RUNNING:
            raise StepNotRunnable(f"step '{step_id}' is {step['status']}")
        endpoint = endpoint_for(step["endpoint"])
        try:
            body = self._body(run, step)
            validate_inference_body(endpoint.path, body, prefix=f"step '{step_id}': body.")
        except (refs.BadReference, ApiError) as exc:
            message = exc.message if isinstance(exc, ApiError) else str(exc)
            self.runs.update(
                step_key(run_id, step_id),
                set_values={"error": {"type": "invalid_request", "message": message}},
            )
            raise StepBodyError(message) from None
        job = self.jobs.submit(
            run["account_id"],
            endpoint,
            body,
            workflow_run_id=run_id,
            workflow_step_id=step_id,
            task_token=token,
        )
        stored = self.runs.update(
            step_key(run_id, step_id),
            set_values={"job_id": job.job_id},
            condition="#status = :running",
            condition_values={":running": StepStatus.RUNNING.value},
        )
        if stored is None:  # canceled while the job was being created: its end answers the token
            self.jobs.cancel_active(job.job_id)
        return {"job_id": job.job_id}

    def _hand_over_token(self, job_id: str, token: str) -> dict[str, Any]:
        updated = self.jobs.table.update(
            job_id,
            set_values={"task_token": token},
            condition="#status IN (:queued, :processing)",
            condition_values={":queued": JobStatus.QUEUED.value, ":processing": JobStatus.PROCESSING.value},
        )
        if updated is None:  # it already ended (and answered the old token): answer the new one
            job = self.jobs.table.get(job_id)
            if job is not None:
                report_job_end(job, token, self.sfn)
        return {"job_id": job_id}

    def _body(self, run: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        inputs = json.loads(run.get("inputs") or "{}")
        body = json.loads(step["body"])
        needed = {r.name for r in refs.references_in(body) if r.namespace == "steps"}
        upstream: dict[str, dict[str, Any]] = {}
        for step_id in needed:
            item = self.runs.get_step(run["run_id"], step_id)
            if item is None or item["status"] != StepStatus.SUCCEEDED:
                raise refs.BadReference(f"step '{step_id}' has not succeeded")
            job = self.jobs.table.get(item["job_id"]) if item.get("job_id") else None
            upstream[step_id] = step_values(item, job, self.jobs, run.get("base_url"))

        def lookup(ref: refs.Reference) -> Any:
            if ref.namespace == "inputs":
                if ref.name not in inputs:
                    raise refs.BadReference(f"{ref.text}: the run has no input '{ref.name}'")
                return inputs[ref.name]
            values = upstream[ref.name]
            if ref.field == "output":
                found = refs.follow(values["output"], ref.path, f"steps.{ref.name}.output")
            else:
                found = values.get(ref.field or "")
            if found is None:
                raise refs.BadReference(f"{ref.text} has no value (the step produced none)")
            return found

        return refs.substitute(body, lookup)

    # ---------------------------------------------------------------- record

    def record(self, run_id: str, step_id: str, result: dict[str, Any]) -> dict[str, Any]:
        for _ in range(5):  # the step may move (cancel, approve) between our read and our write
            step = self.runs.get_step(run_id, step_id)
            if step is None:
                return {"step_id": step_id, "status": "missing"}
            if step.get("recorded"):
                return {"step_id": step_id, "status": step["status"]}
            outcome, error = self._outcome(step, result)
            values: dict[str, Any] = {"status": outcome.value, "recorded": True}
            if not step.get("finished_ms"):
                values["finished_ms"] = now_ms()
            if error:
                values["error"] = error
            recorded = self.runs.update(
                step_key(run_id, step_id),
                set_values=values,
                condition="attribute_not_exists(recorded) AND #status = :seen",
                condition_values={":seen": step["status"]},
            )
            if recorded is not None:
                break
        else:
            raise RuntimeError(f"step {step_id} of run {run_id} kept changing while being recorded")
        if outcome == StepStatus.SUCCEEDED:
            self._wake_dependents(run_id, recorded)
        else:
            self._skip_dependents(run_id, recorded, outcome)
            self._note_first_problem(run_id, recorded)
        if outcome == StepStatus.TIMED_OUT and recorded.get("job_id"):
            self.jobs.cancel_active(recorded["job_id"])  # nobody waits for its answer any more
        return {"step_id": step_id, "status": outcome.value}

    def _outcome(self, step: dict[str, Any], result: dict[str, Any]) -> tuple[StepStatus, dict | None]:
        status = StepStatus(step["status"])
        if status in FINAL_STEP_STATUSES:  # decided by approve/reject, cancel or a skip cascade
            return status, step.get("error")
        name = step["step_id"]
        error = result.get("Error") if isinstance(result, dict) else None
        if not error:
            if status == StepStatus.RUNNING and step.get("job_id"):
                return StepStatus.SUCCEEDED, None
            if status == StepStatus.WAITING:  # approved without going through the route: still a yes
                return StepStatus.SUCCEEDED, None
            return StepStatus.FAILED, {
                "type": "workflow_error",
                "message": f"step '{name}' could not be scheduled",
            }
        cause = _cause_message(result.get("Cause"))
        if error == TIMEOUT:
            timeout = int(step.get("timeout_seconds", 0))
            if status == StepStatus.WAITING:
                message = f"gate '{name}' got no decision within {timeout} s"
            elif status == StepStatus.RUNNING:
                message = f"step '{name}' did not finish within {timeout} s (its job was canceled)"
            else:
                message = f"step '{name}' waited for its dependencies longer than {self.settings.workflow_max_wait_seconds} s"
            return StepStatus.TIMED_OUT, {"type": "timed_out", "message": message}
        if error == JOB_FAILED:
            job = self.jobs.table.get(step["job_id"]) if step.get("job_id") else None
            if job is not None and job.error_type:
                return StepStatus.FAILED, {"type": job.error_type, "message": job.error_message or ""}
            return StepStatus.FAILED, {"type": "upstream_error", "message": cause or "the step's job failed"}
        if error == JOB_CANCELED:
            return StepStatus.CANCELED, {"type": "canceled", "message": f"step '{name}''s job was canceled"}
        if error == REJECTED:
            return StepStatus.REJECTED, None
        if error == CANCELED:
            return StepStatus.CANCELED, {"type": "canceled", "message": "The run was canceled."}
        if error == SKIPPED:
            return StepStatus.SKIPPED, step.get("error")
        if error == StepBodyError.__name__:
            return StepStatus.FAILED, step.get("error") or {"type": "invalid_request", "message": cause}
        return StepStatus.FAILED, {"type": "workflow_error", "message": f"{error}: {cause}".rstrip(": ")}

    def _wake_dependents(self, run_id: str, step: dict[str, Any]) -> None:
        for dependent in step.get("dependents", []):
            updated = self.runs.update(
                step_key(run_id, dependent),
                add={"pending_count": -1},
                condition="#status = :pending AND pending_count > :zero",
                condition_values={":pending": StepStatus.PENDING.value, ":zero": 0},
            )
            if updated is not None and int(updated["pending_count"]) == 0 and updated.get("wake_token"):
                self.sfn.succeed(updated["wake_token"], {"ready": True})

    def _skip_dependents(self, run_id: str, step: dict[str, Any], outcome: StepStatus) -> None:
        reason = {
            "type": "skipped",
            "message": f"skipped: upstream step '{step['step_id']}' {_verb(outcome)}",
        }
        queue = list(step.get("dependents", []))
        while queue:
            dependent = queue.pop(0)
            skipped = self.runs.update(
                step_key(run_id, dependent),
                set_values={
                    "status": StepStatus.SKIPPED.value,
                    "recorded": True,
                    "finished_ms": now_ms(),
                    "error": reason,
                },
                condition="#status = :pending",
                condition_values={":pending": StepStatus.PENDING.value},
            )
            if skipped is None:  # already skipped through another path, or canceled
                continue
            if skipped.get("wake_token"):
                self.sfn.fail(skipped["wake_token"], SKIPPED, reason["message"])
            queue.extend(skipped.get("dependents", []))

    def _note_first_problem(self, run_id: str, step: dict[str, Any]) -> None:
        """A RUNNING run says at once that it will not succeed (finish writes the final reason)."""
        status, error = _run_outcome([step])
        if status == RunStatus.SUCCEEDED or step["status"] == StepStatus.SKIPPED:
            return
        self.runs.update(
            run_key(run_id),
            set_values={"error": error},
            condition="#status = :running AND attribute_not_exists(#error)",
            condition_values={":running": RunStatus.RUNNING.value},
            names={"#error": "error"},
        )

    # ---------------------------------------------------------------- finish

    def finish(self, run_id: str, map_error: Any = None) -> dict[str, Any]:
        run = self.runs.get_run(run_id)
        if run is None:
            return {"status": RunStatus.FAILED.value}
        if run["status"] != RunStatus.RUNNING:  # canceled (or finished by an earlier attempt)
            return {"status": run["status"]}
        steps = sorted(self.runs.get_steps(run_id), key=lambda s: int(s["index"]))
        status, error = _run_outcome(steps)
        unfinished = [s for s in steps if s["status"] not in FINAL_STEP_STATUSES]
        if map_error or unfinished:
            detail = _cause_message((map_error or {}).get("Cause")) if isinstance(map_error, dict) else ""
            status = RunStatus.FAILED
            error = {
                "type": "workflow_error",
                "message": "the run's state machine ended before every step finished"
                + (f": {detail}" if detail else ""),
            }
            for step in unfinished:
                self.runs.update(
                    step_key(run_id, step["step_id"]),
                    set_values={"status": StepStatus.SKIPPED.value, "finished_ms": now_ms(), "error": error},
                    condition="#status = :seen",
                    condition_values={":seen": step["status"]},
                )
                if step.get("job_id"):
                    self.jobs.cancel_active(step["job_id"])
        values: dict[str, Any] = {"status": status.value, "finished_ms": now_ms()}
        remove: tuple[str, ...] = ()
        if error:
            values["error"] = error
        else:
            remove = ("error",)
        finished = self.runs.update(
            run_key(run_id),
            set_values=values,
            remove=remove,
            condition="#status = :running",
            condition_values={":running": RunStatus.RUNNING.value},
        )
        if finished is None:  # canceled at the last moment
            return {"status": (self.runs.get_run(run_id) or {}).get("status", status.value)}
        return {"status": status.value}


def _verb(outcome: StepStatus) -> str:
    return {
        StepStatus.FAILED: "failed",
        StepStatus.REJECTED: "was rejected",
        StepStatus.TIMED_OUT: "timed out",
        StepStatus.CANCELED: "was canceled",
        StepStatus.SKIPPED: "was skipped",
    }.get(outcome, str(outcome))


def _run_outcome(steps: list[dict[str, Any]]) -> tuple[RunStatus, dict[str, Any] | None]:
    """CANCELED is set by the cancel route; otherwise FAILED beats REJECTED beats SUCCEEDED."""
    for step in steps:
        status, name = step["status"], step["step_id"]
        error = step.get("error") or {}
        if status in (StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.CANCELED):
            kind = "gate" if step.get("type") == StepKind.GATE.value else "step"
            detail = error.get("message") or status
            message = (
                detail
                if detail.startswith(("gate '", "step '"))
                else f"{kind} '{name}' {_verb(StepStatus(status))}: {detail}"
            )
            return RunStatus.FAILED, {"type": f"step_{status}", "step_id": name, "message": message}
    for step in steps:
        if step["status"] == StepStatus.REJECTED:
            resolution = step.get("resolution") or {}
            comment = resolution.get("comment")
            message = f"gate '{step['step_id']}' was rejected by {resolution.get('by', 'a reviewer')}" + (
                f": {comment}" if comment else ""
            )
            return RunStatus.REJECTED, {
                "type": "gate_rejected",
                "step_id": step["step_id"],
                "message": message,
            }
    return RunStatus.SUCCEEDED, None


def _cause_message(cause: Any) -> str:
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


@lru_cache(maxsize=1)
def get_workflow_runner() -> WorkflowRunner:
    return WorkflowRunner(get_settings(), get_jobs_service())
