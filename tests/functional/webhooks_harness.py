"""Drive the webhook delivery function (and the dispatcher) on in-process moto, as the local stack does."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from switchyard_local.handler_loading import load_handler
from switchyard_local.sqs_poller import SqsPoller

from tests.conftest import lambda_context
from tests.functional.jobs_harness import JobsHarness, _ShortVisibility

ROOT = Path(__file__).resolve().parents[2]


class WebhooksHarness:
    def __init__(self, environment: dict[str, str], jobs: JobsHarness | None = None):
        import boto3

        self.sqs = boto3.client("sqs")
        self.queue_url = environment["WEBHOOK_QUEUE_URL"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.function = load_handler(ROOT / "functions" / "webhook_delivery", "app.handler")
        self.jobs = jobs or JobsHarness(environment)
        self.results: list[dict] = []
        self.poller = SqsPoller(
            sqs_client=_ShortVisibility(self.sqs, seconds=1),
            queue_url=self.queue_url,
            queue_arn=arn,
            invoke=self._invoke,
            batch_size=10,
            report_batch_item_failures=True,
            wait_seconds=0,
        )

    def _invoke(self, event: dict) -> dict:
        result = self.function(event, lambda_context("WebhookDeliveryFunction", 60))
        self.results.append(result)
        return result

    def deliver_once(self) -> int:
        return self.poller.poll_once()

    def run(self, until: Callable[[], bool], timeout: float = 15.0) -> None:
        """Dispatch jobs and deliver webhooks (and, if asked, sweep) until `until` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until():
                return
            busy = self.jobs.dispatch_once() + self.deliver_once()
            if not busy:
                time.sleep(0.05)
        if not until():
            raise AssertionError("condition not reached before the timeout")

    def sweep(self) -> dict:
        return self.jobs.sweep()
