"""The documented shapes of the API: what every answer holds, and the bodies the routes parse themselves.

These models are the OpenAPI document's `components.schemas` (through `openapi_docs`); no route builds its
answer from them, so each must say exactly what the code that does build it (`Job.envelope`,
`Batch.public`, `workflows.views`, ...) returns. The schemathesis run (tests/e2e/test_e2e_fuzz.py) checks
every answer it gets against them. Answers may gain fields (`extra="allow"`: clients ignore what they do
not know); request bodies the API refuses unknown fields of say so (`extra="forbid"`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from switchyard.batch_model import BatchStatus
from switchyard.catalog import ServiceType
from switchyard.job_model import JobStatus
from switchyard.workflows.model import (
    MAX_PROMPT_CHARS,
    MAX_STEPS,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    RunStatus,
    StepKind,
    StepStatus,
)
from switchyard.workflows.references import INPUT_NAME, STEP_ID

# Ids are a prefix and 22 hex digits (switchyard.ids.new_id): 12 of creation time, 10 random.
ID_SUFFIX = r"[0-9a-f]{22}"


def id_pattern(prefix: str) -> str:
    return rf"^{prefix}{ID_SUFFIX}$"


JOB_ID = id_pattern("job_")
BATCH_ID = id_pattern("batch_")
RUN_ID = id_pattern("run_")
WEBHOOK_ID = id_pattern("wh_")
DELIVERY_ID = id_pattern("msg_")
KEY_ID = id_pattern("key_")
STEP_ID_PATTERN = STEP_ID.pattern
Time = Annotated[
    str,
    Field(description="UTC, whole seconds: 2026-06-13T12:00:00Z", json_schema_extra={"format": "date-time"}),
]
InferenceType = Literal["LLM", "IMAGE", "TTS", "MUSIC", "VIDEO", "MESH", "STT", "VOICE", "EMBEDDING"]


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


# ------------------------------------------------------------------ errors
class ErrorObject(Answer):
    message: str
    type: str = Field(
        description="invalid_request, too_large, not_found, no_provider, conflict, rate_limit_exceeded, "
        "upstream_error, async_disabled, ... (a provider's own type when its refusal is passed on)"
    )
    param: str | None = None
    code: str | int | None = None


class ErrorEnvelope(Answer):
    """OpenAI's error envelope."""

    error: ErrorObject


class DetailError(Answer):
    """Authentication failures, malformed JSON, unsupported media types, unknown routes and methods."""

    detail: str


# ------------------------------------------------------------------ inference
class ChatCompletion(Answer):
    """The provider's OpenAI-format answer, passed through (only what every such answer has is listed)."""

    object: str | None = None
    choices: list[dict[str, Any]]


class ImagesAnswer(Answer):
    data: list[dict[str, Any]]


class ModelEntry(Answer):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    service_type: ServiceType
    input_modalities: list[str]
    output_modalities: list[str]
    supported_features: list[str]


class ModelList(Answer):
    object: Literal["list"]
    data: list[ModelEntry]


# ------------------------------------------------------------------ jobs
class JobError(Answer):
    type: str
    message: str


class Job(Answer):
    """The `inference.job` object (202 on submission, GET /v1/jobs/{job_id})."""

    id: Annotated[str, Field(pattern=JOB_ID)]
    object: Literal["inference.job"]
    status: JobStatus
    inference_type: InferenceType
    model: str
    created: int
    queued_at: Time | None = None
    started_at: Time | None = None
    finished_at: Time | None = None
    attempts: int
    batch_id: Annotated[str, Field(pattern=BATCH_ID)] | None = None
    workflow_run_id: Annotated[str, Field(pattern=RUN_ID)] | None = None
    workflow_step_id: str | None = None
    result: Any = Field(default=None, description="A finished LLM job's answer (the provider's JSON).")
    result_url: str | None = Field(default=None, description="A finished media job's stored asset.")
    error: JobError | None = None


class ListPage(Answer):
    object: Literal["list"]
    has_more: bool
    first_id: str | None
    last_id: str | None


class JobList(ListPage):
    data: list[Job]


class JobCancel(Answer):
    id: Annotated[str, Field(pattern=JOB_ID)]
    status: JobStatus
    canceled: bool
    detail: str | None = None


class QueueSummary(Answer):
    object: Literal["queue.summary"]
    async_enabled: bool
    worker_stalled: bool
    active: int
    queued: int
    processing: int
    dispatcher_last_tick_at: Time | None
    sweeper_last_tick_at: Time | None


