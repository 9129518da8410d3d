"""Concurrent calls on one item behave as on DynamoDB: one conditional winner, reads never torn."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto import mock_aws
from switchyard_local import dynamodb_atomicity


@pytest.fixture
def table(local_aws_environment):
    dynamodb_atomicity.install()
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name="us-east-1")
        created = resource.create_table(
            TableName="items",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        created.put_item(Item={"id": "one", "leases": {}})
        yield created


def run_together(workers) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def run(work):
        start.wait()
        try:
            work()
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=run, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return errors


def test_one_conditional_claim_wins(table):
    winners = []

    def claim(name: str):
        def work():
            try:
                table.update_item(
                    Key={"id": "one"},
                    UpdateExpression="SET claimed_by = :me",
                    ConditionExpression="attribute_not_exists(claimed_by)",
                    ExpressionAttributeValues={":me": name},
                )
                winners.append(name)
            except table.meta.client.exceptions.ConditionalCheckFailedException:
                pass

        return work

    assert run_together([claim(f"worker-{i}") for i in range(8)]) == []
    assert len(winners) == 1
    assert table.get_item(Key={"id": "one"})["Item"]["claimed_by"] == winners[0]


def test_reads_during_writes_see_whole_items(table):
    def write(worker: int):
        def work():
            for i in range(40):
                table.update_item(
                    Key={"id": "one"},
                    UpdateExpression="SET leases.#k = :v",
                    ExpressionAttributeNames={"#k": f"w{worker}-{i}"},
                    ExpressionAttributeValues={":v": i},
                )

        return work

    def read():
        for _ in range(40):
            table.meta.client.batch_get_item(RequestItems={"items": {"Keys": [{"id": "one"}]}})

    assert run_together([write(0), write(1), read, read]) == []
    assert len(table.get_item(Key={"id": "one"})["Item"]["leases"]) == 80
