"""Workflow runs as callers see them: templates, start, read, list, approve/reject gates, cancel.

A run is a DAG of steps executed by one generic Step Functions state machine (statemachines/
workflow.asl.json); the state machine's tasks are served by `workflow_runner`. Both sides share the
runs table (adapters/runs_table.py): one run item plus one item per step, and every change of either is
one of its named, conditional transitions. What callers read is built by `workflows.views`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from switchyard import metrics
from switchyard.adapters.runs_table import RunsTable, get_runs_table
from switchyard.adapters.stepfunctions import StepFunctions
from switchyard.caches import cached
from switchyard.clock import iso, now_ms
from switchyard.errors import Conflict, InvalidRequest, NotFound
from switchyard.ids import new_id
from switchyard.job_model import Job
from switchyard.retention import expires_at
from switchyard.services.job_lifecycle import JobLifecycle, get_job_lifecycle
from switchyard.services.jobs import JobsService, get_jobs_service
from switchyard.services.webhooks import WebhooksService, get_webhooks_service
from switchyard.services.workflow_followups import WorkflowFollowups, get_workflow_followups
from switchyard.settings import Settings, get_settings
from switchyard.validation import webhook_id_of
from switchyard.workflows import views
from switchyard.workflows.model import (
    MAX_PROMPT_CHARS,
    RunStatus,
    StepKind,
    StepStatus,
    WorkflowSpec,
)
from switchyard.workflows.outputs import step_values
from switchyard.workflows.records import Run, Step, TokenAnswer
from switchyard.workflows.spec import prepare
from switchyard.workflows.task_errors import REJECTED
from switchyard.workflows.templates import all_templates, find_template

logger = logging.getLogger(__name__)

MAX_LIST_LIMIT = 100
_START_KEYS = {"template", "spec", "inputs", "metadata"}


class WorkflowsService:
    def __init__(
        self,
        settings: Settings,
        jobs: JobsService,
        lifecycle: JobLifecycle,
        runs: RunsTable,
        sfn: StepFunctions,
        followups: WorkflowFollowups,
        webhooks: WebhooksService,
    ):
        self.settings = settings
        self.jobs = jobs
        self.lifecycle = lifecycle
        self.runs = runs
        self.sfn = sfn
        self.followups = followups
        self.webhooks = webhooks

    def ensure_enabled(self) -> None:
        self.jobs.ensure_enabled()  # runs are made of async jobs: no async, no workflows

    # -- templates
    def templates(self) -> list[dict[str, Any]]:
        return [t.public() for t in all_templates()]

    # -- starting
    def prepare(self, request: Any) -> tuple[str | None, WorkflowSpec, dict[str, Any]]:
        """Validate a start request: (template id or None, spec, input values). Nothing is written."""
        if not isinstance(request, dict):
            raise InvalidRequest("Request body must be a JSON object.")
        unknown = sorted(set(request) - _START_KEYS)
        if unknown:
            raise InvalidRequest(
                f"unknown field(s) {', '.join(unknown)} (use template or spec, inputs and metadata)."
            )
        if request.get("metadata") is not None and not isinstance(request["metadata"], dict):
            raise InvalidRequest("metadata: must be an object.", param="metadata")
        webhook_id_of(request)  # its type now; whose it is in start, once the caller is known
        template_id, raw_spec = request.get("template"), request.get("spec")
        if (template_id is None) == (raw_spec is None):
            raise InvalidRequest("Give exactly one of 'template' (a template id) or 'spec' (an inline DAG).")
        if template_id is not None:
            template = find_template(template_id) if isinstance(template_id, str) else None
            if template is None:
                available = ", ".join(t.id for t in all_templates())
                raise InvalidRequest(
                    f"unknown template {template_id!r} (available: {available}).", param="template"
                )
            raw_spec = template.raw_spec
        spec, inputs = prepare(raw_spec, request.get("inputs"))
        return template_id, spec, inputs

    def start(self, account_id: str, request: Any, base_url: str) -> dict[str, Any]:
        self.ensure_enabled()
        template_id, spec, inputs = self.prepare(request)
        webhook_id = self._check_webhooks(account_id, request, spec)  # a 400 before anything is stored
        run = Run(
            run_id=new_id("run_"),
            account_id=account_id,
            status=RunStatus.RUNNING,
            created_ms=now_ms(),
            inputs_json=_compact_json(inputs),
            base_url=base_url,
            step_count=len(spec.steps),
            template=template_id,
            webhook_id=webhook_id,
        )
        steps, execution_steps = [], []
        for index, spec_step in enumerate(spec.steps):
            timeout = spec_step.timeout_seconds or (
                self.settings.workflow_gate_timeout_seconds
                if spec_step.kind == StepKind.GATE
                else self.settings.workflow_step_timeout_seconds
            )
            dependents = tuple(spec.dependents.get(spec_step.id, ()))
            steps.append(Step.from_spec(run.run_id, index, spec_step, dependents, timeout))
            execution_steps.append(
                {
                    "id": spec_step.id,
                    "type": spec_step.kind.value,
                    "deps": len(spec_step.depends_on),
                    "timeout_seconds": timeout,
                    "wait_seconds": self.settings.workflow_max_wait_seconds,
                }
            )
        # Kept from the latest moment the run could end: each step waits for its dependencies at most
        # wait_seconds (its wait starts with the run), then runs or waits for its decision at most its timeout.
        longest = max(
            (self.settings.workflow_max_wait_seconds + step.timeout_seconds for step in steps), default=0
        )
        run.expires_at = expires_at(run.created_ms, self.settings.retention_days, later_seconds=longest)
        for step in steps:
            step.expires_at = run.expires_at
        # The step items exist before the execution starts: its first states read and write them.
        self.runs.create(run, steps)
        try:
            execution_arn = self.sfn.start_execution(
                self.settings.workflow_state_machine_arn,
                run.run_id,
                {"run_id": run.run_id, "steps": execution_steps, "map_error": None},
            )
        except Exception:
            logger.exception("could not start the state machine of run %s", run.run_id)
            self.runs.fail_to_start(
                run.run_id,
                {"type": "workflow_error", "message": "The run's state machine could not be started."},
            )
            raise
        self.runs.set_execution(run.run_id, execution_arn)
        metrics.record_workflow_run_started()
        return self.view(account_id, run.run_id, base_url)

    def _check_webhooks(self, account_id: str, request: dict[str, Any], spec: WorkflowSpec) -> str | None:
        """The run's webhook (workflow.run.completed, workflow.gate.waiting), and the webhooks its steps'
        bodies name literally (their jobs' events), all the caller's own; returns the run's."""
        webhook_id = webhook_id_of(request)
        if webhook_id:
            self.webhooks.require(account_id, webhook_id)
        for step in spec.steps:
            named = webhook_id_of(step.body, f"step '{step.id}': body.") if step.body else None
            if named and "{{" not in named:  # a reference is checked when the step starts
                self.webhooks.require(account_id, named, f"step '{step.id}': body.metadata.webhook_id")
        return webhook_id

    # -- reading
    def owned_run(self, account_id: str, run_id: str) -> Run:
        run = self.runs.get_run(run_id)
        if run is None or run.account_id != account_id:
            raise NotFound(f"No workflow run '{run_id}'.")
        return run

    def view(self, account_id: str, run_id: str, base_url: str | None) -> dict[str, Any]:
        run = self.owned_run(account_id, run_id)
        steps = self.runs.get_steps(run_id)
        jobs = self.jobs.find_many([step.job_id for step in steps if step.job_id])
        # Outputs kept in S3 are read while they fit in one read's bound, together: a view of 40 steps
        # stays as bounded as one job's read (the rest are given by their result_url).
        budget = self.settings.read_inline_result_limit_bytes
        step_views = []
        for step in steps:
            job = jobs.get(step.job_id or "")
            size = (job.result_bytes or 0) if job is not None else 0
            step_views.append(self._step_view(step, job, base_url, read_result=size <= budget))
            budget -= size if size <= budget else 0
        return views.run_view(run, steps, step_views)

    def _step_view(
        self, step: Step, job: Job | None, base_url: str | None, *, read_result: bool = False
    ) -> dict[str, Any]:
        values = (
            step_values(step, self.jobs.processed_envelope(job, base_url, read_result=read_result))
            if step.status == StepStatus.SUCCEEDED
            else {}
        )
        return views.step_view(step, job.status.value if job is not None else None, values)

    def list(self, account_id: str, *, limit: int, after: str | None) -> tuple[list[dict[str, Any]], bool]:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest(f"limit: must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
        runs, has_more = self.runs.list_for_account(account_id, limit=limit, after=after)
        return [views.run_summary(run) for run in runs], has_more

    # -- gates
    def resolve_gate(
        self,
        account_id: str,
        run_id: str,
        step_id: str,
        *,
        approve: bool,
        comment: str | None,
        base_url: str | None,
    ) -> dict[str, Any]:
        self.ensure_enabled()
        self.owned_run(account_id, run_id)
        if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_PROMPT_CHARS):
            raise InvalidRequest(
                f"comment must be a string of at most {MAX_PROMPT_CHARS} characters.", param="comment"
            )
        step = self._step(run_id, step_id)
        if not step.is_gate:
            raise Conflict(
                f"Step '{step_id}' is an inference step, not a gate: only a waiting gate can be approved or rejected."
            )
        now = now_ms()
        answer = (
            TokenAnswer.success({"decision": "approved"}, now)
            if approve
            else TokenAnswer.failure(REJECTED, comment or "rejected", now)
        )
        resolved = self.runs.resolve_gate(
            run_id, step_id, approve=approve, by=account_id, comment=comment, answer=answer
        )
        if resolved is None:
            raise Conflict(self._not_waiting(self._step(run_id, step_id)))
        metrics.record_workflow_gate_decision(approve)
        # The decision is recorded, and with it the answer its token is owed: if sending it fails now, the
        # sweeper sends it. A late answer (the gate timed out a moment ago) is harmless.
        self.followups.try_answers(resolved)
        return {"run_id": run_id, "step": self._step_view(resolved, None, base_url)}

    def _step(self, run_id: str, step_id: str) -> Step:
        step = self.runs.get_step(run_id, step_id)
        if step is None:
            raise NotFound(f"No step '{step_id}' in workflow run '{run_id}'.")
        return step

    @staticmethod
    def _not_waiting(step: Step) -> str:
        name, status = step.step_id, step.status
        resolution = step.resolution
        if resolution:
            return (
                f"Gate '{name}' was already {resolution['decision']} by {resolution.get('by')} at "
                f"{iso(resolution.get('at_ms'))}; a gate is decided once."
            )
        if status == StepStatus.PENDING:
            return f"Gate '{name}' is not waiting for a decision yet: its dependencies have not finished."
        if status == StepStatus.TIMED_OUT:
            return f"Gate '{name}' timed out without a decision; it can no longer be approved or rejected."
        return f"Gate '{name}' is {status}; only a waiting gate can be approved or rejected."

    # -- canceling
    def cancel(self, account_id: str, run_id: str, base_url: str | None) -> dict[str, Any]:
        """Cancel a RUNNING run: every unfinished step is canceled, parked and waiting tokens are failed
        and queued jobs canceled, so the execution winds down through its own states (moto's
        stop_execution does not stop callback waits)."""
        self.ensure_enabled()
        run = self.owned_run(account_id, run_id)
        canceled = self.runs.cancel(
            run_id, {"type": "canceled", "message": f"The run was canceled by {account_id}."}
        )
        if canceled is None:
            run = self.owned_run(account_id, run_id)
            raise Conflict(f"Workflow run '{run_id}' is {run.status}; only a RUNNING run can be canceled.")
        metrics.record_workflow_run_finished(RunStatus.CANCELED)
        # The run's cancel owes the cancel of its steps: what fails here, the sweeper finishes.
        self.followups.cancel_steps(run_id)
        return self.view(account_id, run_id, base_url)


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@cached
def get_workflows_service() -> WorkflowsService:
    return WorkflowsService(
        get_settings(),
        get_jobs_service(),
        get_job_lifecycle(),
        get_runs_table(),
        StepFunctions(),
        get_workflow_followups(),
        get_webhooks_service(),
    )
