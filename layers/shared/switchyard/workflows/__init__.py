"""Workflows: DAGs of inference steps and approval gates (pure: no I/O, no AWS).

A spec is `{"inputs": [...optional declarations], "steps": [...]}`. A step is either

- an inference step: `{"id", "endpoint", "body", "depends_on": [...], "timeout_seconds"?}`, run as an
  ordinary async job of `endpoint` (only async-capable JSON endpoints of `switchyard.catalog`), or
- a gate: `{"id", "type": "gate", "depends_on": [...], "timeout_seconds"?, "prompt"?}`, which waits for
  `POST .../steps/<id>/approve` or `/reject`.

String values anywhere inside a body may hold references (see `references`):
`{{inputs.NAME}}`, `{{steps.ID.output.PATH}}`, `{{steps.ID.result_url}}`, `{{steps.ID.job_id}}`.
"""

from switchyard.workflows.model import (
    MAX_STEPS,
    RunStatus,
    StepKind,
    StepSpec,
    StepStatus,
    WorkflowSpec,
)

__all__ = ["MAX_STEPS", "RunStatus", "StepKind", "StepSpec", "StepStatus", "WorkflowSpec"]
