"""The embedded SQS speedups change cost, not behaviour: delays, visibility and retention still hold."""

from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws
from switchyard_local.moto_speedups import speed_up_sqs


@pytest.fixture
def sqs(local_aws_environment):
    speed_up_sqs()
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def bodies(sqs, queue_url: str, **kwargs) -> list[str]:
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, **kwargs).get("Messages", [])
    return sorted(message["Body"] for message in messages)


def test_delayed_and_in_flight_messages_stay_hidden_until_their_time(sqs):
    queue_url = sqs.create_queue(QueueName="speedups")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="now")
    sqs.send_message(QueueUrl=queue_url, MessageBody="later", DelaySeconds=1)
    assert bodies(sqs, queue_url, VisibilityTimeout=1) == ["now"]
    assert bodies(sqs, queue_url) == []
    time.sleep(1.1)
    assert bodies(sqs, queue_url) == ["later", "now"]


def test_messages_past_the_retention_period_are_not_delivered(sqs):
    queue_url = sqs.create_queue(QueueName="retention", Attributes={"MessageRetentionPeriod": "60"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=queue_url, MessageBody="fresh")
    sqs.send_message(QueueUrl=queue_url, MessageBody="stale")
    from moto.sqs.models import sqs_backends

    queue = sqs_backends["123456789012"]["us-east-1"].get_queue("retention")
    stale = next(message for message in queue._messages if message.body == "stale")
    stale.sent_timestamp -= 61_000
    assert bodies(sqs, queue_url) == ["fresh"]
