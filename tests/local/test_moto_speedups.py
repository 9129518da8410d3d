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


# Every kind of attribute value, nested and empty ones included, as moto's DynamoDB handler hands its answer
# to the serializer (binary values as bytes).
EVERY_KIND_OF_ITEM = {
    "pk": {"S": "provider#1"},
    "empty": {"S": ""},
    "count": {"N": "12.50"},
    "blob": {"B": b"\x00\x01binary"},
    "names": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"x", b"\xff"]},
    "models": {
        "M": {
            "fake-llm": {"M": {"modalities": {"L": [{"S": "text"}, {"NULL": True}, {"BOOL": False}]}}},
            "nothing": {"M": {}},
            "none": {"L": []},
        }
    },
    "online": {"BOOL": True},
}


def test_dynamodb_answers_are_serialised_byte_for_byte_as_moto_does(local_aws_environment):
    from moto.core.serialize import BaseJSONSerializer, JSONSerializer, XFormedAttributePicker
    from moto.core.utils import get_service_model
    from switchyard_local.moto_speedups import speed_up_dynamodb_responses

    speed_up_dynamodb_responses()

    class GenericSerializer(JSONSerializer):  # moto's own path: what the speedup replaces
        _serialize_type_structure = BaseJSONSerializer._serialize_type_structure

    service = get_service_model("dynamodb")
    answers = {
        "Query": {
            "Items": [EVERY_KIND_OF_ITEM, {"pk": {"S": "provider#2"}}],
            "Count": 2,
            "ScannedCount": 3,
            "LastEvaluatedKey": {"pk": {"S": "provider#2"}},
        },
        "GetItem": {"Item": EVERY_KIND_OF_ITEM},
        "UpdateItem": {"Attributes": EVERY_KIND_OF_ITEM},
        "BatchGetItem": {"Responses": {"table": [EVERY_KIND_OF_ITEM]}, "UnprocessedKeys": {}},
    }
    for operation, answer in answers.items():
        model = service.operation_model(operation)
        fast, generic = (
            serializer(operation_model=model, value_picker=XFormedAttributePicker()).serialize(answer)
            for serializer in (JSONSerializer, GenericSerializer)
        )
        assert fast == generic, operation
        assert '"blob": {"B": "AAFiaW5hcnk="}' in fast["body"]


def test_items_of_every_kind_come_back_as_they_were_written(local_aws_environment):
    from switchyard_local.moto_speedups import speed_up_dynamodb_responses

    speed_up_dynamodb_responses()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="kinds",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName="kinds", Item=EVERY_KIND_OF_ITEM)
        got = dynamodb.get_item(TableName="kinds", Key={"pk": {"S": "provider#1"}})["Item"]
        queried = dynamodb.query(
            TableName="kinds",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "provider#1"}},
        )["Items"]
    assert in_set_order(got) == in_set_order(queried[0]) == in_set_order(EVERY_KIND_OF_ITEM)


def in_set_order(item: dict) -> dict:
    """Sets come back in any order."""
    sets = ("SS", "NS", "BS")
    return {
        name: {kind: sorted(value) if kind in sets else value for kind, value in attribute.items()}
        for name, attribute in item.items()
    }
