"""A workflow run and its steps as stored (pure: typed records and their item shapes, no I/O).

A run item carries the run's inputs and outcome; each step has its own item, which both the gateway and
the state machine write: the state machine stores `wake_token` (a step parked until its dependencies
finish); a gate's task (`wait_gate`) stores `gate_token`, `status` waiting and `waiting_since`.

What a decision owes the state machine is written by the decision itself, and done later, at least once
(services/workflow_followups.py): a `TokenAnswer` per token (`wake_answer`, `gate_answer`: the answer
decided, and when it was sent), `followups_due` on a recorded step whose dependents are not all woken or
skipped yet, `cancel_due` on a canceled run whose steps are not all canceled yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from switchyard.workflows.model import RunStatus, StepKind, StepSpec, StepStatus


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


WAKE = "wake"  # the token of a step parked until its dependencies finish
GATE = "gate"  # the token of a gate waiting for its decision
SLOTS = (WAKE, GATE)


@dataclass(frozen=True)
class TokenAnswer:
    """The answer decided for one of a step's task tokens, and whether it has been sent."""

    succeeded: bool
    output: dict[str, Any] | None = None  # SendTaskSuccess's
    error: str | None = None  # SendTaskFailure's
    cause: str = ""
    decided_ms: int = 0
    answered_ms: int | None = None

    @classmethod
    def success(cls, output: dict[str, Any], decided_ms: int) -> TokenAnswer:
        return cls(True, output=output, decided_ms=decided_ms)

    @classmethod
    def failure(cls, error: str, cause: str, decided_ms: int) -> TokenAnswer:
        return cls(False, error=error, cause=cause, decided_ms=decided_ms)

    @property
    def answered(self) -> bool:
        return self.answered_ms is not None

    @classmethod
    def from_item(cls, value: Any) -> TokenAnswer | None:
        if not isinstance(value, dict):
            return None
        return cls(
            succeeded=bool(value.get("succeeded")),
            output=value.get("output"),
            error=value.get("error"),
            cause=str(value.get("cause") or ""),
            decided_ms=int(value.get("decided_ms") or 0),
            answered_ms=_int(value.get("answered_ms")),
        )

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "succeeded": self.succeeded,
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
            "decided_ms": self.decided_ms,
            "answered_ms": self.answered_ms,
        }
        return {k: v for k, v in item.items() if v is not None}


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
    cancel_due: bool = False  # canceled, and not every step of it canceled yet
    expires_at: int | None = None  # epoch seconds (the table's TTL)
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
            cancel_due=bool(item.get("cancel_due")),
            expires_at=_int(item.get("expires_at")),
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
            "expires_at": self.expires_at,
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
    done_deps: frozenset[str] = frozenset()  # dependencies whose success was counted (once each)
    followups_due: bool = False  # recorded, and not every dependent woken or skipped yet
    wake_answer: TokenAnswer | None = None
    gate_answer: TokenAnswer | None = None
    expires_at: int | None = None  # epoch seconds (the table's TTL)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.body_json or "{}")
        return body

    @property
    def is_gate(self) -> bool:
        return self.kind == StepKind.GATE

    def answer(self, slot: str) -> TokenAnswer | None:
        return self.wake_answer if slot == WAKE else self.gate_answer

    def token(self, slot: str) -> str | None:
        return self.wake_token if slot == WAKE else self.gate_token

    @property
    def owes_answers(self) -> bool:
        return any(a is not None and not a.answered for a in (self.wake_answer, self.gate_answer))

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
            "waiting_since", "done_deps", "followups_due", "wake_answer", "gate_answer", "expires_at",
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
            done_deps=frozenset(item.get("done_deps") or ()),
            followups_due=bool(item.get("followups_due")),
            wake_answer=TokenAnswer.from_item(item.get("wake_answer")),
            gate_answer=TokenAnswer.from_item(item.get("gate_answer")),
            expires_at=_int(item.get("expires_at")),
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
            "expires_at": self.expires_at,
            **self.extra,
        }
        return {k: v for k, v in item.items() if v is not None}