# ------------------------------------------------------------------ providers
class HeartbeatAnswer(Answer):
    provider_id: str
    status: Literal["online"]
    models: list[str]
    offline_after_seconds: int
    heartbeat_interval_seconds: int


# ------------------------------------------------------------------ batches
class BatchJob(Answer):
    id: Annotated[str, Field(pattern=JOB_ID)]
    status: JobStatus
    inference_type: InferenceType


class Batch(Answer):
    id: Annotated[str, Field(pattern=BATCH_ID)]
    object: Literal["batch"]
    label: str | None
    status: BatchStatus
    total: int
    queued: int
    processing: int
    processed: int
    failed: int
    canceled: int
    created: int
    jobs: list[BatchJob] | None = Field(default=None, description="Every job, in submission order.")


class BatchList(ListPage):
    data: list[Batch]


# ------------------------------------------------------------------ workflows
class Edge(Answer):
    from_: str = Field(alias="from")
    to: str


class TemplateInput(Answer):
    name: str
    description: str
    required: bool
    default: Any = None


class WorkflowTemplate(Answer):
    id: str
    object: Literal["workflow.template"]
    name: str
    description: str
    inputs: list[TemplateInput]
    steps: list[dict[str, Any]]
    edges: list[Edge]


class WorkflowTemplateList(Answer):
    object: Literal["list"]
    data: list[WorkflowTemplate]


class Gate(Answer):
    prompt: str | None
    timeout_seconds: int | None
    waiting_since: Time | None
    expires_at: Time | None
    resolution: dict[str, Any] | None


class StepView(Answer):
    id: str
    type: StepKind
    description: str | None = None
    endpoint: str | None = None
    status: StepStatus
    depends_on: list[str]
    started_at: Time | None
    finished_at: Time | None
    duration_ms: int | None
    job_id: Annotated[str, Field(pattern=JOB_ID)] | None = None
    job_status: JobStatus | None = None
    output: Any = None
    result_url: str | None = None
    error: dict[str, Any] | None
    gate: Gate | None = None


class RunSummary(Answer):
    id: Annotated[str, Field(pattern=RUN_ID)]
    object: Literal["workflow.run"]
    status: RunStatus
    template: str | None
    created_at: Time | None
    finished_at: Time | None
    step_count: int
    error: dict[str, Any] | None


class Run(RunSummary):
    inputs: dict[str, Any]
    step_counts: dict[str, int]
    steps: list[StepView]
    edges: list[Edge]


class RunList(ListPage):
    data: list[RunSummary]


class GateDecision(Answer):
    run_id: Annotated[str, Field(pattern=RUN_ID)]
    step: StepView


# ------------------------------------------------------------------ request bodies parsed by their routes
class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GateComment(Request):
    """POST .../approve and .../reject: an optional body."""

    comment: Annotated[str, Field(max_length=MAX_PROMPT_CHARS)] | None = None


StepIdValue = Annotated[str, Field(pattern=STEP_ID.pattern)]


class InferenceStep(Request):
    id: StepIdValue
    type: Literal["inference"] = "inference"
    description: str | None = None
    endpoint: str = Field(description="One of the async-capable inference endpoints.")
    body: dict[str, Any] = Field(
        description="That endpoint's body; string values may hold {{inputs.NAME}} and {{steps.ID...}}."
    )
    depends_on: Annotated[list[StepIdValue], Field(json_schema_extra={"uniqueItems": True})] = []
    timeout_seconds: Annotated[int, Field(ge=MIN_TIMEOUT_SECONDS, le=MAX_TIMEOUT_SECONDS)] | None = None


class GateStep(Request):
    id: StepIdValue
    type: Literal["gate"]
    description: str | None = None
    prompt: Annotated[str, Field(max_length=MAX_PROMPT_CHARS)] | None = None
    depends_on: Annotated[list[StepIdValue], Field(json_schema_extra={"uniqueItems": True})] = []
    timeout_seconds: Annotated[int, Field(ge=MIN_TIMEOUT_SECONDS, le=MAX_TIMEOUT_SECONDS)] | None = None


class SpecInput(Request):
    name: Annotated[str, Field(pattern=INPUT_NAME.pattern)]
    description: str = ""
    required: bool | None = None
    default: Any = None


class WorkflowSpecBody(Request):
    inputs: list[SpecInput] = []
    steps: Annotated[list[InferenceStep | GateStep], Field(min_length=1, max_length=MAX_STEPS)]
