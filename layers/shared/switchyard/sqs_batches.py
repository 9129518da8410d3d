"""Running an SQS batch's records at once, each on its own thread (the SQS-triggered handlers).

asyncio's default executor has min(32, CPUs + 4) threads, 6 on a two-vCPU function: with Powertools'
AsyncBatchProcessor and `asyncio.to_thread`, records past the sixth of a batch of 10 would wait for a
slow call to end and could overrun the invocation. Here the executor is sized to the batch, and each
record's thread sees the invocation's context (its log keys), as `asyncio.to_thread` would give it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext


def process_concurrently(
    event: dict[str, Any], context: LambdaContext, handle: Callable[[str], None], *, name: str
) -> PartialItemFailureResponse:
    """Call `handle(body)` for every record at once; a record whose call raises is a batch item failure
    (SQS redelivers it)."""
    records = event.get("Records") or []
    with ThreadPoolExecutor(max_workers=max(1, len(records)), thread_name_prefix=name) as executor:

        async def record_handler(record: SQSRecord) -> None:
            context_copy = contextvars.copy_context()
            await asyncio.get_running_loop().run_in_executor(executor, context_copy.run, handle, record.body)

        # A processor per invocation: it holds the batch being processed. On AWS one container runs one
        # invocation at a time, but the local stack's pollers invoke a handler from several threads at
        # once, and a shared processor handed one batch's records to the other (jobs ran twice, others never).
        processor = AsyncBatchProcessor(event_type=EventType.SQS)
        return async_process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
