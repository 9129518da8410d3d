"""WebhookDeliveryFunction: SQS webhook queue → one signed delivery attempt per message (partial batch
failures).

Records run concurrently (one slow receiver must not hold up the rest of the batch), each on a thread of
an executor sized to the batch (switchyard/sqs_batches.py): a batch of 10 receivers that each take the
whole 15 s answers within one attempt's time, not two. A record fails only
when its attempt could not be recorded (DynamoDB, S3 or SQS trouble), so SQS redelivers it and, past
maxReceiveCount, parks it in the DLQ (alarmed). A receiver's refusal is not a failure here: the delivery
service schedules the retry itself.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from switchyard import metrics
from switchyard.adapters.webhook_queue import DeliveryMessage
from switchyard.logs import logged_invocation, logger
from switchyard.services.webhook_delivery import get_webhook_deliverer
from switchyard.sqs_batches import process_concurrently


def _deliver(body: str) -> None:
    outcome = get_webhook_deliverer().deliver(DeliveryMessage.from_body(body))
    logger.info(
        "webhook attempt",
        extra={"delivery_id": outcome.delivery_id, "action": outcome.action, "detail": outcome.detail},
    )
    metrics.record_webhook_delivery(outcome.action)


@logged_invocation()
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_concurrently(event, context, _deliver, name="deliver")
