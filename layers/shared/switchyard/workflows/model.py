"""The validated shape of a workflow spec, and the states of runs and steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# One inline Map runs every step of a run at once; AWS caps inline Map concurrency at 40, and a parked
# step holds its slot, so 40 steps is the most a run can have without ready steps queueing behind
# parked ones (see notes/workflow-dag-on-step-functions.md).
MAX_STEPS = 40
MAX_INPUTS = 50
MAX_SPEC_BYTES = 200_000  # the spec lives on DynamoDB items (400 KB each)
MAX_PROMPT_CHARS = 2_000
MIN_TIMEOUT_SECONDS = 1
# Standard workflows run for at most a year; a month is plenty for one step or gate.
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600


class StepKind(StrEnum):
    INFERENCE = "inference"
    GATE = "gate"


class StepStatus(StrEnum):
    PENDING = "pending"  # waiting for its dependencies
    WAITING = "waiting"  # a gate waiting for approve/reject
    RUNNING = "running"  # its job is queued or processing
    SUCCEEDED = "succeeded"  # job PROCESSED, or gate approved
    FAILED = "failed"  # job FAILED (or its body could not be built)
    REJECTED = "rejected"  # gate rejected
    SKIPPED = "skipped"  # an upstream step did not succeed
    CANCELED = "canceled"  # the run was canceled, or the step's job was canceled
    TIMED_OUT = "timed_out"  # no decision / no result within timeout_seconds


ACTIVE_STEP_STATUSES = (StepStatus.PENDING, StepStatus.WAITING, StepStatus.RUNNING)
FINAL_STEP_STATUSES = tuple(s for s in StepStatus if s not in ACTIVE_STEP_STATUSES)


class RunStatus(StrEnum):
    RUNNING = "RUNNING"  # some step is not final yet
    SUCCEEDED = "SUCCEEDED"  # every step succeeded
    FAILED = "FAILED"  # a step failed, timed out or had its job canceled (its dependents were skipped)
    REJECTED = "REJECTED"  # a gate was rejected (its dependents were skipped) and nothing failed
    CANCELED = "CANCELED"  # canceled through POST /v1/workflows/runs/<id>/cancel


@dataclass(frozen=True)
class InputSpec:
    name: str
    description: str = ""
    required: bool = True
    default: Any = None

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "description": self.description, "required": self.required}
        if not self.required:
            out["default"] = self.default
        return out


@dataclass(frozen=True)
class StepSpec:
    id: str
    kind: StepKind
    depends_on: tuple[str, ...] = ()
    endpoint: str | None = None
    body: dict[str, Any] | None = None
    timeout_seconds: int | None = None
    prompt: str | None = None
    description: str | None = None

    def public(self) -> dict[str, Any]:
        """The step as a client wrote it (the shape templates are listed in)."""
        out: dict[str, Any] = {"id": self.id, "type": self.kind.value}
        if self.description:
            out["description"] = self.description
        if self.kind == StepKind.INFERENCE:
            out["endpoint"] = self.endpoint
            out["body"] = self.body
        elif self.prompt:
            out["prompt"] = self.prompt
        out["depends_on"] = list(self.depends_on)
        if self.timeout_seconds is not None:
            out["timeout_seconds"] = self.timeout_seconds
        return out


@dataclass(frozen=True)
class WorkflowSpec:
    """Steps in topological order (every step after all of its dependencies)."""

    steps: tuple[StepSpec, ...]
    inputs: tuple[InputSpec, ...] = ()
    dependents: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def step(self, step_id: str) -> StepSpec:
        return next(s for s in self.steps if s.id == step_id)

    @property
    def edges(self) -> list[dict[str, str]]:
        return [{"from": dep, "to": step.id} for step in self.steps for dep in step.depends_on]

    def public(self) -> dict[str, Any]:
        return {
            "inputs": [i.public() for i in self.inputs],
            "steps": [s.public() for s in self.steps],
            "edges": self.edges,
        }
