"""The workflow state machine's tasks (WorkflowStepFunction).

- `start_job`: an inference step's dependencies are done: build its body from inputs and upstream
  outputs and submit an ordinary async job carrying the step's task token.
- `record`: a step ended (or could not run): record its outcome once, then wake its dependents
  (success) or skip them, transitively (anything else). The record owes those follow-ups until they are
  done (workflow_followups.py): a retry of this task, or the sweeper, finishes what a failed call left.
- `wait_gate`: a gate's dependencies are done: park its token on the step (it now waits for a decision)
  and announce workflow.gate.waiting to the run's webhook.
- `finish`: every step is final: decide the run's status and announce workflow.run.completed.

Announcements are idempotent (a run's end and a gate's wait each have one webhook-id), so a task that
could not store one fails and is retried by the state machine.

A step's job answers the step's task token when it ends: `step_tokens.answer_step_token`, a job-end
subscriber (see switchyard.wiring). What an outcome is, and every message about it, is decided by
`workflows.outcomes`; this module reads, writes and wakes.

Exactly-once wake-ups: a waiting step parks by storing its token on its own item on condition that
dependencies are still pending (the state machine's updateItem.waitForTaskToken); a finishing step
decrements each dependent's pending count on the same item, once per dependency (`RunsTable.
wake_dependent`), and the write that reaches 0 owes the token it finds its answer. Both are single-item
atomic writes, so exactly one side sees "count 0 and a token".
"""

from __future__ import annotations

import logging
from typing import Any

from switchyard import metrics
from switchyard.adapters.runs_table import RunsTable, get_runs_table
from switchyard.adapters.stepfunctions import StepFunctions
from switchyard.caches import cached
from switchyard.catalog import endpoint_for
from switchyard.clock import iso_ms, ms_from_iso, now_ms
from switchyard.errors import ApiError
from switchyard.services.job_lifecycle import JobLifecycle, get_job_lifecycle
from switchyard.services.jobs import JobsService, get_jobs_service
from switchyard.services.step_tokens import answer_step_token
from switchyard.services.webhook_events import WebhookEvents, get_webhook_events
from switchyard.services.webhooks import WebhooksService, get_webhooks_service
from switchyard.services.workflow_followups import WorkflowFollowups, get_workflow_followups
from switchyard.settings import Settings, get_settings
from switchyard.validation import validate_inference_body
from switchyard.workflows import outcomes, views
from switchyard.workflows import references as refs
from switchyard.workflows.model import FINAL_STEP_STATUSES, RunStatus, StepStatus
from switchyard.workflows.outputs import step_values
from switchyard.workflows.records import Run, Step
from switchyard.workflows.task_errors import JOB_FAILED, StepBodyError

logger = logging.getLogger(__name__)


class StepNotRunnable(Exception):
    """start_job found the step already skipped or canceled (the state machine records what it is)."""


class AnnouncementFailed(Exception):
    """A webhook event could not be stored; the state machine retries the task (the same webhook-id)."""


