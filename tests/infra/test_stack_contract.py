"""What other parts of Switchyard rely on in template.yaml, samconfig.toml and the build files."""

from __future__ import annotations

import os
import re
import shlex
import tomllib

import pytest

from tests.infra.cfn_template import referenced_resource, sub_variables

HANDLER_SETTINGS = (
    "PROVIDER_ENDPOINT_POLICY",
    "PROVIDER_OFFLINE_AFTER_SECONDS",
    "UPSTREAM_TIMEOUT_SECONDS",
    "ASYNC_ENABLED",
)
OUTPUTS = (
    "ApiBaseUrl",
    "StreamingUrl",
    "AccountsTableName",
    "ApiKeysTableName",
    "ProvidersTableName",
    "MediaBucketName",
)
LWA_LAYER_PREFIX = "arn:aws:lambda:${AWS::Region}:753240598075:layer:LambdaAdapterLayerArm64:"


# ------------------------------------------------------------------ names other code reads


@pytest.mark.parametrize(
    "logical_id",
    [
        "AccountsTable",
        "ApiKeysTable",
        "ProvidersTable",
        "MediaBucket",
        "SharedLayer",
        "HttpApi",
        "ApiFunction",
        "StreamFunction",
    ],
)
def test_given_the_template_then_the_shared_logical_ids_exist(template, logical_id):
    assert logical_id in template.resources


@pytest.mark.parametrize("function", ["ApiFunction", "StreamFunction"])
def test_given_a_function_then_it_gets_every_handler_setting_from_the_stack(template, function):
    env = template.function_env(function)

    for variable in HANDLER_SETTINGS:
        assert variable in env, variable


def test_given_the_admin_cli_then_it_resolves_every_required_setting_to_the_resource_the_template_names(
    template,
):
    # switchyard-admin --stack-name sets each variable from a deployed stack's physical ids.
    from switchyard.settings import Settings
    from switchyard_admin.cli import STACK_RESOURCES

    env = template.function_env("ApiFunction")
    assert sorted(STACK_RESOURCES.values()) == sorted(Settings.required_variables())
    for resource, variable in STACK_RESOURCES.items():
        value = env[variable]
        named = referenced_resource(value)
        if named is None:  # a Sub of the resource's fixed name (see WORKFLOW_STATE_MACHINE_ARN's comment)
            fixed_name = template.props(resource)["Name"]["Fn::Sub"]
            assert value["Fn::Sub"].endswith(f":{fixed_name}"), variable
        else:
            assert named == resource, variable


def test_given_the_template_then_it_outputs_the_urls_and_names_users_and_tools_need(template):
    outputs = template.body["Outputs"]

    assert set(OUTPUTS) <= set(outputs)
    assert referenced_resource(outputs["StreamingUrl"]["Value"]) == "StreamFunctionUrl"
    for name, resource in [
        ("AccountsTableName", "AccountsTable"),
        ("ApiKeysTableName", "ApiKeysTable"),
        ("ProvidersTableName", "ProvidersTable"),
        ("MediaBucketName", "MediaBucket"),
    ]:
        assert referenced_resource(outputs[name]["Value"]) == resource
    assert {"HttpApi", "Stage"} <= sub_variables(outputs["ApiBaseUrl"]["Value"]["Fn::Sub"])


def test_given_the_sync_path_then_the_gateway_gives_up_before_the_http_api_does(template):
    upstream = template.parameters["UpstreamTimeoutSeconds"]
    event = template.props("ApiFunction")["Events"]["AnyRoute"]["Properties"]

    assert event["TimeoutInMillis"] <= 30_000
    assert upstream["MaxValue"] * 1000 < event["TimeoutInMillis"]
    function_timeout = template.number(template.function_prop("ApiFunction", "Timeout"))
    assert function_timeout * 1000 >= event["TimeoutInMillis"]


# ------------------------------------------------------------------ the streaming front


def test_given_the_stream_function_then_it_runs_under_the_web_adapter_in_streaming_mode(template):
    props = template.props("StreamFunction")
    env = template.function_env("StreamFunction")

    assert props["Handler"] == "run.sh"
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert props["FunctionUrlConfig"] == {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}
    adapter = [
        layer
        for layer in template.function_layers("StreamFunction")
        if isinstance(layer, dict) and str(layer.get("Fn::Sub", "")).startswith(LWA_LAYER_PREFIX)
    ]
    assert adapter == [{"Fn::Sub": LWA_LAYER_PREFIX + "${LambdaWebAdapterLayerVersion}"}]
    assert {"Ref": "SharedLayer"} in template.function_layers("StreamFunction")


