"""The gateway's CloudWatch metrics: every name, unit and dimension in one place, each emitted by one function.

Metrics are Powertools' Embedded Metric Format: each `record_*` call prints one EMF document (a JSON
line on stdout, which CloudWatch Logs turns into metrics). No PutMetricData call sits on any request
path, and nothing is buffered: a document is complete when printed, so a function that dies later
loses nothing it already recorded, and threads (the dispatcher's records, the local stack's functions)
never share a metric set.

Dimensions are a small fixed vocabulary (`Dimension`), each with a bounded set of values. Account ids,
model names, job ids and provider ids are never dimensions: their cardinality is unbounded, and every
distinct combination is a billed custom metric. Per-account figures go into structured log lines
instead (`services/job_telemetry.py`), which the template's saved Logs Insights queries rank.

`METRICS` declares every metric: its unit, its dimensions and the `record_*` function that emits it.
The infra tests compare it with template.yaml (every metric a dashboard widget or an alarm uses is
declared here, with exactly these dimensions) and with the code (every declaring function is called
somewhere; the unit tests check each emits exactly what it declares).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

logger = logging.getLogger(__name__)

NAMESPACE_VARIABLE = "POWERTOOLS_METRICS_NAMESPACE"


class Dimension(StrEnum):
    ROUTE_GROUP = "RouteGroup"
    INFERENCE_TYPE = "InferenceType"
    CALL_PATH = "CallPath"
    OUTCOME = "Outcome"


class RouteGroup(StrEnum):
    """What an HTTP request was for (api/route_groups.py classifies paths)."""

    SYNC_INFERENCE = "sync_inference"
    ASYNC_SUBMIT = "async_submit"
    JOBS = "jobs"
    BATCHES = "batches"
    WORKFLOWS = "workflows"
    HEARTBEATS = "heartbeats"
    WEBHOOKS = "webhooks"
    DASHBOARD = "dashboard"  # the dashboard's pages and the account and provider views it reads
    MODELS = "models"
    OTHER = "other"


class CallPath(StrEnum):
    SYNC = "sync"  # a caller waits on the HTTP API (or the stream)
    ASYNC = "async"  # the dispatcher runs a queued job


class ProviderOutcome(StrEnum):
    OK = "ok"
    REJECTED = "rejected"  # the provider answered 4xx
    ERROR = "error"  # 5xx, refused or dropped connection
    TIMEOUT = "timeout"


# Outcome values per metric that has an Outcome dimension (the dashboard and alarms may only use these).
DISPATCH_OUTCOMES = (
    "processed",
    "failed",
    "not_stored",  # the provider answered, the result could not be stored: FAILED result_not_stored
    "retrying",
    "waiting_for_capacity",
    "waiting_for_provider",
    "no_provider",
    "stale",
    "canceled",
)
RUN_OUTCOMES = ("succeeded", "failed", "rejected", "canceled")
GATE_DECISIONS = ("approved", "rejected")
WEBHOOK_OUTCOMES = ("succeeded", "retrying", "failed", "disabled")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: MetricUnit
    recorded_by: str  # the function of this module that emits it
    dimensions: tuple[Dimension, ...] = ()
    outcomes: tuple[str, ...] = field(default=())  # the values of its Outcome dimension, if it has one
    meaning: str = ""


_COUNT, _MS, _SECONDS = MetricUnit.Count, MetricUnit.Milliseconds, MetricUnit.Seconds
_RG, _IT, _CP, _OUT = Dimension.ROUTE_GROUP, Dimension.INFERENCE_TYPE, Dimension.CALL_PATH, Dimension.OUTCOME

METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        # -- HTTP requests (ApiFunction and StreamFunction: the same handler)
        MetricSpec("Requests", _COUNT, "record_request", (_RG,), meaning="HTTP requests answered"),
        MetricSpec("ClientErrors", _COUNT, "record_request", (_RG,), meaning="answers with a 4xx status"),
        MetricSpec("ServerErrors", _COUNT, "record_request", (_RG,), meaning="answers with a 5xx status"),
        MetricSpec("SyncLatency", _MS, "record_request", meaning="a synchronous inference call, end to end"),
        MetricSpec(
            "SyncGatewayLatency",
            _MS,
            "record_request",
            meaning="the gateway's own share of SyncLatency (everything but the provider call)",
        ),
        # -- provider calls (both paths)
        MetricSpec("ProviderCalls", _COUNT, "record_provider_call", (_CP,)),
        MetricSpec("ProviderErrors", _COUNT, "record_provider_call", (_CP,), meaning="5xx or unreachable"),
        MetricSpec("ProviderTimeouts", _COUNT, "record_provider_call", (_CP,)),
        MetricSpec("ProviderRejections", _COUNT, "record_provider_call", (_CP,), meaning="4xx answers"),
        MetricSpec("ProviderLatency", _MS, "record_provider_call", (_CP,)),
        # -- async jobs
        MetricSpec("JobsSubmitted", _COUNT, "record_jobs_submitted", (_IT,)),
        MetricSpec("JobsProcessed", _COUNT, "record_job_ended", (_IT,)),
        MetricSpec("JobsFailed", _COUNT, "record_job_ended", (_IT,)),
        MetricSpec("JobsCanceled", _COUNT, "record_job_ended", (_IT,)),
        MetricSpec("JobDuration", _MS, "record_job_ended", meaning="created -> ended"),
        MetricSpec("DispatchLatency", _MS, "record_dispatch_latency", meaning="queued -> provider call"),
        MetricSpec("DispatchOutcomes", _COUNT, "record_dispatch", (_OUT,), DISPATCH_OUTCOMES),
        MetricSpec(
            "DispatchErrors", _COUNT, "record_dispatch_error", meaning="a record the dispatcher raised on"
        ),
        # -- the sweeper's census, once per sweep
        MetricSpec("JobsQueued", _COUNT, "record_sweep"),
        MetricSpec("JobsRunning", _COUNT, "record_sweep"),
        MetricSpec("OldestQueuedJobAge", _SECONDS, "record_sweep"),
        MetricSpec("DispatcherTickAge", _SECONDS, "record_sweep", meaning="since the dispatcher last ran"),
        MetricSpec("WorkerStalled", _COUNT, "record_sweep", meaning="1: jobs queued, dispatcher silent"),
        MetricSpec("ProvidersOnline", _COUNT, "record_sweep"),
        MetricSpec("JobsRecovered", _COUNT, "record_sweep", meaning="re-queued or failed by the sweeper"),
        MetricSpec("WorkflowGatesWaiting", _COUNT, "record_sweep"),
        MetricSpec("SweepsCompleted", _COUNT, "record_sweep"),
        # -- workflows
        MetricSpec("WorkflowRunsStarted", _COUNT, "record_workflow_run_started"),
        MetricSpec("WorkflowRunsFinished", _COUNT, "record_workflow_run_finished", (_OUT,), RUN_OUTCOMES),
        MetricSpec("WorkflowGateDecisions", _COUNT, "record_workflow_gate_decision", (_OUT,), GATE_DECISIONS),
        # -- webhooks (the delivery function)
        MetricSpec("WebhookDeliveries", _COUNT, "record_webhook_delivery", (_OUT,), WEBHOOK_OUTCOMES),
        MetricSpec("WebhookDeliveriesPending", _COUNT, "record_webhook_backlog"),
    )
}


def dimension_values(spec: MetricSpec) -> dict[Dimension, frozenset[str]]:
    """Every value each dimension of the metric is ever emitted with (what a widget may select)."""
    from switchyard.catalog import ENDPOINTS

    vocabulary = {
        Dimension.ROUTE_GROUP: frozenset(RouteGroup),
        Dimension.CALL_PATH: frozenset(CallPath),
        Dimension.INFERENCE_TYPE: frozenset(e.inference_type for e in ENDPOINTS.values()),
        Dimension.OUTCOME: frozenset(spec.outcomes),
    }
    return {dimension: vocabulary[dimension] for dimension in spec.dimensions}


def namespace() -> str | None:
    return os.environ.get(NAMESPACE_VARIABLE)


Group = tuple[Mapping[str, float], Mapping[Dimension, str]]  # metric values, and their dimensions

_serializers = threading.local()


def _serializer() -> AmazonCloudWatchEMFProvider:
    """This thread's Powertools EMF serializer (building one costs more than a document)."""
    serializer: AmazonCloudWatchEMFProvider | None = getattr(_serializers, "serializer", None)
    if serializer is None:
        # service="": no implicit `service` dimension; every dimension is the one its MetricSpec names.
        serializer = _serializers.serializer = AmazonCloudWatchEMFProvider(service="")
    return serializer


