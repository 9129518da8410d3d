"""The embedded AWS's own process, and the Lambda endpoint its invocations come back through."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import boto3
import pytest
from switchyard_local.aws_process import EmbeddedAwsProcess
from switchyard_local.lambda_endpoint import ForwardingInvoker, LambdaEndpoint
from switchyard_local.lambda_patch import InvocationResult
from switchyard_local.lambda_runtime import LocalFunctionRuntime
from switchyard_local.stack import FunctionSpec


@pytest.fixture
def echo_runtime(tmp_path: Path) -> LocalFunctionRuntime:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {'got': event}\n")
    return LocalFunctionRuntime(
        [
            FunctionSpec(
                logical_id="Echo",
                name="stack-Echo",
                arn="arn:aws:lambda:us-east-1:123456789012:function:stack-Echo",
                code_dir=tmp_path,
                handler="app.handler",
                environment={},
            )
        ]
    )


@pytest.fixture
def endpoint() -> LambdaEndpoint:
    endpoint = LambdaEndpoint()
    endpoint.start()
    yield endpoint
    endpoint.stop()


def test_an_invocation_by_arn_crosses_over_and_back(endpoint, echo_runtime):
    endpoint.serve(echo_runtime)
    result = ForwardingInvoker(endpoint.url).handle_invocation(
        "arn:aws:lambda:us-east-1:123456789012:function:stack-Echo", b'{"a": 1}', "RequestResponse"
    )
    assert json.loads(result.payload) == {"got": {"a": 1}} and result.function_error is None


def test_a_function_the_stack_does_not_have_is_left_to_moto(endpoint, echo_runtime):
    endpoint.serve(echo_runtime)
    assert ForwardingInvoker(endpoint.url).handle_invocation("someone-else", b"{}", "RequestResponse") is None


def test_an_invocation_before_the_functions_are_loaded_fails_loudly(endpoint):
    with pytest.raises(RuntimeError, match="503"):
        ForwardingInvoker(endpoint.url).handle_invocation("stack-Echo", b"{}", "RequestResponse")


def test_an_event_that_is_not_json_is_refused_with_lambdas_error(endpoint, echo_runtime):
    endpoint.serve(echo_runtime)
    with pytest.raises(RuntimeError, match="400.*Could not parse request body into json"):
        ForwardingInvoker(endpoint.url).handle_invocation("stack-Echo", b"{not json", "RequestResponse")


def test_a_failing_invoker_answers_500_with_the_error_not_a_dropped_connection(endpoint):
    class Broken:
        def handle_invocation(self, function_name, payload, invocation_type):
            raise KeyError("lost")

    endpoint.serve(Broken())
    with pytest.raises(RuntimeError, match="500.*lost"):
        ForwardingInvoker(endpoint.url).handle_invocation("stack-Echo", b"{}", "RequestResponse")


def test_a_dry_run_and_an_event_answer_as_lambda_does(endpoint, echo_runtime):
    endpoint.serve(echo_runtime)
    forward = ForwardingInvoker(endpoint.url)
    assert forward.handle_invocation("stack-Echo", b"{}", "DryRun") == InvocationResult(b"")
    assert forward.handle_invocation("stack-Echo", b"{}", "Event") == InvocationResult(b"")
    echo_runtime.wait_for_background(5)


def test_the_endpoint_listens_on_loopback_only(endpoint):
    assert endpoint.url.startswith("http://127.0.0.1:")


@pytest.fixture
def aws_process(local_aws_environment):
    aws = EmbeddedAwsProcess()
    aws.start()
    yield aws
    aws.stop()


def test_the_child_serves_aws_on_loopback_and_stops_with_the_stack(aws_process):
    assert aws_process.endpoint_url == f"http://127.0.0.1:{aws_process.port}"
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_process.endpoint_url)
    assert dynamodb.list_tables()["TableNames"] == []
    aws_process.stop()
    assert aws_process.returncode == 0  # it stopped itself when its stdin closed: not killed


def test_the_child_ignores_ctrl_c_until_the_stack_has_stopped_its_consumers(aws_process):
    # Ctrl-C in a terminal signals the whole process group; the stack stops moto last, itself.
    os.kill(aws_process.pid, signal.SIGINT)
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_process.endpoint_url)
    assert dynamodb.list_tables()["TableNames"] == []
    assert aws_process._process.poll() is None
    aws_process.stop()
    assert aws_process.returncode == 0


def test_the_child_stops_on_sigterm(aws_process):
    process = aws_process._process
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(10) == 0
