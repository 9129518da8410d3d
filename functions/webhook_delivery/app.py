"""WebhookDeliveryFunction: SQS webhook queue → one signed delivery attempt per message (partial batch
failures).

Records run concurrently (one slow receiver must not hold up the rest of the batch). A record fails only
when its attempt could not be recorded (DynamoDB, S3 or SQS trouble), so SQS redelivers it and, past
maxReceiveCount, parks it in the DLQ (alarmed). A receiver's refusal is not a failure here: the delivery
service schedules the retry itself.
"""

import asyncio
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from switchyard import metrics
from switchyard.adapters.webhook_queue import DeliveryMessage
from switchyard.logs import logged_invocation, logger
from switchyard.services.webhook_delivery import get_webhook_deliverer


def _deliver(body: str) -> None:
    outcome = get_webhook_deliverer().deliver(DeliveryMessage.from_body(body))
    logger.info(
        "webhook attempt",
        extra={"delivery_id": outcome.delivery_id, "action": outcome.action, "detail": outcome.detail},
    )
    metrics.record_webhook_delivery(outcome.action)


async def record_handler(record: SQSRecord) -> None:
    await asyncio.to_thread(_deliver, record.body)


@logged_invocation()
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A processor per invocation: the local stack's pollers call this module from several threads at once.
    processor = AsyncBatchProcessor(event_type=EventType.SQS)
    return async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
