"""Play Lambda's SQS event source: long-poll a queue, invoke the function with a batch, delete what worked.

moto's own SQS->Lambda mapping delivers inside SendMessage (the sender blocks), one message at a time,
and deletes failed messages anyway. This poller behaves like AWS instead: batches of up to BatchSize,
partial batch responses (ReportBatchItemFailures), failed messages left to reappear after their
visibility timeout, and moto's redrive policy moving them to the DLQ after maxReceiveCount receives.

And like an SQS fair queue (a standard queue whose messages carry a MessageGroupId, the jobs queue's
account): moto hands messages out in the order they were sent, so one tenant's backlog would be served
before another tenant's message behind it. `fair=True` (the local stack's default) keeps the messages it
received (up to `scan_depth`, invisible to others meanwhile, as in-flight messages are) and builds each
batch from the groups with the fewest messages in flight first, oldest first within a group: a tenant
with nothing in flight is served next, whatever another's backlog.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# What Lambda's pollers use. Each idle poll is a request moto has to answer: polling once a second per
# thread showed up in the synchronous path's tail latency. stop() does not wait for it.
DEFAULT_WAIT_SECONDS = 20
DEFAULT_SCAN_DEPTH = 100


class SqsPoller:
    """One SQS event source of one function, served by `concurrency` polling threads."""

    def __init__(
        self,
        *,
        sqs_client: Any,
        queue_url: str,
        queue_arn: str,
        invoke: Callable[[dict], Any],
        batch_size: int = 10,
        report_batch_item_failures: bool = False,
        region: str = "us-east-1",
        concurrency: int = 1,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
        name: str = "sqs-poller",
        fair: bool = False,
        scan_depth: int = DEFAULT_SCAN_DEPTH,
    ):
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._invoke = invoke
        self._batch_size = max(1, min(int(batch_size), 10))  # one ReceiveMessage returns at most 10
        self._report_failures = report_batch_item_failures
        self._region = region
        self._wait_seconds = wait_seconds
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._batches_in_flight = 0
        self._fair = fair
        self._scan_depth = max(scan_depth, self._batch_size)
        self._held: list[dict] = []  # received, not yet handed to the function (fair mode)
        self._group_in_flight: Counter[str] = Counter()
        self._held_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{index}", daemon=True)
            for index in range(concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop polling; wait (up to `timeout`) for batches being handled, not for idle long polls.

        A long poll still open answers within its wait time; whatever it brings is handed straight back
        to the queue, as are the messages a fair poller was holding, and the daemon thread ends.
        """
        self._stopping.set()
        with self._idle:
            self._idle.wait_for(lambda: self._batches_in_flight == 0, timeout)
        with self._held_lock:
            held, self._held = self._held, []
        if held:
            self._release(held)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                # A moto hiccup (or a stopping server) must not end the poller; wait a little and retry.
                if not self._stopping.is_set():
                    log.exception("Polling %s failed", self._queue_url)
                    self._stopping.wait(1)

    def poll_once(self) -> int:
        """Receive one batch, invoke, delete the successes. Returns how many messages were received."""
        messages = self._fair_batch() if self._fair else self._receive(self._batch_size, self._wait_seconds)
        if not messages:
            return 0
        with self._idle:
            self._batches_in_flight += 1
        try:
            if self._stopping.is_set():
                self._release(messages)
            else:
                self._handle(messages)
        finally:
            with self._idle:
                self._batches_in_flight -= 1
                self._idle.notify_all()
            if self._fair:
                with self._held_lock:
                    self._group_in_flight.subtract(_group(m) for m in messages)
                    self._group_in_flight += Counter()  # drops the groups back at zero
        return len(messages)

    def _receive(self, count: int, wait_seconds: int) -> list[dict]:
        return self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def _fair_batch(self) -> list[dict]:
        """Top up what is held (up to scan_depth, long-polling only when nothing is), then take a batch:
        each next message from the group with the fewest in flight, oldest first."""
        with self._held_lock:
            room = self._scan_depth - len(self._held)
            nothing_held = not self._held
        received: list[dict] = []
        while room > 0:
            wait = self._wait_seconds if nothing_held and not received else 0
            got = self._receive(min(10, room), wait)
            if not got:
                break
            received += got
            room -= len(got)
        with self._held_lock:
            self._held += received
            batch: list[dict] = []
            while self._held and len(batch) < self._batch_size:
                pick = min(
                    range(len(self._held)),
                    key=lambda i: (self._group_in_flight[_group(self._held[i])], i),
                )
                message = self._held.pop(pick)
                self._group_in_flight[_group(message)] += 1
                batch.append(message)
            return batch

    def _handle(self, messages: list[dict]) -> None:
        try:
            result = self._invoke(self.event_for(messages))
        except Exception:
            # The whole batch failed: nothing is deleted, every message comes back after its visibility
            # timeout (and reaches the DLQ after maxReceiveCount receives).
            log.exception("Handler failed on a batch of %d from %s", len(messages), self._queue_arn)
            return
        succeeded = self._succeeded(messages, result)
        for start in range(0, len(succeeded), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(succeeded[start : start + 10])
            ]
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)

    def _release(self, messages: list[dict]) -> None:
        """Received while stopping: make them visible again at once rather than after the timeout."""
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
            for index, message in enumerate(messages)
        ]
        try:
            self._sqs.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=entries)
        except Exception:  # noqa: BLE001 - best effort while stopping: unreleased messages reappear after their timeout
            log.debug("Could not release %d messages of %s while stopping", len(messages), self._queue_arn)

    def _succeeded(self, messages: list[dict], result: Any) -> list[dict]:
        if not self._report_failures or not isinstance(result, dict) or not result.get("batchItemFailures"):
            return messages
        failed: set[str] = set()
        received = {message["MessageId"] for message in messages}
        for failure in result["batchItemFailures"]:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not identifier or identifier not in received:
                # AWS treats a malformed or unknown identifier as a failure of the whole batch.
                log.warning("Invalid batchItemFailures entry %r: the whole batch is retried", failure)
                return []
            failed.add(identifier)
        return [message for message in messages if message["MessageId"] not in failed]

    def event_for(self, messages: list[dict]) -> dict:
        """The Lambda event for received messages, as the SQS event source mapping builds it."""
        return {"Records": [self._record(message) for message in messages]}

    def _record(self, message: dict) -> dict:
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: _message_attribute(value)
                for name, value in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record


def _group(message: dict) -> str:
    """A fair queue's tenant: the MessageGroupId, or, without one, the message on its own."""
    attributes = message.get("Attributes") or {}
    return attributes.get("MessageGroupId") or f"message:{message['MessageId']}"


def _message_attribute(value: dict) -> dict:
    """SQS API shape (StringValue, BinaryValue as bytes) -> Lambda event shape (camelCase, base64)."""
    shaped: dict[str, Any] = {
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return shaped
