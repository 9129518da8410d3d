"""The template loader (the one the infra rules read the template with too) and the intrinsic-function
resolver (no AWS involved)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from switchyard_local.provision import provisioning_order
from switchyard_local.template import (
    ResourceReference,
    TemplateError,
    TemplateResolver,
    apply_globals,
    load_template,
    load_yaml,
    resolve_parameters,
)

SCRATCH_TEMPLATE = """
AWSTemplateFormatVersion: 2010-09-09
Parameters:
  Stage: {Type: String, Default: dev}
  Size: {Type: Number, Default: 3}
  Policy: {Type: String, Default: public, AllowedValues: [public, loopback]}
  Zones: {Type: CommaDelimitedList, Default: "a,b"}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
  Both: !And [!Condition NotProd, !Equals [!Ref Size, 3]]
Globals:
  Function:
    Timeout: 10
    Layers: [GlobalLayer]
    Environment:
      Variables: {SHARED: one, TABLE: !Ref Table}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {}
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt DeadLetters.Arn, maxReceiveCount: 3}
  DeadLetters:
    Type: AWS::SQS::Queue
  OnlyInProd:
    Type: AWS::SQS::Queue
    Condition: IsProd
  Worker:
    Type: AWS::Serverless::Function
    DependsOn: Table
    Properties:
      Timeout: 20
      Layers: [OwnLayer]
      Environment:
        Variables: {TABLE: overridden, QUEUE: !Ref Queue}
