"""Drive the dispatcher and sweeper on in-process moto the way the local stack's event sources do."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from switchyard_local.handler_loading import load_handler
from switchyard_local.sqs_poller import SqsPoller

from tests.conftest import lambda_context

ROOT = Path(__file__).resolve().parents[2]


class JobsHarness:
    def __init__(self, environment: dict[str, str]):
        import boto3

        self.sqs = boto3.client("sqs")
        self.queue_url = environment["JOBS_QUEUE_URL"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.dispatcher = load_handler(ROOT / "functions" / "dispatcher", "app.handler")
        # A fresh stack per test, but the loaded module (and its liveness throttle) lives on: start ticking anew.
        sys.modules[self.dispatcher.__module__]._last_tick = 0.0
        self.sweeper = load_handler(ROOT / "functions" / "sweeper", "app.handler")
        self.poller = SqsPoller(
            sqs_client=_ShortVisibility(self.sqs, seconds=1),
            queue_url=self.queue_url,
            queue_arn=arn,
            invoke=lambda event: self.dispatcher(event, lambda_context("DispatcherFunction")),
            batch_size=10,
            report_batch_item_failures=True,
            wait_seconds=0,
        )

    def receive_event(self, count: int = 10) -> dict:
        """Receive up to `count` messages and build the dispatcher's event, without invoking it."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=count, VisibilityTimeout=60
        ).get("Messages", [])
        return self.poller.event_for(messages)

    def dispatch_once(self) -> int:
        return self.poller.poll_once()

    def drain(self, until: Callable[[], bool] | None = None, timeout: float = 10.0) -> None:
        """Poll until the queue is empty (or `until` holds), like the event source mapping would."""
        deadline = time.monotonic() + timeout
        idle_rounds = 0
        while time.monotonic() < deadline:
            if until is not None and until():
                return
            if self.dispatch_once() == 0:
                idle_rounds += 1
                if until is None and idle_rounds >= 3 and self.depth() == 0:
                    return
                time.sleep(0.05)
            else:
                idle_rounds = 0
        if until is not None and not until():
            raise AssertionError("condition not reached before the timeout")

    def depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    def sweep(self) -> dict:
        return self.sweeper(
            {"source": "aws.events", "detail-type": "Scheduled Event"}, lambda_context("SweeperFunction")
        )

    def purge(self) -> None:
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


class _ShortVisibility:
    """The queue's visibility timeout is minutes long on AWS; here a failed record comes back after a
    second, so tests see redelivery without waiting."""

    def __init__(self, sqs, seconds: int):
        self._sqs = sqs
        self._seconds = seconds

    def receive_message(self, **kwargs):
        return self._sqs.receive_message(VisibilityTimeout=self._seconds, **kwargs)

    def __getattr__(self, name):
        return getattr(self._sqs, name)