def _emit(*groups: Group) -> None:
    """One EMF document (one line), one metric directive per group. Never raises: a metric must not fail
    the request or job it describes.

    Groups share the document's root, so they must not repeat a metric or give one dimension two values;
    a group that would is printed as a document of its own. Units come from METRICS (the unit tests check
    every name), so values go to Powertools' serializer directly, past its per-metric validation: a sync
    request (10 metrics in 3 groups) cost 560 us as three documents built metric by metric, 100-150 us
    as this one (benchmarks/metrics_overhead.py).
    """
    if is_metrics_disabled():
        return
    names = sorted(name for values, _ in groups for name in values)
    into = namespace()
    if not into:
        logger.warning("could not emit metrics %s: %s is not set", names, NAMESPACE_VARIABLE)
        return
    try:
        serializer = _serializer()
        serializer.namespace = into
        documents: list[dict[str, Any]] = []
        for values, dimensions in groups:
            metric_set = {
                name: {"Unit": METRICS[name].unit.value, "StorageResolution": 60, "Value": [float(value)]}
                for name, value in values.items()
            }
            part: dict[str, Any] = dict(
                serializer.serialize_metric_set(
                    metrics=metric_set,
                    dimensions={dimension.value: value for dimension, value in dimensions.items()},
                    metadata={},
                )
            )
            target = next((d for d in documents if _mergeable(d, part)), None)
            if target is None:
                documents.append(part)
            else:
                target["_aws"]["CloudWatchMetrics"].extend(part["_aws"]["CloudWatchMetrics"])
                target.update((key, value) for key, value in part.items() if key != "_aws")
        for document in documents:
            print(json.dumps(document, separators=(",", ":")))
    except Exception:  # see the docstring; the warning says what was lost
        logger.warning("could not emit metrics %s", names, exc_info=True)


