"""One function per supported CloudFormation/SAM resource type: create it with boto3, say what it is.

Each provisioner takes already-resolved properties (intrinsics and Globals applied) and returns the
PhysicalResource that later `!Ref`/`!GetAtt` resolve against. Creation is idempotent where AWS lets it
be, so provisioning an already-provisioned moto server again is harmless.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from switchyard_local.stack import EventSourceSpec, FunctionSpec, PhysicalResource, ProvisionedStack

log = logging.getLogger(__name__)

_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@dataclass
class ProvisionContext:
    stack: ProvisionedStack
    client: Callable[[str], Any]
    template_dir: Path
    _execution_role_arn: str | None = field(default=None)

    def physical_name(self, logical_id: str) -> str:
        return f"{self.stack.stack_name}-{logical_id}"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.stack.region}:{self.stack.account_id}:{resource}"

    def execution_role_arn(self) -> str:
        """One role for every function and state machine: moto checks that it exists, not what it allows."""
        if self._execution_role_arn is None:
            iam = self.client("iam")
            role_name = f"{self.stack.stack_name}-execution-role"
            try:
                role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=_TRUST_POLICY)["Role"]
            except iam.exceptions.EntityAlreadyExistsException:
                role = iam.get_role(RoleName=role_name)["Role"]
            self._execution_role_arn = role["Arn"]
        return self._execution_role_arn


Provisioner = Callable[[ProvisionContext, str, dict[str, Any]], PhysicalResource | None]


# ---------------------------------------------------------------- DynamoDB


def provision_dynamodb_table(ctx: ProvisionContext, logical_id: str, props: dict) -> PhysicalResource:
    name = props.get("TableName") or ctx.physical_name(logical_id)
    billing = props.get("BillingMode", "PROVISIONED")
    default_throughput = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(
            props.get("ProvisionedThroughput") or default_throughput
        )
    if props.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = [
            _index(index, billing, default_throughput) for index in props["GlobalSecondaryIndexes"]
        ]
    if props.get("LocalSecondaryIndexes"):
        request["LocalSecondaryIndexes"] = [
            _index(index, None, None) for index in props["LocalSecondaryIndexes"]
        ]
    if props.get("StreamSpecification"):
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": props["StreamSpecification"]["StreamViewType"],
        }
    if props.get("SSESpecification"):
        sse = props["SSESpecification"]
        request["SSESpecification"] = {"Enabled": _boolean(sse.get("SSEEnabled", False))} | {
            key: sse[key] for key in ("SSEType", "KMSMasterKeyId") if key in sse
        }
    if props.get("Tags"):
        request["Tags"] = props["Tags"]
    return _create_table(
        ctx, logical_id, "AWS::DynamoDB::Table", request, props.get("TimeToLiveSpecification")
    )


def provision_simple_table(ctx: ProvisionContext, logical_id: str, props: dict) -> PhysicalResource:
    primary_key = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
    attribute_type = {"String": "S", "Number": "N", "Binary": "B"}[primary_key.get("Type", "String")]
    request: dict[str, Any] = {
        "TableName": props.get("TableName") or ctx.physical_name(logical_id),
        "AttributeDefinitions": [{"AttributeName": primary_key["Name"], "AttributeType": attribute_type}],
        "KeySchema": [{"AttributeName": primary_key["Name"], "KeyType": "HASH"}],
    }
    if props.get("ProvisionedThroughput"):
        request["BillingMode"] = "PROVISIONED"
        request["ProvisionedThroughput"] = _throughput(props["ProvisionedThroughput"])
    else:
        request["BillingMode"] = "PAY_PER_REQUEST"
    return _create_table(ctx, logical_id, "AWS::Serverless::SimpleTable", request, None)


def _create_table(
    ctx: ProvisionContext, logical_id: str, resource_type: str, request: dict, ttl: dict | None
) -> PhysicalResource:
    dynamodb = ctx.client("dynamodb")
    try:
        table = dynamodb.create_table(**request)["TableDescription"]
    except dynamodb.exceptions.ResourceInUseException:
        table = dynamodb.describe_table(TableName=request["TableName"])["Table"]
    if ttl and _boolean(ttl.get("Enabled", False)):
        dynamodb.update_time_to_live(
            TableName=request["TableName"],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    attributes = {"StreamArn": table["LatestStreamArn"]} if table.get("LatestStreamArn") else {}
    return PhysicalResource(
        logical_id,
        resource_type,
        table["TableName"],
        table["TableArn"],
        table["TableName"],
        attributes=attributes,
    )


def _index(index: dict, billing: str | None, default_throughput: dict | None) -> dict:
    shaped = {key: index[key] for key in ("IndexName", "KeySchema", "Projection") if key in index}
    if billing == "PROVISIONED":
        shaped["ProvisionedThroughput"] = _throughput(
            index.get("ProvisionedThroughput") or default_throughput
        )
    return shaped


def _throughput(throughput: dict) -> dict:
    return {key: int(value) for key, value in throughput.items()}


# ---------------------------------------------------------------- SQS

# CloudFormation property -> SQS attribute (same names, except that values must be strings).
_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


def provision_sqs_queue(ctx: ProvisionContext, logical_id: str, props: dict) -> PhysicalResource:
    fifo = _boolean(props.get("FifoQueue", False))
    name = props.get("QueueName") or ctx.physical_name(logical_id)
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {key: _attribute_text(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    if not fifo:
        attributes.pop("FifoQueue", None)  # SQS refuses FifoQueue=false on a standard queue
    request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if props.get("Tags"):
        request["tags"] = {tag["Key"]: str(tag["Value"]) for tag in props["Tags"]}
    sqs = ctx.client("sqs")
    url = sqs.create_queue(**request)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return PhysicalResource(
        logical_id,
        "AWS::SQS::Queue",
        name,
        arn,
        ref=url,
        url=url,
        attributes={"QueueName": name, "QueueUrl": url},
    )


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


# ---------------------------------------------------------------- S3 and logs


def provision_s3_bucket(ctx: ProvisionContext, logical_id: str, props: dict) -> PhysicalResource:
    # Bucket names are lower-case DNS labels, at most 63 characters.
    default_name = re.sub(r"[^a-z0-9.-]", "-", ctx.physical_name(logical_id).lower())[:63].strip("-.")
    name = props.get("BucketName") or default_name
    s3 = ctx.client("s3")
    request: dict[str, Any] = {"Bucket": name}
    if ctx.stack.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": ctx.stack.region}
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(**request)
    versioning = (props.get("VersioningConfiguration") or {}).get("Status")
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
    # Encryption, public access blocks, CORS and lifecycle rules change nothing a local handler can see.
    domain = f"{name}.s3.amazonaws.com"
    attributes = {"DomainName": domain, "RegionalDomainName": f"{name}.s3.{ctx.stack.region}.amazonaws.com"}
    return PhysicalResource(
        logical_id, "AWS::S3::Bucket", name, f"arn:aws:s3:::{name}", name, attributes=attributes
    )


def provision_log_group(ctx: ProvisionContext, logical_id: str, props: dict) -> PhysicalResource:
    name = props.get("LogGroupName") or ctx.physical_name(logical_id)
    logs = ctx.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=name)
    if props.get("RetentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    arn = ctx.arn("logs", f"log-group:{name}:*")
    return PhysicalResource(logical_id, "AWS::Logs::LogGroup", name, arn, name)


# ---------------------------------------------------------------- functions


def provision_function(ctx: ProvisionContext, logical_id: str, props: dict) -> PhysicalResource | None:
    code_uri, handler = props.get("CodeUri"), props.get("Handler")
    if props.get("PackageType") == "Image" or not isinstance(code_uri, str) or not handler:
        log.info("Skipping %s: only local CodeUri + Handler functions run locally", logical_id)
        return None
    name = props.get("FunctionName") or ctx.physical_name(logical_id)
    environment = {
        key: _attribute_text(value)
        for key, value in ((props.get("Environment") or {}).get("Variables") or {}).items()
    }
    configuration: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": props.get("Runtime", "python3.13"),
        "Role": ctx.execution_role_arn(),
        "Handler": handler,
        "Timeout": int(props.get("Timeout", 3)),
        "MemorySize": int(props.get("MemorySize", 128)),
        "Environment": {"Variables": environment},
        "Description": str(props.get("Description", "")),
    }
    lambda_client = ctx.client("lambda")
    try:
        arn = lambda_client.create_function(
            **configuration,
            Code={"ZipFile": _empty_zip()},
            Architectures=props.get("Architectures") or ["x86_64"],
        )["FunctionArn"]
    except lambda_client.exceptions.ResourceConflictException:
        arn = lambda_client.update_function_configuration(**configuration)["FunctionArn"]
    ctx.stack.functions[logical_id] = FunctionSpec(
        logical_id=logical_id,
        name=name,
        arn=arn,
        code_dir=(ctx.template_dir / code_uri).resolve(),
        handler=handler,
        environment=environment,
        timeout_seconds=configuration["Timeout"],
        memory_mb=configuration["MemorySize"],
        events=[
            _event_source(ctx, event_name, event) for event_name, event in (props.get("Events") or {}).items()
        ],
    )
    return PhysicalResource(logical_id, "AWS::Serverless::Function", name, arn, name)


def _event_source(ctx: ProvisionContext, name: str, event: dict) -> EventSourceSpec:
    properties = event.get("Properties") or {}
    queue_url = None
    if event.get("Type") == "SQS":
        queue_url = next(
            (found.url for found in ctx.stack.physical.values() if found.arn == properties.get("Queue")), None
        )
    return EventSourceSpec(
        name=name, event_type=event.get("Type", ""), properties=properties, queue_url=queue_url
    )


def _empty_zip() -> bytes:
    # moto stores the code but never runs it: the local runtime loads the handler from CodeUri instead.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "README", "Handlers run in-process from CodeUri; see switchyard_local.lambda_runtime.\n"
        )
    return buffer.getvalue()


# ---------------------------------------------------------------- state machines


def provision_state_machine(ctx: ProvisionContext, logical_id: str, props: dict) -> PhysicalResource | None:
    definition = props.get("Definition")
    definition_uri = props.get("DefinitionUri")
    if definition is None and isinstance(definition_uri, str):
        path = ctx.template_dir / definition_uri
        text = path.read_text(encoding="utf-8")
        definition = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if definition is None:
        log.info("Skipping %s: no Definition or local DefinitionUri", logical_id)
        return None
    substitutions = {
        key: _attribute_text(value) for key, value in (props.get("DefinitionSubstitutions") or {}).items()
    }
    definition_text = json.dumps(_substitute(definition, substitutions))
    name = props.get("Name") or ctx.physical_name(logical_id)
    sfn = ctx.client("stepfunctions")
    arn = ctx.arn("states", f"stateMachine:{name}")
    try:
        arn = sfn.create_state_machine(
            name=name,
            definition=definition_text,
            roleArn=ctx.execution_role_arn(),
            type=props.get("Type", "STANDARD"),
        )["stateMachineArn"]
    except sfn.exceptions.StateMachineAlreadyExists:
        sfn.update_state_machine(stateMachineArn=arn, definition=definition_text)
    return PhysicalResource(
        logical_id, "AWS::Serverless::StateMachine", name, arn, arn, attributes={"Name": name}
    )


def _substitute(value: Any, substitutions: dict[str, str]) -> Any:
    """SAM's DefinitionSubstitutions: `${Key}` inside any string of the definition."""
    if isinstance(value, str):
        for key, replacement in substitutions.items():
            value = value.replace("${" + key + "}", replacement)
        return value
    if isinstance(value, dict):
        return {key: _substitute(inner, substitutions) for key, inner in value.items()}
    if isinstance(value, list):
        return [_substitute(inner, substitutions) for inner in value]
    return value


def _boolean(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


PROVISIONERS: dict[str, Provisioner] = {
    "AWS::DynamoDB::Table": provision_dynamodb_table,
    "AWS::Serverless::SimpleTable": provision_simple_table,
    "AWS::SQS::Queue": provision_sqs_queue,
    "AWS::S3::Bucket": provision_s3_bucket,
    "AWS::Logs::LogGroup": provision_log_group,
    "AWS::Serverless::Function": provision_function,
    "AWS::Serverless::StateMachine": provision_state_machine,
}
