"""DispatcherFunction: SQS jobs queue → push each job to a provider (partial batch failures).

Records run concurrently (a slow provider must not hold up the rest of the batch), each on a thread of
an executor sized to the batch (switchyard/sqs_batches.py). A record fails only when its message cannot be handled at all, so SQS
redelivers it and, past maxReceiveCount, parks it in the DLQ. Waiting for capacity or a provider is not
a failure: the dispatcher re-queues with a delay.

Each record is worked on under its job's id (the correlation id of its log lines) and traced twice
(switchyard/tracing.py): a segment in the trace of the request that submitted the job, and a
subsegment of this invocation's own trace (Powertools Tracer), both annotated with job and request id.
"""

import time
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from switchyard import metrics, tracing
from switchyard.adapters.jobs_queue import JobMessage
from switchyard.logs import job_log_context, logged_invocation, logger
from switchyard.services.dispatcher import Outcome, TimeLeft, get_dispatcher
from switchyard.services.jobs import DISPATCHER_TICK_ID, get_jobs_service
from switchyard.sqs_batches import process_concurrently

# Only what the dispatcher calls: DynamoDB, SQS and S3 (botocore) and the providers (httpx). Importing the
# X-Ray SDK costs this function ~0.5 s of cold start; the sync API path never imports it.
tracer = Tracer(patch_modules=("botocore", "httpx"))

TICK_EVERY_SECONDS = 10.0
_last_tick = 0.0


def _record_liveness() -> None:
    """At most one write per TICK_EVERY_SECONDS per container: the queue summary's stalled-worker check."""
    global _last_tick
    if time.monotonic() - _last_tick >= TICK_EVERY_SECONDS:
        get_jobs_service().record_tick(DISPATCHER_TICK_ID)
        _last_tick = time.monotonic()


def dispatch_outcome(outcome: Outcome) -> str:
    """The DispatchOutcomes metric's Outcome: the dispatcher's action, a wait told apart by its reason."""
    if outcome.action == "waiting":
        return "waiting_for_provider" if outcome.detail == "no provider online" else "waiting_for_capacity"
    return outcome.action


def _dispatch(body: str, time_left: TimeLeft) -> None:
    try:
        message = JobMessage.from_body(body)
    except ValueError:
        metrics.record_dispatch_error()
        logger.exception("not a job message; SQS will redeliver it, then dead-letter it")
        raise
    with (
        job_log_context(message.job_id),
        tracing.job_segment(
            message.trace_header, job_id=message.job_id, request_id=message.request_id
        ) as segment,
        tracer.provider.in_subsegment("## dispatch job") as subsegment,
    ):
        subsegment.put_annotation("job_id", message.job_id)
        if message.request_id:
            subsegment.put_annotation("request_id", message.request_id)
        try:
            outcome = get_dispatcher().handle(message, time_left)
        except Exception:
            metrics.record_dispatch_error()
            logger.exception("dispatch failed; SQS will redeliver the message")
            raise
        segment.annotate("outcome", outcome.action)
        subsegment.put_annotation("outcome", outcome.action)
        logger.info("dispatched", extra={"action": outcome.action, "detail": outcome.detail})
        metrics.record_dispatch(dispatch_outcome(outcome))


@logged_invocation()
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    _record_liveness()

    def time_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    return process_concurrently(event, context, lambda body: _dispatch(body, time_left), name="dispatch")
