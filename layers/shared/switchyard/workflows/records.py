"""A workflow run and its steps as stored (pure: typed records and their item shapes, no I/O).

A run item carries the run's inputs and outcome; each step has its own item, which both the gateway and
the state machine write: the state machine stores `wake_token` (a step parked until its dependencies
finish); a gate's task (`wait_gate`) stores `gate_token`, `status` waiting and `waiting_since`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from switchyard.workflows.model import RunStatus, StepKind, StepSpec, StepStatus


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


@dataclass
class Run:
    run_id: str
    account_id: str
    status: RunStatus
    created_ms: int
    inputs_json: str = "{}"  # the bound input values, as JSON text
    base_url: str | None = None  # where the caller reached the gateway (result URLs of media steps)
    step_count: int = 0
    template: str | None = None
    execution_arn: str | None = None
    finished_ms: int | None = None
    error: dict[str, Any] | None = None
    webhook_id: str | None = None  # metadata.webhook_id: hears workflow.run.completed and gate waits

    @property
    def inputs(self) -> dict[str, Any]:
        inputs: dict[str, Any] = json.loads(self.inputs_json or "{}")
        return inputs

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Run:
        return cls(
            run_id=item["run_id"],
            account_id=item["account_id"],
            status=RunStatus(item["status"]),
            created_ms=int(item["created_ms"]),
            inputs_json=item.get("inputs") or "{}",
            base_url=item.get("base_url"),
            step_count=int(item.get("step_count", 0)),
            template=item.get("template"),
            execution_arn=item.get("execution_arn"),
            finished_ms=_int(item.get("finished_ms")),
            error=item.get("error"),
            webhook_id=item.get("webhook_id"),
        )

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "run_id": self.run_id,
            "account_id": self.account_id,
            "status": self.status.value,
            "created_ms": self.created_ms,
            "inputs": self.inputs_json,
            "base_url": self.base_url,
            "step_count": self.step_count,
            "template": self.template,
            "execution_arn": self.execution_arn,
            "finished_ms": self.finished_ms,
            "error": self.error,
            "webhook_id": self.webhook_id,
        }
        return {k: v for k, v in item.items() if v is not None}


@dataclass
class Step:
    run_id: str
    step_id: str
    index: int  # its place in the spec's topological order
    kind: StepKind
    status: StepStatus
    timeout_seconds: int
    depends_on: tuple[str, ...] = ()
    dependents: tuple[str, ...] = ()
    pending_count: int = 0  # dependencies not yet succeeded
    endpoint: str | None = None  # an inference step's
    body_json: str | None = None  # an inference step's body, references unresolved, as JSON text
    prompt: str | None = None  # a gate's
    description: str | None = None
    job_id: str | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    error: dict[str, Any] | None = None
    recorded: bool = False  # its outcome was recorded (and its dependents woken or skipped), once
    resolution: dict[str, Any] | None = None  # a gate's decision: decision, by, at_ms, comment
    wake_token: str | None = None  # written by the state machine
    gate_token: str | None = None  # written by the gate's task (wait_gate)
    waiting_since: str | None = None  # written by the gate's task (ISO 8601, UTC, milliseconds)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.body_json or "{}")
        return body

    @property
    def is_gate(self) -> bool:
        return self.kind == StepKind.GATE

    @classmethod
    def from_spec(
        cls, run_id: str, index: int, spec: StepSpec, dependents: tuple[str, ...], timeout_seconds: int
    ) -> Step:
        return cls(
            run_id=run_id,
            step_id=spec.id,
            index=index,
            kind=spec.kind,
            status=StepStatus.PENDING,
            timeout_seconds=timeout_seconds,
            depends_on=tuple(spec.depends_on),
            dependents=dependents,
            pending_count=len(spec.depends_on),
            endpoint=spec.endpoint,
            body_json=json.dumps(spec.body, separators=(",", ":")) if spec.endpoint else None,
            prompt=spec.prompt or None,
            description=spec.description or None,
        )

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Step:
        known = {
            "run_id", "sk", "step_id", "index", "type", "status", "timeout_seconds", "depends_on",
            "dependents", "pending_count", "endpoint", "body", "prompt", "description", "job_id",
            "started_ms", "finished_ms", "error", "recorded", "resolution", "wake_token", "gate_token",
            "waiting_since",
        }  # fmt: skip
        return cls(
            run_id=item["run_id"],
            step_id=item["step_id"],
            index=int(item["index"]),
            kind=StepKind(item["type"]),
            status=StepStatus(item["status"]),
            timeout_seconds=int(item.get("timeout_seconds", 0)),
            depends_on=tuple(item.get("depends_on") or ()),
            dependents=tuple(item.get("dependents") or ()),
            pending_count=int(item.get("pending_count", 0)),
            endpoint=item.get("endpoint"),
            body_json=item.get("body"),
            prompt=item.get("prompt"),
            description=item.get("description"),
            job_id=item.get("job_id"),
            started_ms=_int(item.get("started_ms")),
            finished_ms=_int(item.get("finished_ms")),
            error=item.get("error"),
            recorded=bool(item.get("recorded")),
            resolution=item.get("resolution"),
            wake_token=item.get("wake_token"),
            gate_token=item.get("gate_token"),
            waiting_since=item.get("waiting_since"),
            extra={k: v for k, v in item.items() if k not in known},
        )

    def to_item(self) -> dict[str, Any]:
        """The item as the gateway first writes it (the state machine adds its tokens later)."""
        item: dict[str, Any] = {
            "run_id": self.run_id,
            "step_id": self.step_id,
            "index": self.index,
            "type": self.kind.value,
            "status": self.status.value,
            "depends_on": list(self.depends_on),
            "dependents": list(self.dependents),
            "pending_count": self.pending_count,
            "timeout_seconds": self.timeout_seconds,
            "endpoint": self.endpoint,
            "body": self.body_json,
            "prompt": self.prompt,
            "description": self.description,
            "job_id": self.job_id,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "error": self.error,
            "recorded": self.recorded or None,
            "resolution": self.resolution,
            **self.extra,
        }
        return {k: v for k, v in item.items() if v is not None}