def _mergeable(document: dict[str, Any], part: dict[str, Any]) -> bool:
    return all(key == "_aws" or document.get(key, value) == value for key, value in part.items()) and not any(
        metric in document for metric in part if metric != "_aws" and metric in METRICS
    )


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


# ------------------------------------------------------------------ HTTP requests


@dataclass
class _Request:
    route_group: RouteGroup
    provider_ms: float = 0.0
    pending: list[Group] = field(default_factory=list)  # emitted with the request's own, in one document


_request: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("switchyard_request", default=None)


@contextmanager
def measured_request(route_group: RouteGroup) -> Iterator[None]:
    """Around one HTTP request: the routes may refine its group (`note_route_group`) and the provider
    call adds its time, so `record_request` can tell the gateway's share from the provider's."""
    token = _request.set(_Request(route_group))
    try:
        yield
    finally:
        _request.reset(token)


def note_route_group(route_group: RouteGroup) -> None:
    """The route knows better than the path (an inference path with "async": true is a submission)."""
    current = _request.get()
    if current is not None:
        current.route_group = route_group


def current_route_group() -> RouteGroup | None:
    current = _request.get()
    return current.route_group if current is not None else None


def record_request(status: int, elapsed_ms: float) -> None:
    """One answered request of the current `measured_request`, with what it measured on the way (its
    provider call), as one EMF document."""
    current = _request.get()
    if current is None:
        return
    groups: list[Group] = [_request_group(current.route_group, status)]
    if current.route_group == RouteGroup.SYNC_INFERENCE and current.provider_ms:
        gateway_ms = max(0.0, elapsed_ms - current.provider_ms)
        groups.append(({"SyncLatency": elapsed_ms, "SyncGatewayLatency": gateway_ms}, {}))
    _emit(*groups, *current.pending)
    current.pending.clear()


