"""DispatcherFunction: SQS jobs queue → push each job to a provider (partial batch failures).

Records run concurrently (a slow provider must not hold up the rest of the batch), each on a thread of
an executor sized to the batch: asyncio's default executor has min(32, CPUs + 4) threads, 6 on a
two-vCPU function, so records past the sixth of a batch of 10 would wait for a call to end and could
overrun the invocation. A record fails only when its message cannot be handled at all, so SQS
redelivers it and, past maxReceiveCount, parks it in the DLQ. Waiting for capacity or a provider is not
a failure: the dispatcher re-queues with a delay.
"""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from switchyard.adapters.jobs_queue import JobMessage
from switchyard.services.dispatcher import TimeLeft, get_dispatcher
from switchyard.services.jobs import DISPATCHER_TICK_ID, get_jobs_service

logger = Logger()
metrics = Metrics()

TICK_EVERY_SECONDS = 10.0
_last_tick = 0.0


def _record_liveness() -> None:
    """At most one write per TICK_EVERY_SECONDS per container: the queue summary's stalled-worker check."""
    global _last_tick
    if time.monotonic() - _last_tick >= TICK_EVERY_SECONDS:
        get_jobs_service().record_tick(DISPATCHER_TICK_ID)
        _last_tick = time.monotonic()


def _dispatch(body: str, time_left: TimeLeft) -> None:
    outcome = get_dispatcher().handle(JobMessage.from_body(body), time_left)
    logger.info(
        "dispatched", extra={"job_id": outcome.job_id, "action": outcome.action, "detail": outcome.detail}
    )
    metrics.add_metric(name=f"Jobs{outcome.action.title().replace('_', '')}", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context) -> dict:
    _record_liveness()

    def time_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    records = event.get("Records") or []
    with ThreadPoolExecutor(max_workers=max(1, len(records)), thread_name_prefix="dispatch") as executor:

        async def record_handler(record: SQSRecord) -> None:
            await asyncio.get_running_loop().run_in_executor(executor, _dispatch, record.body, time_left)

        # A processor per invocation: it holds the batch being processed. On AWS one container runs one
        # invocation at a time, but the local stack's pollers invoke this module from several threads at
        # once, and a shared processor handed one batch's records to the other (jobs ran twice, others never).
        processor = AsyncBatchProcessor(event_type=EventType.SQS)
        return async_process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