class WorkflowRunner:
    def __init__(
        self,
        settings: Settings,
        jobs: JobsService,
        lifecycle: JobLifecycle,
        runs: RunsTable,
        sfn: StepFunctions,
        followups: WorkflowFollowups,
        webhooks: WebhooksService,
        events: WebhookEvents,
    ):
        self.settings = settings
        self.jobs = jobs
        self.lifecycle = lifecycle
        self.runs = runs
        self.sfn = sfn
        self.followups = followups
        self.webhooks = webhooks
        self.events = events

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        action = event.get("action")
        if action == "start_job":
            return self.start_job(event["run_id"], event["step_id"], event["task_token"])
        if action == "wait_gate":
            return self.wait_gate(event["run_id"], event["step_id"], event["task_token"])
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
        if step.status == StepStatus.RUNNING and step.job_id:
            # The state machine retried this task (a Lambda service error) with a new token.
            return self._hand_over_token(step.job_id, token)
        if step.status == StepStatus.PENDING:
            moved = self.runs.start_step(run_id, step_id)
            if moved is None:
                step = self.runs.get_step(run_id, step_id) or step
                raise StepNotRunnable(f"step '{step_id}' is {step.status}")
            step = moved
        elif step.status != StepStatus.RUNNING:
            raise StepNotRunnable(f"step '{step_id}' is {step.status}")
        endpoint = endpoint_for(step.endpoint or "")
        if endpoint is None:  # specs are validated at start: only a damaged item gets here
            raise StepBodyError(f"step '{step_id}' has no known endpoint")
        try:
            body = self._body(run, step)
            validate_inference_body(endpoint.path, body, prefix=f"step '{step_id}': body.")
            webhook = self.webhooks.job_webhook(
                run.account_id, body, run.base_url, where=f"step '{step_id}': body."
            )
        except (refs.BadReference, ApiError) as exc:
            message = exc.message if isinstance(exc, ApiError) else str(exc)
            self.runs.note_step_error(run_id, step_id, {"type": "invalid_request", "message": message})
            raise StepBodyError(message) from None
        job = self.jobs.submit(
            run.account_id,
            endpoint,
            body,
            workflow_run_id=run_id,
            workflow_step_id=step_id,
            task_token=token,
            webhook=webhook,
        )
        if self.runs.attach_job(run_id, step_id, job.job_id) is None:
            # Canceled while the job was being created: its end answers the token.
            self.lifecycle.cancel(job.job_id)
        return {"job_id": job.job_id}

    def _hand_over_token(self, job_id: str, token: str) -> dict[str, Any]:
        if self.lifecycle.hand_over_token(job_id, token) is None:
            # It already ended (and answered the old token): answer the new one.
            job = self.jobs.find(job_id)
            if job is not None:
                answer_step_token(job, token, self.sfn)
        return {"job_id": job_id}

    def _body(self, run: Run, step: Step) -> dict[str, Any]:
        inputs = run.inputs
        body = step.body
        needed = {r.name for r in refs.references_in(body) if r.namespace == "steps"}
        upstream: dict[str, dict[str, Any]] = {}
        for step_id in needed:
            found = self.runs.get_step(run.run_id, step_id)
            if found is None or found.status != StepStatus.SUCCEEDED:
                raise refs.BadReference(f"step '{step_id}' has not succeeded")
            job = self.jobs.find(found.job_id) if found.job_id else None
            upstream[step_id] = step_values(found, self.jobs.processed_envelope(job, run.base_url))

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

        substituted: dict[str, Any] = refs.substitute(body, lookup)
        return substituted

    # ---------------------------------------------------------------- wait_gate

    def wait_gate(self, run_id: str, step_id: str, token: str) -> dict[str, Any]:
        """Park the gate's token (pending -> waiting), then announce the wait. A retried task (a new token)
        finds the gate waiting already: it replaces the token and announces again (the same webhook-id)."""
        step = self.runs.get_step(run_id, step_id)
        if step is None or not step.is_gate:
            raise StepNotRunnable(f"run {run_id} has no gate {step_id}")
        if step.status == StepStatus.PENDING:
            parked = self.runs.park_gate(run_id, step_id, token, iso_ms(now_ms()) or "")
        elif step.status == StepStatus.WAITING:
            parked = self.runs.renew_gate_token(run_id, step_id, token)
        else:
            parked = None
        if parked is None:  # skipped or canceled meanwhile: the state machine records what it is
            step = self.runs.get_step(run_id, step_id) or step
            raise StepNotRunnable(f"gate '{step_id}' is {step.status}")
        run = self.runs.get_run(run_id)
        if run is not None and run.webhook_id:
            try:
                self.events.gate_waiting(run, _gate_waiting(run, parked))
            except Exception as exc:
                raise AnnouncementFailed(f"workflow.gate.waiting of {run_id}/{step_id}: {exc}") from exc
        return {"step_id": step_id, "status": StepStatus.WAITING.value}

    # ---------------------------------------------------------------- record

    def record(self, run_id: str, step_id: str, result: dict[str, Any]) -> dict[str, Any]:
        """Record the step's outcome once and do what it owes. A retry (of a call that failed below)
        finds the outcome recorded and does whatever is still owed; nothing here counts twice."""
        for _ in range(5):  # the step may move (cancel, approve) between our read and our write
            step = self.runs.get_step(run_id, step_id)
            if step is None:
                return {"step_id": step_id, "status": "missing"}
            if step.recorded:
                recorded = step
                break
            outcome, error = outcomes.step_outcome(
                step,
                result,
                job_error=self._job_error(step) if outcomes.task_error(result) == JOB_FAILED else None,
                max_wait_seconds=self.settings.workflow_max_wait_seconds,
            )
            found = self.runs.record(step, outcome, error)
            if found is not None:
                recorded = found
                break
        else:
            raise RuntimeError(f"step {step_id} of run {run_id} kept changing while being recorded")
        if recorded.followups_due:
            self.followups.propagate(recorded)  # raises on a failed call: the state machine retries
        problem = outcomes.first_problem(recorded)
        if problem is not None:
            self.runs.note_problem(run_id, problem)  # only the first problem of a run is kept
        if recorded.status == StepStatus.TIMED_OUT and recorded.job_id:
            self.lifecycle.cancel(recorded.job_id)  # nobody waits for its answer any more
        return {"step_id": step_id, "status": recorded.status.value}

    def _job_error(self, step: Step) -> dict[str, Any] | None:
        job = self.jobs.find(step.job_id) if step.job_id else None
        if job is None or not job.error_type:
            return None
        return {"type": job.error_type, "message": job.error_message or ""}

    # ---------------------------------------------------------------- finish

    def finish(self, run_id: str, map_error: Any = None) -> dict[str, Any]:
        run = self.runs.get_run(run_id)
        if run is None:
            return {"status": RunStatus.FAILED.value}
        if run.status != RunStatus.RUNNING:  # canceled (or finished by an earlier attempt)
            self._announce_end(run)
            return {"status": run.status.value}
        steps = self.runs.get_steps(run_id)
        status, error = outcomes.run_outcome(steps)
        unfinished = [step for step in steps if step.status not in FINAL_STEP_STATUSES]
        if map_error or unfinished:
            status, error = RunStatus.FAILED, outcomes.unfinished_error(map_error)
            for step in unfinished:
                self.runs.skip_unfinished(step, error)
                if step.job_id:
                    self.lifecycle.cancel(step.job_id)
        finished = self.runs.finish(run_id, status, error)
        if finished is None:  # canceled at the last moment
            current = self.runs.get_run(run_id)
            if current is not None:
                self._announce_end(current)
            return {"status": current.status.value if current is not None else status.value}
        metrics.record_workflow_run_finished(status)
        self._announce_end(finished)
        return {"status": status.value}

    def _announce_end(self, run: Run) -> None:
        """workflow.run.completed, once per run (a repeated announcement is the same delivery)."""
        if run.webhook_id and run.status != RunStatus.RUNNING:
            self.events.run_ended(run, views.run_summary(run))


def _gate_waiting(run: Run, gate: Step) -> dict[str, Any]:
    """workflow.gate.waiting's data: enough to ask a person, and where to answer."""
    waiting_ms = ms_from_iso(gate.waiting_since) or now_ms()
    base = f"{run.base_url or ''}/v1/workflows/runs/{run.run_id}/steps/{gate.step_id}"
    return {
        "run_id": run.run_id,
        "step_id": gate.step_id,
        "prompt": gate.prompt,
        "description": gate.description,
        "waiting_since": iso_ms(waiting_ms),
        "expires_at": iso_ms(waiting_ms + gate.timeout_seconds * 1000) if gate.timeout_seconds else None,
        "approve_url": f"{base}/approve",
        "reject_url": f"{base}/reject",
    }


@cached
def get_workflow_runner() -> WorkflowRunner:
    return WorkflowRunner(
        get_settings(),
        get_jobs_service(),
        get_job_lifecycle(),
        get_runs_table(),
        StepFunctions(),
        get_workflow_followups(),
        get_webhooks_service(),
        get_webhook_events(),
    )
