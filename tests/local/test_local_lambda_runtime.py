"""The moto Lambda patch: boto3 invoke, Event invocations and Step Functions tasks run the real handler.

Each test runs twice: with moto in this process (`mock_aws`, as the functional tests use it), and with
the embedded AWS in its own process forwarding invocations to this one's Lambda endpoint (the local stack).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from switchyard_local.aws_process import EmbeddedAwsProcess
from switchyard_local.handler_loading import load_handler
from switchyard_local.lambda_patch import install_lambda_patch, uninstall_lambda_patch
from switchyard_local.lambda_runtime import LocalFunctionRuntime
from switchyard_local.provision import provision
from switchyard_local.stack import ProvisionedStack

TEMPLATE = """
Globals:
  Function: {Runtime: python3.13, Timeout: 12, MemorySize: 256}
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: echo/, Handler: app.handler}
  Boom:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: boom/, Handler: nested.module.explode}
  Flow:
    Type: AWS::Serverless::StateMachine
    Properties:
      Definition:
        StartAt: CallEcho
        States:
          CallEcho:
            Type: Task
            Resource: arn:aws:states:::lambda:invoke
            Parameters: {FunctionName: "${EchoArn}", "Payload.$": "$"}
            OutputPath: $.Payload
            End: true
      DefinitionSubstitutions:
        EchoArn: !GetAtt Echo.Arn
"""

ECHO = """
import os
import pathlib

def handler(event, context):
    if event.get("touch"):
        pathlib.Path(event["touch"]).write_text(context.aws_request_id)
    return {
        "pid": os.getpid(),
        "event": event,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
"""

BOOM = """
class Rejected(Exception):
    pass

def explode(event, context):
    raise Rejected("not today")
"""


@pytest.fixture(params=["moto in process", "moto in its own process"])
def functions_stack(
    request, tmp_path: Path, local_aws_environment, monkeypatch
) -> Iterator[ProvisionedStack]:
    (tmp_path / "echo").mkdir()
    (tmp_path / "echo" / "app.py").write_text(ECHO)
    (tmp_path / "boom" / "nested").mkdir(parents=True)
    (tmp_path / "boom" / "nested" / "module.py").write_text(BOOM)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    if request.param == "moto in process":
        with mock_aws():
            stack = provision(tmp_path / "template.yaml")
            install_lambda_patch(LocalFunctionRuntime(stack.functions.values()))
            try:
                yield stack
            finally:
                uninstall_lambda_patch()
        return
    aws = EmbeddedAwsProcess()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", aws.start())
        stack = provision(tmp_path / "template.yaml", endpoint_url=aws.endpoint_url)
        aws.serve_lambda(LocalFunctionRuntime(stack.functions.values()))
        yield stack
    finally:
        aws.stop()


def test_boto3_invoke_runs_the_real_handler_with_a_context(functions_stack) -> None:
    response = boto3.client("lambda").invoke(
        FunctionName="switchyard-local-Echo", Payload=b'{"hello": "world"}'
    )
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    answer = json.loads(response["Payload"].read())
    assert answer["event"] == {"hello": "world"}
    assert answer["pid"] == os.getpid()  # the handler ran here, wherever moto runs
    assert answer["function_name"] == "switchyard-local-Echo"
    assert answer["memory"] == 256
    assert answer["arn"] == functions_stack.functions["Echo"].arn
    assert 0 < answer["remaining_ms"] <= 12_000


def test_an_exception_comes_back_as_an_unhandled_function_error(functions_stack) -> None:
    response = boto3.client("lambda").invoke(
        FunctionName=functions_stack.functions["Boom"].arn, Payload=b"{}"
    )
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == ("Rejected", "not today")
    assert error["stackTrace"]


def test_an_event_invocation_returns_at_once_and_runs_in_the_background(
    functions_stack, tmp_path, eventually
):
    marker = tmp_path / "ran"
    response = boto3.client("lambda").invoke(
        FunctionName="switchyard-local-Echo",
        InvocationType="Event",
        Payload=json.dumps({"touch": str(marker)}),
    )
    assert response["StatusCode"] == 202
    assert eventually(lambda: marker.exists() and marker.read_text())


def test_a_step_functions_lambda_task_runs_the_handler(functions_stack, eventually) -> None:
    sfn = boto3.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=functions_stack.physical["Flow"].arn, name="run-1", input='{"step": 1}'
    )
    described = eventually(
        lambda: (
            (d := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] != "RUNNING" and d
        )
    )
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["event"] == {"step": 1} and output["pid"] == os.getpid()


def test_handlers_with_the_same_module_name_do_not_shadow_each_other(tmp_path: Path) -> None:
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.py").write_text(f"def handler(event, context):\n    return {name!r}\n")
    assert load_handler(tmp_path / "first", "app.handler")({}, None) == "first"
    assert load_handler(tmp_path / "second", "app.handler")({}, None) == "second"
