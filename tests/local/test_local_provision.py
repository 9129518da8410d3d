"""Provisioning straight from a template, inside moto.mock_aws()."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from switchyard_local.provision import provision

ROOT = Path(__file__).resolve().parents[2]

SCRATCH_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Retention: {Type: Number, Default: 7}
Globals:
  Function:
    Runtime: python3.13
    Timeout: 15
    Environment:
      Variables:
        JOBS_TABLE: !Ref JobsTable
        JOBS_QUEUE_URL: !Ref JobsQueue
Resources:
  JobsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: owner, AttributeType: S}
        - {AttributeName: created, AttributeType: N}
      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
      GlobalSecondaryIndexes:
        - IndexName: by_owner
          KeySchema: [{AttributeName: owner, KeyType: HASH}, {AttributeName: created, KeyType: RANGE}]
          Projection: {ProjectionType: KEYS_ONLY}
      LocalSecondaryIndexes:
        - IndexName: by_created
          KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: created, KeyType: RANGE}]
          Projection: {ProjectionType: ALL}
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Sessions:
    Type: AWS::Serverless::SimpleTable
    Properties:
      PrimaryKey: {Name: session_id, Type: String}
  JobsDeadLetters:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
  JobsQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 90
      RedrivePolicy: {deadLetterTargetArn: !GetAtt JobsDeadLetters.Arn, maxReceiveCount: 5}
  OrderedQueue:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      ContentBasedDeduplication: true
  Media:
    Type: AWS::S3::Bucket
  WorkerLogs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws/lambda/${AWS::StackName}/Worker"
      RetentionInDays: !Ref Retention
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Handler: app.handler
      Environment:
        Variables: {WORKER_ONLY: "yes"}
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt JobsQueue.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
        Sweep:
          Type: Schedule
          Properties: {Schedule: rate(1 minute)}
  Flow:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: flow.asl.json
      DefinitionSubstitutions:
        WorkerArn: !GetAtt Worker.Arn
        QueueUrl: !Ref JobsQueue
  Api:
    Type: AWS::Serverless::HttpApi
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {MetricName: Errors}
"""

FLOW = {
    "StartAt": "Work",
    "States": {
        "Work": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${WorkerArn}", "Payload": {"queue": "${QueueUrl}"}},
            "End": True,
        }
    },
}


@pytest.fixture
def scratch_template(tmp_path: Path) -> Path:
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "app.py").write_text("def handler(event, context):\n    return event\n")
    (tmp_path / "flow.asl.json").write_text(json.dumps(FLOW))
    path = tmp_path / "template.yaml"
    path.write_text(SCRATCH_TEMPLATE)
    return path


def test_every_supported_resource_is_created_as_declared(
    scratch_template: Path, local_aws_environment
) -> None:
    with mock_aws():
        # When the scratch template is provisioned
        stack = provision(scratch_template)
        dynamodb = boto3.client("dynamodb")
        sqs = boto3.client("sqs")

        # Then the table has the template's keys, indexes, TTL and stream
        table = dynamodb.describe_table(TableName=stack.physical["JobsTable"].name)["Table"]
        assert table["TableName"] == "switchyard-local-JobsTable"
        assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
        assert table["GlobalSecondaryIndexes"][0]["IndexName"] == "by_owner"
        assert table["LocalSecondaryIndexes"][0]["IndexName"] == "by_created"
        ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
        assert stack.physical["JobsTable"].attributes["StreamArn"]
        simple = dynamodb.describe_table(TableName=stack.physical["Sessions"].name)["Table"]
        assert simple["KeySchema"] == [{"AttributeName": "session_id", "KeyType": "HASH"}]

        # And the queue redrives to its DLQ, and the FIFO queue is FIFO
        queue = stack.physical["JobsQueue"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
        assert attributes["VisibilityTimeout"] == "90"
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": stack.physical["JobsDeadLetters"].arn,
            "maxReceiveCount": 5,
        }
        fifo = stack.physical["OrderedQueue"]
        assert fifo.name.endswith(".fifo")
        fifo_attributes = sqs.get_queue_attributes(QueueUrl=fifo.url, AttributeNames=["All"])["Attributes"]
        assert fifo_attributes["FifoQueue"] == "true"

        # And the bucket, log group, function and state machine exist
        boto3.client("s3").head_bucket(Bucket=stack.physical["Media"].name)
        groups = boto3.client("logs").describe_log_groups(
            logGroupNamePrefix="/aws/lambda/switchyard-local/Worker"
        )
        assert groups["logGroups"][0]["retentionInDays"] == 7
        function = boto3.client("lambda").get_function(FunctionName="switchyard-local-Worker")[
            "Configuration"
        ]
        assert function["Environment"]["Variables"]["JOBS_QUEUE_URL"] == queue.url
        assert function["Timeout"] == 15
        machine = boto3.client("stepfunctions").describe_state_machine(
            stateMachineArn=stack.physical["Flow"].arn
        )
        work = json.loads(machine["definition"])["States"]["Work"]["Parameters"]
        assert work == {"FunctionName": stack.functions["Worker"].arn, "Payload": {"queue": queue.url}}

    # And what was not provisioned is reported, not failed on
    assert stack.skipped == {"Api": "AWS::Serverless::HttpApi", "Alarm": "AWS::CloudWatch::Alarm"}


def test_functions_describe_their_code_handler_environment_and_events(
    scratch_template: Path, local_aws_environment
):
    with mock_aws():
        stack = provision(scratch_template)
    worker = stack.functions["Worker"]
    assert worker.code_dir == scratch_template.parent / "worker"
    assert worker.handler == "app.handler"
    assert worker.timeout_seconds == 15
    jobs, sweep = worker.events
    assert (jobs.event_type, jobs.queue_url, jobs.properties["BatchSize"]) == (
        "SQS",
        stack.physical["JobsQueue"].url,
        5,
    )
    assert (sweep.event_type, sweep.properties["Schedule"]) == ("Schedule", "rate(1 minute)")
    assert stack.environment == {
        "JOBS_TABLE": "switchyard-local-JobsTable",
        "JOBS_QUEUE_URL": stack.physical["JobsQueue"].url,
        "WORKER_ONLY": "yes",
    }


def test_the_project_template_provisions_tables_with_its_keys(local_aws_environment) -> None:
    with mock_aws():
        stack = provision(ROOT / "template.yaml", {"ProviderEndpointPolicy": "loopback"})
        keys = boto3.client("dynamodb").describe_table(TableName=stack.environment["API_KEYS_TABLE"])["Table"]
    assert keys["KeySchema"] == [{"AttributeName": "key_hash", "KeyType": "HASH"}]
    assert stack.environment["PROVIDER_ENDPOINT_POLICY"] == "loopback"
    assert stack.api_function().logical_id == "ApiFunction"
    assert not any(name.startswith("AWS_LWA_") for name in stack.environment)


def test_provisioning_twice_on_the_same_backend_is_harmless(
    scratch_template: Path, local_aws_environment
) -> None:
    with mock_aws():
        first = provision(scratch_template)
        second = provision(scratch_template)
    assert {k: v.arn for k, v in first.physical.items()} == {k: v.arn for k, v in second.physical.items()}


def test_refuses_to_run_against_real_aws(scratch_template: Path, local_aws_environment) -> None:
    with pytest.raises(RuntimeError, match="never touches real AWS"):
        provision(scratch_template)