def record_relayed_stream(status: int, outcome: ProviderOutcome, elapsed_ms: float) -> None:
    """A stream relayed from its provider, once it ended: the request, by the status it started with
    (`sync_inference`), and its provider call (`sync`), as one EMF document. Written after the stream's
    last byte, so that nothing but the relay stands between the provider's first token and the client's."""
    _emit(
        _request_group(RouteGroup.SYNC_INFERENCE, status),
        _provider_call_group(CallPath.SYNC, outcome, elapsed_ms),
    )


def _request_group(route_group: RouteGroup, status: int) -> Group:
    values = {"Requests": 1, "ClientErrors": int(400 <= status < 500), "ServerErrors": int(status >= 500)}
    return values, {Dimension.ROUTE_GROUP: route_group.value}


# ------------------------------------------------------------------ provider calls


class ProviderCallMeasure:
    def __init__(self) -> None:
        self.outcome = ProviderOutcome.OK

    def answered(self, status_code: int) -> None:
        self.outcome = ProviderOutcome.REJECTED if 400 <= status_code < 500 else ProviderOutcome.OK


@contextmanager
def provider_call(path: CallPath) -> Iterator[ProviderCallMeasure]:
    """Time one provider call. An exception is an error, a timeout when httpx timed out underneath
    (adapters/upstream.py raises UpstreamError from httpx's exception); `answered(status)` marks a 4xx."""
    measure = ProviderCallMeasure()
    start = time.perf_counter()
    try:
        yield measure
    except BaseException as error:
        measure.outcome = ProviderOutcome.TIMEOUT if _timed_out(error) else ProviderOutcome.ERROR
        raise
    finally:
        elapsed = _ms_since(start)
        current = _request.get()
        if current is not None and path == CallPath.SYNC:
            current.provider_ms += elapsed
            current.pending.append(_provider_call_group(path, measure.outcome, elapsed))
        else:
            record_provider_call(path, measure.outcome, elapsed)


def _timed_out(error: BaseException) -> bool:
    import httpx  # already imported by whoever made the call

    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, httpx.TimeoutException):
            return True
        cause = cause.__cause__
    return False


def record_provider_call(path: CallPath, outcome: ProviderOutcome, elapsed_ms: float) -> None:
    _emit(_provider_call_group(path, outcome, elapsed_ms))


def _provider_call_group(path: CallPath, outcome: ProviderOutcome, elapsed_ms: float) -> Group:
    values = {
        "ProviderCalls": 1,
        "ProviderErrors": int(outcome == ProviderOutcome.ERROR),
        "ProviderTimeouts": int(outcome == ProviderOutcome.TIMEOUT),
        "ProviderRejections": int(outcome == ProviderOutcome.REJECTED),
        "ProviderLatency": elapsed_ms,
    }
    return values, {Dimension.CALL_PATH: path.value}


# ------------------------------------------------------------------ async jobs


def record_jobs_submitted(inference_types: Iterable[str]) -> None:
    """Jobs stored and queued: one document per inference type, counting its jobs (a batch is many)."""
    for inference_type, count in sorted(Counter(inference_types).items()):
        _emit(({"JobsSubmitted": count}, {Dimension.INFERENCE_TYPE: inference_type}))


_ENDED_METRIC = {"PROCESSED": "JobsProcessed", "FAILED": "JobsFailed", "CANCELED": "JobsCanceled"}


