"""The SQS poller: batches, partial batch failures, redelivery and redrive, like Lambda's event source."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import boto3
import pytest
from switchyard_local.event_sources import start_event_sources
from switchyard_local.lambda_runtime import LocalFunctionRuntime
from switchyard_local.provision import LOCAL_CREDENTIALS, provision
from switchyard_local.sqs_poller import SqsPoller

TEMPLATE = """
Resources:
  WorkDeadLetters:
    Type: AWS::SQS::Queue
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy: {deadLetterTargetArn: !GetAtt WorkDeadLetters.Arn, maxReceiveCount: 2}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Handler: app.handler
      Runtime: python3.13
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 10
            FunctionResponseTypes: [ReportBatchItemFailures]
"""

# Fails every record whose body is "bad"; remembers every delivery.
WORKER = """
deliveries = []
batches = []

def handler(event, context):
    records = event["Records"]
    batches.append(len(records))
    failures = []
    for record in records:
        deliveries.append((record["body"], record["attributes"]["ApproximateReceiveCount"]))
        assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith("WorkQueue")
        assert record["md5OfBody"] and record["receiptHandle"] and record["messageId"]
        if record["body"] == "bad":
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
"""


def test_partial_batch_failures_are_redelivered_then_redriven(
    tmp_path: Path, moto_server: str, monkeypatch, eventually
):
    # Given a queue with a DLQ after 2 receives and a worker that fails one message of the batch
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "app.py").write_text(WORKER)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    monkeypatch.setenv("SWITCHYARD_LOCAL_SQS_CONCURRENCY", "1")
    stack = provision(tmp_path / "template.yaml", endpoint_url=moto_server)
    runtime = LocalFunctionRuntime(stack.functions.values())
    worker = sys.modules[runtime.handler(stack.functions["Worker"]).__module__]
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1", **LOCAL_CREDENTIALS)
    queue_url, dead_letters_url = stack.physical["WorkQueue"].url, stack.physical["WorkDeadLetters"].url
    sqs.send_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(["good-1", "bad", "good-2"])],
    )

    # When the event source runs
    sources = start_event_sources(stack, runtime, sqs_client=sqs)
    try:
        dead = eventually(
            lambda: sqs.receive_message(QueueUrl=dead_letters_url, WaitTimeSeconds=0).get("Messages"),
            timeout=15,
        )
    finally:
        sources.stop()

    # Then the good messages were delivered once, in one batch, and deleted
    assert sorted(body for body, _ in worker.deliveries if body != "bad") == ["good-1", "good-2"]
    assert max(worker.batches) > 1
    # And the failed one came back after its visibility timeout, then moved to the DLQ
    assert [count for body, count in worker.deliveries if body == "bad"] == ["1", "2"]
    assert [message["Body"] for message in dead] == ["bad"]
    remaining = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert remaining["Attributes"]["ApproximateNumberOfMessages"] == "0"


class FakeSqs:
    """Just enough of an SQS client to drive one poll."""

    def __init__(self, bodies: list[str]):
        self.messages = [
            {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": body, "MD5OfBody": "x", "Attributes": {}}
            for i, body in enumerate(bodies)
        ]
        self.deleted: list[str] = []

    def receive_message(self, **kwargs):
        return {"Messages": self.messages}

    def delete_message_batch(self, QueueUrl, Entries):  # noqa: N803 - boto3's keyword names
        self.deleted.extend(entry["ReceiptHandle"] for entry in Entries)


def poll(result_or_error, *, report_failures: bool = True) -> list[str]:
    sqs = FakeSqs(["a", "b", "c"])

    def invoke(event):
        if isinstance(result_or_error, Exception):
            raise result_or_error
        return result_or_error

    SqsPoller(
        sqs_client=sqs,
        queue_url="q",
        queue_arn="arn",
        invoke=invoke,
        report_batch_item_failures=report_failures,
    ).poll_once()
    return sqs.deleted


@pytest.mark.parametrize(
    ("result", "report_failures", "deleted"),
    [
        (None, True, ["r0", "r1", "r2"]),
        ({"batchItemFailures": []}, True, ["r0", "r1", "r2"]),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}]}, True, ["r0", "r2"]),
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, True, []),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, True, []),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}]}, False, ["r0", "r1", "r2"]),
        (RuntimeError("handler crashed"), True, []),
        (RuntimeError("handler crashed"), False, []),
    ],
)
def test_which_messages_a_batch_result_deletes(result, report_failures: bool, deleted: list[str]) -> None:
    assert poll(result, report_failures=report_failures) == deleted


def test_stop_does_not_wait_out_an_idle_long_poll(moto_server: str):
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1", **LOCAL_CREDENTIALS)
    queue_url = sqs.create_queue(QueueName="idle")["QueueUrl"]
    poller = SqsPoller(sqs_client=sqs, queue_url=queue_url, queue_arn="arn", invoke=lambda event: None)
    poller.start()
    time.sleep(0.3)  # the poller is now inside a 20 s long poll
    started = time.monotonic()
    poller.stop(timeout=10)
    assert time.monotonic() - started < 1


def test_messages_received_while_stopping_go_straight_back_to_the_queue(moto_server: str):
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1", **LOCAL_CREDENTIALS)
    queue_url = sqs.create_queue(QueueName="stopping", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="late")
    invoked = []
    poller = SqsPoller(sqs_client=sqs, queue_url=queue_url, queue_arn="arn", invoke=invoked.append)
    poller.stop()  # stopped before its long poll answered
    assert poller.poll_once() == 1
    assert invoked == []
    again = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)["Messages"]
    assert [message["Body"] for message in again] == ["late"]