def test_given_the_stream_function_then_its_timeouts_outlast_the_upstream_call(template):
    function_timeout = template.number(template.props("StreamFunction")["Timeout"])
    upstream = template.number(template.function_env("StreamFunction")["UPSTREAM_TIMEOUT_SECONDS"])

    assert function_timeout >= 300
    assert upstream < function_timeout


def test_given_the_stream_function_then_a_stream_s_total_deadline_ends_before_its_invocation(template):
    # A stream still running when the Lambda timeout strikes is cut without an error event or a log line.
    env = template.function_env("StreamFunction")
    deadline = template.parameters["StreamDeadlineSeconds"]
    timeout = template.parameters["StreamFunctionTimeout"]

    assert env["STREAM_DEADLINE_SECONDS"] == {"Ref": "StreamDeadlineSeconds"}
    assert template.number(env["STREAM_DEADLINE_SECONDS"]) < template.number(
        template.props("StreamFunction")["Timeout"]
    )
    assert deadline["MaxValue"] < timeout["MaxValue"]
    # Its size cap is every provider answer's (Globals): one parameter, MaxProviderResponseBytes.
    assert template.function_env("StreamFunction")["PROVIDER_RESPONSE_MAX_BYTES"] == {
        "Ref": "MaxProviderResponseBytes"
    }


def test_given_run_sh_then_it_is_executable_and_serves_the_front_on_loopback_at_the_adapter_port(
    template, repo_root
):
    run_sh = repo_root / "functions" / "stream" / "run.sh"
    text = run_sh.read_text()
    port = template.function_env("StreamFunction")["AWS_LWA_PORT"]

    assert os.access(run_sh, os.X_OK)
    assert text.startswith("#!/bin/bash\n")
    assert re.search(r"exec python -m uvicorn switchyard\.front\.lambda_app:app\b", text)
    # The front's own protocol (a stream's head and first event in one segment), importable by that name.
    protocol = re.search(r"--http (\S+)", text)
    assert protocol is not None
    from switchyard.front.http_protocol import CoalescingHttpToolsProtocol
    from uvicorn.importer import import_from_string

    assert import_from_string(protocol.group(1)) is CoalescingHttpToolsProtocol
    assert "--host 127.0.0.1" in text
    assert f'--port "${{AWS_LWA_PORT:-{port}}}"' in text
    assert "0.0.0.0" not in text  # noqa: S104 - proving it is not bound


# ------------------------------------------------------------------ build inputs


def _requirement_pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version
    return pins


def test_given_the_layer_requirements_then_they_pin_the_runtime_deps_of_pyproject_minus_boto3_and_yaml(
    repo_root,
):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    expected = _requirement_pins(project["dependencies"])
    expected.pop("boto3")
    expected.pop("pyyaml")

    layer_folder = repo_root / "layers" / "shared"
    layer = _requirement_pins((layer_folder / "requirements.txt").read_text().splitlines())
    without_deps = _requirement_pins((layer_folder / "requirements-no-deps.txt").read_text().splitlines())

    assert not set(layer) & set(without_deps)
    assert {**layer, **without_deps} == expected
    assert all({**layer, **without_deps}.values()), "every layer requirement is pinned with =="


# ------------------------------------------------------------------ samconfig.toml


@pytest.fixture(scope="module")
def samconfig(repo_root):
    return tomllib.loads((repo_root / "samconfig.toml").read_text())


@pytest.mark.parametrize("env, stack", [("default", "switchyard-dev"), ("prod", "switchyard-prod")])
def test_given_samconfig_then_each_environment_deploys_its_own_stack_with_the_needed_capabilities(
    samconfig, env, stack
):
    deploy = samconfig[env]["deploy"]["parameters"]

    assert samconfig[env]["global"]["parameters"]["stack_name"] == stack
    assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True


@pytest.mark.parametrize("env", ["default", "prod"])
def test_given_samconfig_overrides_then_each_names_a_template_parameter_with_an_allowed_value(
    samconfig, template, env
):
    text = samconfig[env]["deploy"]["parameters"]["parameter_overrides"]
    overrides = dict(pair.split("=", 1) for pair in shlex.split(text))

    assert overrides["Stage"] == ("dev" if env == "default" else "prod")
    for name, value in overrides.items():
        parameter = template.parameters[name]
        if "AllowedValues" in parameter:
            assert value in [str(v) for v in parameter["AllowedValues"]], name
        if "MinValue" in parameter:
            assert float(value) >= parameter["MinValue"], name
        if "MaxValue" in parameter:
            assert float(value) <= parameter["MaxValue"], name
        if "AllowedPattern" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], value), name