def record_job_ended(status: str, inference_type: str, duration_ms: float | None) -> None:
    """A job's end, as the job-end hook announces it (services/job_telemetry.py subscribes)."""
    name = _ENDED_METRIC.get(status)
    if name is None:
        return
    groups: list[Group] = [({name: 1}, {Dimension.INFERENCE_TYPE: inference_type})]
    if duration_ms is not None:
        groups.append(({"JobDuration": max(0.0, duration_ms)}, {}))
    _emit(*groups)


def record_dispatch_latency(waited_ms: float) -> None:
    """How long a job waited in the queue before the dispatcher called its provider."""
    _emit(({"DispatchLatency": max(0.0, waited_ms)}, {}))


def record_dispatch(outcome: str) -> None:
    """What one job message came to (services/dispatcher.py's Outcome.action, waiting split by reason)."""
    if outcome not in DISPATCH_OUTCOMES:
        logger.warning("unknown dispatch outcome %r not recorded", outcome)
        return
    _emit(({"DispatchOutcomes": 1}, {Dimension.OUTCOME: outcome}))


def record_dispatch_error() -> None:
    """A record the dispatcher raised on (SQS redelivers it; past maxReceiveCount it lands in the DLQ)."""
    _emit(({"DispatchErrors": 1}, {}))


# ------------------------------------------------------------------ the sweeper's census


@dataclass(frozen=True)
class Census:
    """What the sweeper saw in one pass; the gauges behind the stalled / oldest / no-provider alarms."""

    jobs_queued: int
    jobs_running: int
    oldest_queued_age_seconds: float
    dispatcher_tick_age_seconds: float | None  # None: the dispatcher never ran
    worker_stalled: bool
    providers_online: int
    jobs_recovered: int
    workflow_gates_waiting: int | None  # None: not counted this time


def record_sweep(census: Census) -> None:
    values: dict[str, float] = {
        "JobsQueued": census.jobs_queued,
        "JobsRunning": census.jobs_running,
        "OldestQueuedJobAge": round(census.oldest_queued_age_seconds, 1),
        "WorkerStalled": int(census.worker_stalled),
        "ProvidersOnline": census.providers_online,
        "JobsRecovered": census.jobs_recovered,
        "SweepsCompleted": 1,
    }
    if census.dispatcher_tick_age_seconds is not None:
        values["DispatcherTickAge"] = round(census.dispatcher_tick_age_seconds, 1)
    if census.workflow_gates_waiting is not None:
        values["WorkflowGatesWaiting"] = census.workflow_gates_waiting
    _emit((values, {}))


# ------------------------------------------------------------------ workflows


def record_workflow_run_started() -> None:
    _emit(({"WorkflowRunsStarted": 1}, {}))


def record_workflow_run_finished(status: str) -> None:
    """`status` is the run's final RunStatus (SUCCEEDED, FAILED, REJECTED, CANCELED)."""
    outcome = status.lower()
    if outcome in RUN_OUTCOMES:
        _emit(({"WorkflowRunsFinished": 1}, {Dimension.OUTCOME: outcome}))


def record_workflow_gate_decision(approved: bool) -> None:
    _emit(({"WorkflowGateDecisions": 1}, {Dimension.OUTCOME: "approved" if approved else "rejected"}))


# ------------------------------------------------------------------ webhooks


def record_webhook_delivery(outcome: str) -> None:
    """One delivery attempt's outcome, from the webhook delivery function: `succeeded` (2xx), `retrying`
    (failed, another attempt is scheduled), `failed` (failed, the schedule is exhausted), `disabled`
    (410: the endpoint was turned off). Other outcomes (stale or early messages) are not attempts."""
    if outcome in WEBHOOK_OUTCOMES:
        _emit(({"WebhookDeliveries": 1}, {Dimension.OUTCOME: outcome}))


def record_webhook_backlog(pending: int) -> None:
    """Deliveries parked in the webhooks table's wake index (a retry too far off for an SQS delay, or a
    message SQS refused), counted once per sweep; attempts due sooner wait in the delivery queue, whose
    SQS metrics the dashboard shows beside this."""
    _emit(({"WebhookDeliveriesPending": pending}, {}))
