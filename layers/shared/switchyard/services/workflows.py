"""Workflow runs as callers see them: templates, start, read, list, approve/reject gates, cancel.

A run is a DAG of steps executed by one generic Step Functions state machine (statemachines/
workflow.asl.json); the state machine's tasks are served by `workflow_runner`. Both sides share the
runs table: one run item plus one item per step, and every change of a step is a conditional write.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from switchyard.adapters.runs_table import RUN_SK, RunsTable, run_key, step_key
from switchyard.adapters.stepfunctions import StepFunctions
from switchyard.caches import cached
from switchyard.catalog import ENDPOINTS
from switchyard.clock import iso, ms_from_iso, now_ms
from switchyard.errors import Conflict, InvalidRequest, NotFound
from switchyard.ids import new_id
from switchyard.job_model import Job, JobStatus
from switchyard.services.job_lifecycle import JobLifecycle, get_job_lifecycle
from switchyard.services.jobs import JobsService, get_jobs_service
from switchyard.settings import Settings, get_settings
from switchyard.workflows.model import (
    ACTIVE_STEP_STATUSES,
    MAX_PROMPT_CHARS,
    RunStatus,
    StepKind,
    StepStatus,
    WorkflowSpec,
)
from switchyard.workflows.outputs import gate_output, inference_output
from switchyard.workflows.spec import prepare
from switchyard.workflows.task_errors import CANCELED, REJECTED
from switchyard.workflows.templates import all_templates, find_template

logger = logging.getLogger(__name__)

MAX_LIST_LIMIT = 100
_START_KEYS = {"template", "spec", "inputs"}


def is_llm_endpoint(endpoint: str | None) -> bool:
    found = ENDPOINTS.get(endpoint or "")
    return found is not None and found.inference_type == "LLM"


def step_values(
    step: dict[str, Any], job: Job | None, jobs: JobsService, base_url: str | None
) -> dict[str, Any]:
    """What a step exposes: `output`, `result_url`, `job_id` (the roots of `{{steps.ID...}}`)."""
    if step.get("type") == StepKind.GATE.value:
        return {"output": gate_output(step.get("resolution")), "result_url": None, "job_id": None}
    values: dict[str, Any] = {"output": None, "result_url": None, "job_id": step.get("job_id")}
    if job is not None and job.status == JobStatus.PROCESSED:
        envelope = jobs.envelope(job, base_url)
        values["output"] = inference_output(envelope.get("result"), is_llm_endpoint(step.get("endpoint")))
        values["result_url"] = envelope.get("result_url")
    return values


class WorkflowsService:
    def __init__(self, settings: Settings, jobs: JobsService, lifecycle: JobLifecycle):
        self.settings = settings
        self.jobs = jobs
        self.lifecycle = lifecycle
        self.runs = RunsTable(settings.runs_table)
        self.sfn = StepFunctions()

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
            raise InvalidRequest(f"unknown field(s) {', '.join(unknown)} (use template or spec, and inputs).")
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
        run_id = new_id("run_")
        now = now_ms()
        run_item: dict[str, Any] = {
            "run_id": run_id,
            "sk": RUN_SK,
            "account_id": account_id,
            "status": RunStatus.RUNNING.value,
            "created_ms": now,
            "inputs": json.dumps(inputs, separators=(",", ":")),
            "base_url": base_url,
            "step_count": len(spec.steps),
        }
        if template_id:
            run_item["template"] = template_id
        step_items, execution_steps = [], []
        for index, step in enumerate(spec.steps):
            timeout = step.timeout_seconds or (
                self.settings.workflow_gate_timeout_seconds
                if step.kind == StepKind.GATE
                else self.settings.workflow_step_timeout_seconds
            )
            item: dict[str, Any] = {
                **step_key(run_id, step.id),
                "step_id": step.id,
                "index": index,
                "type": step.kind.value,
                "status": StepStatus.PENDING.value,
                "depends_on": list(step.depends_on),
                "dependents": list(spec.dependents.get(step.id, ())),
                "pending_count": len(step.depends_on),
                "timeout_seconds": timeout,
            }
            if step.endpoint:
                item["endpoint"] = step.endpoint
                item["body"] = json.dumps(step.body, separators=(",", ":"))
            for name in ("prompt", "description"):
                if getattr(step, name):
                    item[name] = getattr(step, name)
            step_items.append(item)
            execution_steps.append(
                {
                    "id": step.id,
                    "type": step.kind.value,
                    "deps": len(step.depends_on),
                    "timeout_seconds": timeout,
                    "wait_seconds": self.settings.workflow_max_wait_seconds,
                }
            )
        # The step items exist before the execution starts: its first states read and write them.
        self.runs.create(run_item, step_items)
        try:
            execution_arn = self.sfn.start_execution(
                self.settings.workflow_state_machine_arn,
                run_id,
                {"run_id": run_id, "steps": execution_steps, "map_error": None},
            )
        except Exception:
            logger.exception("could not start the state machine of run %s", run_id)
            self.runs.update(
                run_key(run_id),
                set_values={
                    "status": RunStatus.FAILED.value,
                    "finished_ms": now_ms(),
                    "error": {
                        "type": "workflow_error",
                        "message": "The run's state machine could not be started.",
                    },
                },
            )
            raise
        self.runs.update(run_key(run_id), set_values={"execution_arn": execution_arn})
        return self.view(account_id, run_id, base_url)

    # -- reading
    def owned_run(self, account_id: str, run_id: str) -> dict[str, Any]:
        run = self.runs.get_run(run_id)
        if run is None or run.get("account_id") != account_id:
            raise NotFound(f"No workflow run '{run_id}'.")
        return run

    def view(self, account_id: str, run_id: str, base_url: str | None) -> dict[str, Any]:
        run = self.owned_run(account_id, run_id)
        steps = sorted(self.runs.get_steps(run_id), key=lambda s: int(s["index"]))
        job_ids = [s["job_id"] for s in steps if s.get("job_id")]
        jobs = self.jobs.find_many(job_ids)
        step_views = [self._step_view(step, jobs.get(step.get("job_id", "")), base_url) for step in steps]
        counts: dict[str, int] = {}
        for step in step_views:
            counts[step["status"]] = counts.get(step["status"], 0) + 1
        return {
            **self._summary(run),
            "inputs": json.loads(run.get("inputs") or "{}"),
            "step_counts": counts,
            "steps": step_views,
            "edges": [{"from": dep, "to": s["step_id"]} for s in steps for dep in s.get("depends_on", [])],
        }

    def _summary(self, run: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": run["run_id"],
            "object": "workflow.run",
            "status": run["status"],
            "template": run.get("template"),
            "created_at": iso(run.get("created_ms")),
            "finished_at": iso(run.get("finished_ms")),
            "step_count": int(run.get("step_count", 0)),
            "error": run.get("error"),
        }

    def _step_view(self, step: dict[str, Any], job: Job | None, base_url: str | None) -> dict[str, Any]:
        kind = step["type"]
        started_ms = step.get("started_ms") or ms_from_iso(step.get("waiting_since"))
        finished_ms = step.get("finished_ms")
        out: dict[str, Any] = {"id": step["step_id"], "type": kind}
        if step.get("description"):
            out["description"] = step["description"]
        if kind == StepKind.INFERENCE.value:
            out["endpoint"] = step.get("endpoint")
        out.update(
            status=step["status"],
            depends_on=list(step.get("depends_on", [])),
            started_at=iso(started_ms),
            finished_at=iso(finished_ms),
            duration_ms=int(finished_ms) - int(started_ms) if started_ms and finished_ms else None,
        )
        if kind == StepKind.INFERENCE.value:
            out["job_id"] = step.get("job_id")
            out["job_status"] = job.status.value if job is not None else None
        values = step_values(step, job, self.jobs, base_url) if step["status"] == StepStatus.SUCCEEDED else {}
        out["output"] = values.get("output")
        if kind == StepKind.INFERENCE.value and not is_llm_endpoint(step.get("endpoint")):
            out["result_url"] = values.get("result_url")
        out["error"] = step.get("error")
        if kind == StepKind.GATE.value:
            timeout = int(step.get("timeout_seconds", 0))
            waiting_ms = ms_from_iso(step.get("waiting_since"))
            out["gate"] = {
                "prompt": step.get("prompt"),
                "timeout_seconds": timeout,
                "waiting_since": iso(waiting_ms),
                "expires_at": iso(waiting_ms + timeout * 1000) if waiting_ms and timeout else None,
                "resolution": gate_output(step.get("resolution")),
            }
        return out

    def list(self, account_id: str, *, limit: int, after: str | None) -> tuple[list[dict[str, Any]], bool]:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest(f"limit: must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
        items, has_more = self.runs.list_for_account(account_id, limit=limit, after=after)
        return [self._summary(item) for item in items], has_more

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
        if step["type"] != StepKind.GATE.value:
            raise Conflict(
                f"Step '{step_id}' is an inference step, not a gate: only a waiting gate can be approved or rejected."
            )
        now = now_ms()
        decision = "approved" if approve else "rejected"
        resolved = self.runs.update(
            step_key(run_id, step_id),
            set_values={
                "status": (StepStatus.SUCCEEDED if approve else StepStatus.REJECTED).value,
                "finished_ms": now,
                "resolution": {"decision": decision, "by": account_id, "at_ms": now, "comment": comment},
            },
            condition="#status = :waiting AND attribute_exists(gate_token)",
            condition_values={":waiting": StepStatus.WAITING.value},
        )
        if resolved is None:
            raise Conflict(self._not_waiting(self._step(run_id, step_id)))
        token = resolved["gate_token"]
        if approve:
            self.sfn.succeed(token, {"decision": decision})
        else:
            self.sfn.fail(token, REJECTED, comment or "rejected")
        # A late answer (the gate timed out a moment ago) is harmless: the recorded decision stands.
        return {
            "run_id": run_id,
            "step": self._step_view(resolved, None, base_url),
        }

    def _step(self, run_id: str, step_id: str) -> dict[str, Any]:
        step = self.runs.get_step(run_id, step_id)
        if step is None:
            raise NotFound(f"No step '{step_id}' in workflow run '{run_id}'.")
        return step

    @staticmethod
    def _not_waiting(step: dict[str, Any]) -> str:
        name, status = step["step_id"], step["status"]
        resolution = step.get("resolution")
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
        now = now_ms()
        canceled = self.runs.update(
            run_key(run_id),
            set_values={
                "status": RunStatus.CANCELED.value,
                "finished_ms": now,
                "error": {"type": "canceled", "message": f"The run was canceled by {account_id}."},
            },
            condition="#status = :running",
            condition_values={":running": RunStatus.RUNNING.value},
        )
        if canceled is None:
            run = self.owned_run(account_id, run_id)
            raise Conflict(f"Workflow run '{run_id}' is {run['status']}; only a RUNNING run can be canceled.")
        # Downstream steps first: when an upstream step's cancel reaches the state machine, whose record
        # would skip what depends on it, those steps are already canceled.
        for step in sorted(self.runs.get_steps(run_id), key=lambda s: -int(s["index"])):
            self._cancel_step(run["account_id"], run_id, step, now)
        return self.view(account_id, run_id, base_url)

    def _cancel_step(self, account_id: str, run_id: str, step: dict[str, Any], now: int) -> None:
        for _ in range(5):  # the step may move while we look: retry against its new status
            previous = step["status"]
            if previous not in ACTIVE_STEP_STATUSES:
                return
            updated = self.runs.update(
                step_key(run_id, step["step_id"]),
                set_values={
                    "status": StepStatus.CANCELED.value,
                    "finished_ms": now,
                    "error": {"type": "canceled", "message": "The run was canceled."},
                },
                condition="#status = :previous",
                condition_values={":previous": previous},
            )
            if updated is not None:
                break
            step = self.runs.get_step(run_id, step["step_id"]) or step
        else:
            return
        # Wake whatever waits for this step; its iteration then records "canceled" and ends.
        if previous == StepStatus.PENDING and updated.get("wake_token"):
            self.sfn.fail(updated["wake_token"], CANCELED, "the run was canceled")
        elif previous == StepStatus.WAITING and updated.get("gate_token"):
            self.sfn.fail(updated["gate_token"], CANCELED, "the run was canceled")
        elif previous == StepStatus.RUNNING and updated.get("job_id"):
            # The job's end answers the step's token (a job-end subscriber); a job that already ended did so.
            self.lifecycle.cancel(updated["job_id"])


@cached
def get_workflows_service() -> WorkflowsService:
    return WorkflowsService(get_settings(), get_jobs_service(), get_job_lifecycle())
