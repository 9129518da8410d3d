"""X-Ray: one trace per request, from the API through SQS to the dispatcher's provider call.

How a job joins the trace of the request that submitted it:
- Lambda (Tracing: Active) starts the request's trace and hands the function its header in
  `_X_AMZN_TRACE_ID` ("Root=...;Parent=...;Sampled=1"). The API reads it without the X-Ray SDK
  (`origin()`), and the job keeps it, with the API Gateway request id, on its item and on every queue
  message sent for it (adapters/jobs_queue.py also sets SQS's AWSTraceHeader system attribute, so the
  console links the dispatcher's own invocation trace to the request's trace).
- For each record, the dispatcher opens a segment in the request's own trace (`job_segment`): same
  trace id, parented to the API function's segment, annotated with the job id and the request id, with
  a subsegment for the provider call. The X-Ray SDK cannot open segments inside Lambda through its
  recorder (the function's segment is a read-only facade), so the segment is built from the SDK's
  models and sent through its UDP emitter to the daemon Lambda runs, the way the SDK sends its own.
- The dispatcher's invocation itself is traced by Powertools' Tracer (functions/dispatcher/app.py),
  with the same annotations, so `annotation.job_id = "job_..."` finds both traces.

The sync hot path never imports aws_xray_sdk (~0.3 s of cold start): the API only reads an environment
variable; the SDK is imported by the dispatcher, and here only when a segment is actually recorded.
"""

from __future__ import annotations

import contextvars
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

TRACE_HEADER_VARIABLE = "_X_AMZN_TRACE_ID"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "switchyard_request_id", default=None
)
_segment: contextvars.ContextVar[Any] = contextvars.ContextVar("switchyard_job_segment", default=None)
_emitter: Any = None  # tests install a recording emitter; None: the SDK's UDP emitter, built on first use


@dataclass(frozen=True)
class Origin:
    """Where a job came from: the request that submitted it, and that request's trace."""

    request_id: str | None
    trace_header: str | None


@contextmanager
def request_scope(request_id: str | None) -> Iterator[None]:
    """Around one HTTP request: jobs it submits remember its request id."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def origin() -> Origin:
    header = os.environ.get(TRACE_HEADER_VARIABLE) or None
    return Origin(request_id=_request_id.get(), trace_header=header)


def enabled() -> bool:
    """Segments are sent on Lambda (where the X-Ray daemon listens), unless Powertools' switch is off."""
    if _emitter is not None:
        return True
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("1", "true", "yes", "on"):
        return False
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not os.environ.get("AWS_SAM_LOCAL")


def install_emitter(emitter: Any) -> None:
    """For tests: send segments to `emitter.send_entity(segment)` (None restores the daemon's)."""
    global _emitter
    _emitter = emitter


def _send(segment: Any) -> None:
    global _emitter
    if _emitter is None:
        from aws_xray_sdk.core.emitters.udp_emitter import (
            DEFAULT_DAEMON_ADDRESS,
            UDPEmitter,
        )

        _emitter = UDPEmitter(os.environ.get("AWS_XRAY_DAEMON_ADDRESS") or DEFAULT_DAEMON_ADDRESS)
    _emitter.send_entity(segment)


def _sampled_parent(trace_header: str | None) -> tuple[str, str | None] | None:
    """(trace id, parent id) of a sampled trace header; None when there is nothing to join."""
    if not trace_header:
        return None
    fields = dict(part.strip().split("=", 1) for part in trace_header.split(";") if "=" in part)
    if fields.get("Sampled") != "1" or not fields.get("Root"):
        return None
    return fields["Root"], fields.get("Parent")


class JobSegment:
    """The dispatcher's segment of one job in its request's trace (or a stand-in that records nothing)."""

    def __init__(self, segment: Any = None):
        self._segment = segment

    @property
    def recording(self) -> bool:
        return self._segment is not None

    def annotate(self, key: str, value: str | int | bool) -> None:
        if self._segment is not None:
            self._segment.put_annotation(key, value)


@contextmanager
def job_segment(
    trace_header: str | None, *, job_id: str, request_id: str | None, name: str | None = None
) -> Iterator[JobSegment]:
    parent = _sampled_parent(trace_header) if enabled() else None
    if parent is None:
        yield JobSegment()
        return
    from aws_xray_sdk.core.models.segment import Segment

    trace_id, parent_id = parent
    segment = Segment(
        name or os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "switchyard-dispatcher",
        traceid=trace_id,
        parent_id=parent_id,
    )
    segment.origin = "AWS::Lambda::Function"
    segment.put_annotation("job_id", job_id)
    if request_id:
        segment.put_annotation("request_id", request_id)
    token = _segment.set(segment)
    try:
        yield JobSegment(segment)
    except BaseException as error:
        segment.add_fault_flag()
        segment.add_exception(error, traceback.extract_tb(error.__traceback__))
        raise
    finally:
        _segment.reset(token)
        segment.close()
        _send(segment)


class ProviderSubsegment:
    def __init__(self, subsegment: Any = None):
        self._subsegment = subsegment

    def answered(self, status_code: int) -> None:
        if self._subsegment is not None:
            self._subsegment.put_http_meta("status", status_code)
            if 400 <= status_code < 500:
                self._subsegment.add_error_flag()
            elif status_code >= 500:
                self._subsegment.add_fault_flag()


@contextmanager
def provider_subsegment(url: str) -> Iterator[ProviderSubsegment]:
    """The provider call inside the current job segment (nothing when there is none)."""
    segment = _segment.get()
    if segment is None:
        yield ProviderSubsegment()
        return
    from aws_xray_sdk.core.models.subsegment import Subsegment

    subsegment = Subsegment("provider", "remote", segment)
    segment.add_subsegment(subsegment)
    subsegment.put_http_meta("method", "POST")
    subsegment.put_http_meta("url", url.split("?", 1)[0])
    try:
        yield ProviderSubsegment(subsegment)
    except BaseException as error:
        subsegment.add_fault_flag()
        subsegment.add_exception(error, traceback.extract_tb(error.__traceback__), remote=True)
        raise
    finally:
        subsegment.close()
