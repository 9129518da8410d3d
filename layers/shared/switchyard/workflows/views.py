"""A run and its steps as callers read them (pure: the records and what their jobs expose, in)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from switchyard.clock import iso, ms_from_iso
from switchyard.workflows.model import StepKind
from switchyard.workflows.outputs import gate_output, is_llm_endpoint
from switchyard.workflows.records import Run, Step


def run_summary(run: Run) -> dict[str, Any]:
    """The run as listed (GET /v1/workflows/runs)."""
    return {
        "id": run.run_id,
        "object": "workflow.run",
        "status": run.status.value,
        "template": run.template,
        "created_at": iso(run.created_ms),
        "finished_at": iso(run.finished_ms),
        "step_count": run.step_count,
        "error": run.error,
    }


def run_view(run: Run, steps: list[Step], step_views: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole run (GET /v1/workflows/runs/<id>): its summary, inputs, steps and the DAG's edges."""
    return {
        **run_summary(run),
        "inputs": run.inputs,
        "step_counts": dict(Counter(view["status"] for view in step_views)),
        "steps": step_views,
        "edges": [{"from": dep, "to": step.step_id} for step in steps for dep in step.depends_on],
    }


def step_view(step: Step, job_status: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """One step: `job_status` is its job's status (None without a job); `values` what it exposes
    (`outputs.step_values`, for a SUCCEEDED step; empty otherwise)."""
    # A gate starts when the state machine parks it (waiting_since); an inference step when it runs.
    started_ms = step.started_ms or ms_from_iso(step.waiting_since)
    finished_ms = step.finished_ms
    inference = step.kind == StepKind.INFERENCE
    out: dict[str, Any] = {"id": step.step_id, "type": step.kind.value}
    if step.description:
        out["description"] = step.description
    if inference:
        out["endpoint"] = step.endpoint
    out.update(
        status=step.status.value,
        depends_on=list(step.depends_on),
        started_at=iso(started_ms),
        finished_at=iso(finished_ms),
        duration_ms=finished_ms - started_ms if started_ms and finished_ms else None,
    )
    if inference:
        out["job_id"] = step.job_id
        out["job_status"] = job_status
    out["output"] = values.get("output")
    if inference and not is_llm_endpoint(step.endpoint):
        out["result_url"] = values.get("result_url")
    out["error"] = step.error
    if step.is_gate:
        waiting_ms = ms_from_iso(step.waiting_since)
        timeout = step.timeout_seconds
        out["gate"] = {
            "prompt": step.prompt,
            "timeout_seconds": timeout,
            "waiting_since": iso(waiting_ms),
            "expires_at": iso(waiting_ms + timeout * 1000) if waiting_ms and timeout else None,
            "resolution": gate_output(step.resolution),
        }
    return out