"""


@pytest.fixture
def template(tmp_path: Path) -> dict:
    path = tmp_path / "template.yaml"
    path.write_text(SCRATCH_TEMPLATE)
    return load_template(path)


def resolver_for(template: dict, overrides: dict | None = None) -> TemplateResolver:
    provisioned = {
        "Table": ResourceReference("the-table", {"Arn": "arn:table", "StreamArn": "arn:stream"}),
        "Queue": ResourceReference("http://q/queue", {"Arn": "arn:queue", "QueueName": "queue"}),
        "DeadLetters": ResourceReference("http://q/dlq", {"Arn": "arn:dlq"}),
    }
    return TemplateResolver(template, resolve_parameters(template, overrides), provisioned.get)


def test_short_tags_load_as_long_form_and_dates_stay_strings(template: dict) -> None:
    # Given the scratch template, When loaded, Then tags are CloudFormation's long form
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert template["Conditions"]["NotProd"] == {"Fn::Not": [{"Condition": "IsProd"}]}
    redrive = template["Resources"]["Queue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetters", "Arn"]}


def test_every_short_form_becomes_its_json_form() -> None:
    body = load_yaml(
        textwrap.dedent(
            """
            A: !Ref Table
            B: !GetAtt Queue.Arn
            C: !Sub "${AWS::StackName}-x"
            D: !If [Cond, !Ref X, !Ref AWS::NoValue]
            E: !Equals [!Ref P, 0]
            F: !GetAtt [Fn, Arn]
            G: !Select [0, !Split [",", !Ref L]]
            """
        )
    )

    assert body["A"] == {"Ref": "Table"}
    assert body["B"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert body["C"] == {"Fn::Sub": "${AWS::StackName}-x"}
    assert body["D"] == {"Fn::If": ["Cond", {"Ref": "X"}, {"Ref": "AWS::NoValue"}]}
    assert body["E"] == {"Fn::Equals": [{"Ref": "P"}, 0]}
    assert body["F"] == {"Fn::GetAtt": ["Fn", "Arn"]}
    assert body["G"] == {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "L"}]}]}


def test_the_project_template_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    assert "ApiFunction" in load_template(root / "template.yaml")["Resources"]


def test_parameters_take_defaults_overrides_and_check_allowed_values(template: dict) -> None:
    assert resolve_parameters(template) == {
        "Stage": "dev",
        "Size": "3",
        "Policy": "public",
        "Zones": ["a", "b"],
    }
    assert resolve_parameters(template, {"Policy": "loopback", "Size": 5})["Size"] == "5"
    with pytest.raises(TemplateError, match="not one of"):
        resolve_parameters(template, {"Policy": "anything"})
    with pytest.raises(TemplateError, match="Unknown parameter"):
        resolve_parameters(template, {"Nope": "x"})


def test_conditions_and_if_with_no_value(template: dict) -> None:
    resolver = resolver_for(template)
    assert resolver.condition("NotProd") and resolver.condition("Both")
    assert not resolver.resource_enabled("OnlyInProd")
    value = {"Keep": 1, "Drop": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]}}
    assert resolver.resolve(value) == {"Keep": 1}
    assert resolver.resolve(["a", {"Fn::If": ["IsProd", "b", {"Ref": "AWS::NoValue"}]}]) == ["a"]
    prod = resolver_for(template, {"Stage": "prod"})
    assert prod.resource_enabled("OnlyInProd") and not prod.condition("Both")


def test_ref_get_att_and_pseudo_parameters(template: dict) -> None:
    resolver = resolver_for(template)
    assert resolver.resolve({"Ref": "Queue"}) == "http://q/queue"
    assert resolver.resolve({"Fn::GetAtt": ["Table", "StreamArn"]}) == "arn:stream"
    assert resolver.resolve({"Fn::GetAtt": "Queue.QueueName"}) == "queue"
    assert resolver.resolve({"Ref": "AWS::AccountId"}) == "123456789012"
    assert resolver.resolve({"Ref": "AWS::StackName"}) == "switchyard-local"
    assert resolver.resolve({"Ref": "AWS::Partition"}) == "aws"
    with pytest.raises(TemplateError):
        resolver.resolve({"Ref": "Missing"})


def test_sub_join_select_split(template: dict) -> None:
    resolver = resolver_for(template)
    sub = {"Fn::Sub": "${AWS::Region}/${Stage}/${Table}/${Queue.Arn}/${!Literal}"}
    assert resolver.resolve(sub) == "us-east-1/dev/the-table/arn:queue/${Literal}"
    with_variables = {"Fn::Sub": ["${Name}-${Stage}", {"Name": {"Ref": "Table"}}]}
    assert resolver.resolve(with_variables) == "the-table-dev"
    assert resolver.resolve({"Fn::Join": ["-", [{"Ref": "Stage"}, "x", {"Ref": "Size"}]]}) == "dev-x-3"
    assert resolver.resolve({"Fn::Select": [1, {"Ref": "Zones"}]}) == "b"
    assert resolver.resolve({"Fn::Split": [",", "p,q"]}) == ["p", "q"]


def test_unprovisioned_resources_resolve_to_stable_placeholders(tmp_path: Path) -> None:
    # Given a function that refers to an API and a layer the local stack does not provision
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  Api: {Type: AWS::Serverless::HttpApi}\n")
    resolver = TemplateResolver(load_template(path), {}, lambda _: None)
    # Then Ref and GetAtt still resolve, to recognisable names
    assert resolver.resolve({"Ref": "Api"}) == "switchyard-local-Api"
    assert resolver.resolve({"Fn::GetAtt": ["ApiUrl", "FunctionUrl"]}).endswith("FunctionUrl")


def test_globals_merge_maps_concatenate_lists_and_let_the_function_win(template: dict) -> None:
    worker = template["Resources"]["Worker"]
    merged = apply_globals(template, "AWS::Serverless::Function", worker["Properties"])
    assert merged["Timeout"] == 20
    assert merged["Layers"] == ["GlobalLayer", "OwnLayer"]
    variables = resolver_for(template).resolve(merged["Environment"]["Variables"])
    assert variables == {"SHARED": "one", "TABLE": "overridden", "QUEUE": "http://q/queue"}


def test_provisioning_order_puts_dependencies_first(template: dict) -> None:
    resources = template["Resources"]
    resources["Worker"]["Properties"] = apply_globals(
        template, "AWS::Serverless::Function", resources["Worker"]["Properties"]
    )
    order = provisioning_order(resources, ["Worker", "Queue", "DeadLetters", "Table"])
    assert order.index("DeadLetters") < order.index("Queue") < order.index("Worker")
    assert order.index("Table") < order.index("Worker")


def test_circular_references_are_refused() -> None:
    resources = {
        "A": {"Type": "AWS::SQS::Queue", "Properties": {"X": {"Ref": "B"}}},
        "B": {"Type": "AWS::SQS::Queue", "Properties": {"X": {"Fn::Sub": "${A.Arn}"}}},
    }
    with pytest.raises(TemplateError, match="Circular"):
        provisioning_order(resources, ["A", "B"])


def test_the_local_stack_s_parameter_defaults_are_values_the_template_allows() -> None:
    from switchyard_local.local_stack import LOCAL_PARAMETER_DEFAULTS

    parameters = load_template(Path(__file__).parents[2] / "template.yaml")["Parameters"]
    for name, value in LOCAL_PARAMETER_DEFAULTS.items():
        spec = parameters[name]
        if spec["Type"] == "Number":
            assert (
                spec.get("MinValue", float("-inf")) <= float(value) <= spec.get("MaxValue", float("inf"))
            ), name
        assert value in [str(allowed) for allowed in spec.get("AllowedValues", [value])], name
