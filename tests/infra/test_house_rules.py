"""House rules on template.yaml (DESIGN.md), each also proven on a small template that breaks it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.infra.cfn_template import (
    DeclaredMetric,
    Template,
    alarm_problems,
    bucket_grant_problems,
    build_problems,
    job_timeout_problems,
    log_group_problems,
    metric_problems,
    policy_problems,
    queue_problems,
    retention_problems,
    runtime_problems,
    section_order_problems,
    settings_environment_problems,
    state_machine_definitions,
    state_machine_grant_problems,
    state_machine_problems,
    used_actions,
)


def small(text: str, root: Path | None = None) -> Template:
    return Template.from_text(textwrap.dedent(text), root)


def declared_metrics() -> dict[str, DeclaredMetric]:
    """What the code emits, as switchyard/metrics.py declares it (tests/unit/test_metrics.py checks that
    each declaring function emits exactly that, and that each is called)."""
    from switchyard.metrics import METRICS, dimension_values

    return {
        name: DeclaredMetric(
            tuple(d.value for d in spec.dimensions),
            {d.value: frozenset(values) for d, values in dimension_values(spec).items()},
        )
        for name, spec in METRICS.items()
    }


# ------------------------------------------------------------------ the stack as it is


def test_given_the_template_then_its_sections_are_in_house_order(template):
    assert section_order_problems(template) == []


def test_given_the_template_then_every_function_logs_to_its_own_log_group_with_retention(template):
    assert template.of_type("AWS::Serverless::Function"), "the stack has functions"
    assert log_group_problems(template) == []


def test_given_the_template_then_every_function_runs_python313_on_arm64(template):
    assert runtime_problems(template) == []


def test_given_the_template_then_every_function_and_layer_has_a_makefile_target(template):
    assert build_problems(template) == []


def test_given_the_template_then_iam_is_policy_templates_scoped_to_one_resource(template):
    assert policy_problems(template) == []


def test_given_the_template_then_every_function_gets_every_required_setting(template):
    from switchyard.settings import Settings

    required = Settings.required_variables()
    assert "JOBS_QUEUE_URL" in required and "WORKFLOW_STATE_MACHINE_ARN" in required
    assert settings_environment_problems(template, required) == []


def test_given_the_template_then_every_queue_has_a_dlq_and_a_long_enough_visibility_timeout(template):
    assert queue_problems(template) == []


def test_given_the_template_then_a_provider_call_can_never_outlive_its_jobs_lease(template):
    assert template.parameters["JobUpstreamTimeoutSeconds"]["AllowedValues"], "every value is checked"
    assert job_timeout_problems(template) == []


def test_given_the_template_then_every_table_and_bucket_holding_user_data_expires_it(template):
    assert retention_problems(template) == []
    ttl = {
        name: (template.props(name).get("TimeToLiveSpecification") or {}).get("AttributeName")
        for name in ("JobsTable", "BatchesTable", "RunsTable", "ProvidersTable")
    }
    assert ttl == dict.fromkeys(ttl, "expires_at")  # the attribute switchyard/retention.py writes
    rule = template.props("MediaBucket")["LifecycleConfiguration"]["Rules"][0]
    assert rule["ExpirationInDays"] == {"Ref": "RetentionDays"}
    assert template.parameters["RetentionDays"]["Default"] == 30
    assert template.function_env("ApiFunction")["RETENTION_DAYS"] == {"Ref": "RetentionDays"}


def test_given_the_template_then_no_function_may_delete_media_or_change_the_buckets_rules(template):
    assert bucket_grant_problems(template) == []


def test_given_the_template_then_the_state_machine_gets_only_what_its_states_call_and_logs(template):
    definitions = state_machine_definitions(template)
    assert used_actions(definitions["WorkflowStateMachine"], "dynamodb") == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }
    assert state_machine_grant_problems(template, definitions) == []


def test_given_the_template_then_every_state_machine_definition_exists_and_is_sound(template):
    assert state_machine_problems(template) == []


def test_given_the_template_then_every_alarm_says_what_to_check_first_names_its_runbook_and_notifies(
    template, repo_root
):
    assert len(template.of_type("AWS::CloudWatch::Alarm")) >= 8
    assert alarm_problems(template, repo_root) == []


def test_given_the_template_then_every_metric_a_widget_or_alarm_reads_is_one_the_code_emits(template):
    assert metric_problems(template, declared_metrics()) == []


# ------------------------------------------------------------------ the rules catch what they should


def test_given_a_function_without_log_group_then_the_logging_rule_flags_it():
    t = small(
        """
        Globals:
          Function: {LoggingConfig: {LogGroup: !Ref Shared}}
        Resources:
          Shared: {Type: AWS::Logs::LogGroup, Properties: {}}
          Covered: {Type: AWS::Serverless::Function, Properties: {}}
          Bare:
            Type: AWS::Lambda::Function
            Properties: {}
        """
    )

    assert log_group_problems(t) == [
        "log group Shared has no RetentionInDays",
        "function Bare has no LoggingConfig.LogGroup naming a log group of the stack",
    ]


def test_given_a_function_of_the_shared_layer_without_a_required_variable_then_the_settings_rule_flags_it():
    t = small(
        """
        Globals:
          Function:
            Layers: [!Ref SharedLayer]
            Environment: {Variables: {JOBS_TABLE: !Ref Jobs}}
        Resources:
          SharedLayer: {Type: AWS::Serverless::LayerVersion}
          Jobs: {Type: AWS::DynamoDB::Table}
          Queue: {Type: AWS::SQS::Queue}
          Given:
            Type: AWS::Serverless::Function
            Properties: {Environment: {Variables: {JOBS_QUEUE_URL: !Ref Queue}}}
          Missing: {Type: AWS::Serverless::Function}
          Blank:
            Type: AWS::Serverless::Function
            Properties: {Environment: {Variables: {JOBS_QUEUE_URL: ""}}}
          NoLayer:
            Type: AWS::Lambda::Function
            Properties: {}
        """
    )

    assert settings_environment_problems(t, ["JOBS_TABLE", "JOBS_QUEUE_URL"]) == [
        "function Missing runs SharedLayer but its Environment has no JOBS_QUEUE_URL",
        "function Blank runs SharedLayer but its Environment has no JOBS_QUEUE_URL",
    ]


QUEUES = """
Parameters:
  WorkerTimeout: {Type: Number, Default: 60}
Globals:
  Function: {Timeout: 30}
Resources:
  JobsDlq: {Type: AWS::SQS::Queue}
  JobsQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: {visibility}
      RedrivePolicy: {deadLetterTargetArn: !GetAtt JobsDlq.Arn, maxReceiveCount: 5}
  OrphanQueue: {Type: AWS::SQS::Queue}
  Dispatcher:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: !Ref WorkerTimeout
      Events:
        Jobs:
          Type: SQS
          Properties: {Queue: !GetAtt JobsQueue.Arn, MaximumBatchingWindowInSeconds: {window}}
  Sweeper:
    Type: AWS::Serverless::Function
  SweeperMapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties: {FunctionName: !Ref Sweeper, EventSourceArn: !GetAtt JobsQueue.Arn}
"""


def queues(visibility: int, window: int = 0) -> Template:
    text = QUEUES.replace("{visibility}", str(visibility)).replace("{window}", str(window))
    return small(text)


def test_given_a_queue_without_dlq_then_the_queue_rule_flags_it_but_not_the_dlq_itself():
    assert queue_problems(queues(360)) == ["queue OrphanQueue has no RedrivePolicy.deadLetterTargetArn (DLQ)"]


def test_given_visibility_below_six_times_the_consumer_timeout_then_the_queue_rule_flags_it():
    problems = queue_problems(queues(359))

    assert "queue JobsQueue: VisibilityTimeout 359s < 6 x Dispatcher Timeout 60s" in problems
    assert not any("Sweeper" in p for p in problems), "Sweeper's 30 s (from Globals) is covered"


def test_given_a_batching_window_then_the_queue_rule_adds_it_to_six_times_the_timeout():
    assert any("batching window 5s" in p for p in queue_problems(queues(362, window=5)))
    assert not any("JobsQueue" in p for p in queue_problems(queues(365, window=5)))


TIMEOUTS = """
Parameters:
  Deadline: {Type: Number, Default: 60, AllowedValues: [60, 600]}
Mappings:
  Derived:
    "60": {Timeout: 90, Lease: 120, Visibility: 541}
    "600": {Timeout: 610, Lease: 615, Visibility: 3000}
Globals:
  Function:
    Environment:
      Variables:
        JOB_UPSTREAM_TIMEOUT_SECONDS: !Ref Deadline
        JOB_LEASE_SECONDS: !FindInMap [Derived, !Ref Deadline, Lease]
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: !FindInMap [Derived, !Ref Deadline, Visibility]}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: !FindInMap [Derived, !Ref Deadline, Timeout]
      Events:
        Jobs:
          Type: SQS
          Properties: {Queue: !GetAtt Jobs.Arn, MaximumBatchingWindowInSeconds: 1}
"""


def test_given_derived_timeouts_that_do_not_line_up_then_the_timeout_rule_flags_each_allowed_value():
    t = small(TIMEOUTS)

    assert job_timeout_problems(t, parameter="Deadline", consumer="Worker", queue="Jobs") == [
        # 60 is fine; 600 leaves 10 s to store, a lease 5 s past the timeout, and too short a visibility.
        "Deadline=600: Worker Timeout 610s < call deadline 600s + 20s to store",
        "Deadline=600: lease 615s does not outlive Worker Timeout 610s by 15s",
        "Deadline=600: Jobs VisibilityTimeout 3000s < 6 x 610s + 1s",
    ]


def test_given_a_deadline_parameter_without_allowed_values_then_the_timeout_rule_cannot_pass():
    t = small(TIMEOUTS.replace(", AllowedValues: [60, 600]", ""))

    assert job_timeout_problems(t, parameter="Deadline", consumer="Worker", queue="Jobs") == [
        "parameter Deadline has no AllowedValues: the timeouts derived from it cannot be checked"
    ]


def test_given_tables_and_buckets_that_keep_everything_then_the_retention_rule_flags_them():
    t = small(
        """
        Resources:
          Kept: {Type: AWS::DynamoDB::Table, Properties: {}}
          Disabled:
            Type: AWS::DynamoDB::Table
            Properties: {TimeToLiveSpecification: {AttributeName: expires_at, Enabled: false}}
          Expiring:
            Type: AWS::DynamoDB::Table
            Properties: {TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}}
          Accounts:
            Type: AWS::DynamoDB::Table
            Metadata: {RetentionExempt: kept until deleted}
          Forever: {Type: AWS::S3::Bucket, Properties: {}}
          PartlyExpiring:
            Type: AWS::S3::Bucket
            Properties:
              LifecycleConfiguration:
                Rules: [{Status: Enabled, Prefix: tmp/, ExpirationInDays: 1}]
          Expires:
            Type: AWS::S3::Bucket
            Properties:
              LifecycleConfiguration: {Rules: [{Status: Enabled, ExpirationInDays: 30}]}
        """
    )

    assert retention_problems(t) == [
        "table Kept has no TimeToLiveSpecification (or Metadata.RetentionExempt reason)",
        "table Disabled has no TimeToLiveSpecification (or Metadata.RetentionExempt reason)",
        "bucket Forever has no enabled lifecycle rule expiring every object",
        "bucket PartlyExpiring has no enabled lifecycle rule expiring every object",
    ]


def test_given_bucket_grants_beyond_object_reads_and_writes_then_the_grant_rule_flags_them():
    t = small(
        """
        Resources:
          Media: {Type: AWS::S3::Bucket}
          Crud:
            Type: AWS::Serverless::Function
            Properties: {Policies: [{S3CrudPolicy: {BucketName: !Ref Media}}]}
          Deleter:
            Type: AWS::Serverless::Function
            Properties:
              Policies:
                - Statement:
                    - {Sid: Objects, Effect: Allow, Action: [s3:GetObject, s3:DeleteObject], Resource: !Sub "${Media.Arn}/*"}
          Fine:
            Type: AWS::Serverless::Function
            Properties:
              Policies:
                - Statement:
                    - {Sid: Objects, Effect: Allow, Action: [s3:GetObject, s3:PutObject], Resource: !Sub "${Media.Arn}/*"}
        """
    )

    assert bucket_grant_problems(t) == [
        "Crud: S3CrudPolicy grants more than object reads and writes",
        "Deleter: statement Objects grants ['s3:DeleteObject']",
    ]


def test_given_inline_statements_then_the_policy_rule_wants_named_actions_on_resources_of_the_stack():
    t = small(
        """
        Resources:
          Table: {Type: AWS::DynamoDB::Table}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Policies:
                - Statement: [{Sid: Scoped, Effect: Allow, Action: [dynamodb:GetItem], Resource: !GetAtt Table.Arn}]
                - Statement: [{Sid: Wild, Effect: Allow, Action: "dynamodb:*", Resource: !GetAtt Table.Arn}]
                - Statement: [{Sid: Anywhere, Effect: Allow, Action: [dynamodb:GetItem], Resource: "*"}]
                - Statement: [{Sid: Logs, Effect: Allow, Action: [logs:CreateLogDelivery], Resource: "*"}]
        """
    )

    assert policy_problems(t) == [
        "Fn: statement Wild grants a wildcard action",
        "Fn: statement Anywhere Resource '*' names no resource of the stack",
    ]


def test_given_a_state_machine_granted_more_than_it_calls_or_without_logs_then_its_rule_flags_it():
    definition = {
        "StartAt": "Park",
        "States": {
            "Park": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:dynamodb:updateItem.waitForTaskToken",
                "Next": "Each",
            },
            "Each": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "Read",
                    "States": {
                        "Read": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem", "End": True}
                    },
                },
                "End": True,
            },
        },
    }
    t = small(
        """
        Resources:
          Runs: {Type: AWS::DynamoDB::Table}
          Logs: {Type: AWS::Logs::LogGroup, Properties: {RetentionInDays: 7}}
          Crud:
            Type: AWS::Serverless::StateMachine
            Properties:
              Policies: [{DynamoDBCrudPolicy: {TableName: !Ref Runs}}]
          Exact:
            Type: AWS::Serverless::StateMachine
            Properties:
              Logging: {Destinations: [{CloudWatchLogsLogGroup: {LogGroupArn: !GetAtt Logs.Arn}}]}
              Policies:
                - Statement:
                    - {Sid: Items, Effect: Allow, Action: [dynamodb:GetItem, dynamodb:UpdateItem, dynamodb:DeleteItem], Resource: !GetAtt Runs.Arn}
        """
    )

    assert state_machine_grant_problems(t, {"Crud": definition, "Exact": definition}) == [
        "state machine Crud: DynamoDBCrudPolicy grants more than its states use",
        "state machine Crud: its states call ['dynamodb:GetItem', 'dynamodb:UpdateItem'], not granted",
        "state machine Crud: no Logging destination that is a log group of the stack",
        "state machine Exact: granted ['dynamodb:DeleteItem'] that no state calls",
    ]


def test_given_a_wrong_runtime_or_architecture_then_the_runtime_rule_flags_it():
    t = small(
        """
        Globals:
          Function: {Runtime: python3.13, Architectures: [arm64]}
        Resources:
          Good: {Type: AWS::Serverless::Function}
          Old: {Type: AWS::Serverless::Function, Properties: {Runtime: python3.11}}
          Intel: {Type: AWS::Serverless::Function, Properties: {Architectures: [x86_64]}}
          Layer:
            Type: AWS::Serverless::LayerVersion
            Properties: {CompatibleRuntimes: [python3.12], CompatibleArchitectures: [arm64]}
        """
    )

    assert runtime_problems(t) == [
        "function Old runtime is 'python3.11', not python3.13",
        # SAM's Globals: lists are additive, so the function's own list comes after Globals'.
        "function Intel architectures are ['arm64', 'x86_64']",
        "layer Layer is not marked compatible with python3.13",
    ]


def test_given_a_missing_makefile_target_then_the_build_rule_flags_it(tmp_path):
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "Makefile").write_text("build-Other:\n\tcp *.py $(ARTIFACTS_DIR)\n")
    t = small(
        """
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: fn/}
            Metadata: {BuildMethod: makefile}
          Gone:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: gone/}
          Remote:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: s3://bucket/key.zip}
        """,
        tmp_path,
    )

    assert build_problems(t) == [
        "fn/Makefile has no build-Fn target",
        "Gone is not built with Metadata.BuildMethod: makefile",
        "Gone code folder gone/ does not exist",
    ]


def test_given_unscoped_or_inline_policies_then_the_policy_rule_flags_them():
    t = small(
        """
        Resources:
          Table: {Type: AWS::DynamoDB::Table}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Policies:
                - DynamoDBCrudPolicy: {TableName: !Ref Table}
                - DynamoDBReadPolicy: {TableName: !Sub "${Table}"}
                - DynamoDBReadPolicy: {TableName: "*"}
                - CloudWatchPutMetricPolicy: {}
                - AmazonS3FullAccess
                - Statement: [{Effect: Allow, Action: "s3:*", Resource: "*"}]
        """
    )

    problems = policy_problems(t)

    assert len(problems) == 5
    assert "Fn: DynamoDBReadPolicy.TableName names no resource of the stack" in problems
    assert "Fn: CloudWatchPutMetricPolicy is not scoped to a resource" in problems
    assert "Fn: 'AmazonS3FullAccess' is not a SAM policy template" in problems
    assert "Fn: statement ? grants a wildcard action" in problems
    assert "Fn: statement ? Resource '*' names no resource of the stack" in problems


def test_given_a_policy_scoped_by_a_resource_fixed_name_then_the_policy_rule_accepts_only_that_name():
    t = small(
        """
        Resources:
          Machine:
            Type: AWS::Serverless::StateMachine
            Properties: {Name: !Sub "${AWS::StackName}-workflow"}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Policies:
                - StepFunctionsCallbackPolicy: {StateMachineName: !Sub "${AWS::StackName}-workflow"}
                - StepFunctionsCallbackPolicy: {StateMachineName: !Sub "${AWS::StackName}-other"}
        """
    )

    assert policy_problems(t) == [
        "Fn: StepFunctionsCallbackPolicy.StateMachineName names no resource of the stack"
    ]


def test_given_unordered_sections_then_the_layout_rule_flags_them():
    t = small("Resources: {}\nGlobals: {}\nParameters: {}\n")

    assert section_order_problems(t) == [
        "sections are ['Resources', 'Globals', 'Parameters'], expected ['Parameters', 'Globals', 'Resources']"
    ]


def test_given_broken_state_machines_then_the_workflow_rule_flags_them(tmp_path):
    definition = {
        "StartAt": "Gate",
        "States": {
            "Gate": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:dynamodb:updateItem.waitForTaskToken",
                "Parameters": {"TableName": "${RunsTable}"},
                "Next": "Fan",
            },
            "Fan": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "Nowhere", "States": {"Step": {"Type": "Pass", "End": True}}}],
                "Next": "Missing",
            },
        },
    }
    (tmp_path / "statemachines").mkdir()
    (tmp_path / "statemachines" / "runner.asl.json").write_text(json.dumps(definition))
    t = small(
        """
        Resources:
          Runner:
            Type: AWS::Serverless::StateMachine
            Properties: {DefinitionUri: statemachines/runner.asl.json, DefinitionSubstitutions: {Other: x}}
          Lost:
            Type: AWS::Serverless::StateMachine
            Properties: {DefinitionUri: statemachines/lost.asl.json}
        """,
        tmp_path,
    )

    assert state_machine_problems(t) == [
        "state machine Runner.Gate: callback state without TimeoutSeconds",
        "state machine Runner.Gate: callback state without Catch",
        "state machine Runner.Fan: transition to missing state 'Missing'",
        "state machine Runner.Fan.Branches[0]: StartAt 'Nowhere' is not a state",
        "state machine Runner: ${RunsTable} has no DefinitionSubstitutions entry",
        "state machine Lost: DefinitionUri statemachines/lost.asl.json does not exist",
    ]


def test_given_what_moto_cannot_run_then_the_workflow_rule_flags_it(tmp_path):
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "Note",
                    "States": {"Note": {"Type": "Pass", "Assign": {"x": 1}, "End": True}},
                },
                "Next": "Shape",
            },
            "Shape": {"Type": "Pass", "QueryLanguage": "JSONata", "End": True},
        },
    }
    (tmp_path / "flow.asl.json").write_text(json.dumps(definition))
    t = small(
        """
        Resources:
          Flow:
            Type: AWS::Serverless::StateMachine
            Properties: {DefinitionUri: flow.asl.json}
        """,
        tmp_path,
    )

    assert state_machine_problems(t) == [
        "state machine Flow.Each: Map without MaxConcurrency",
        "state machine Flow.Each.ItemProcessor.Note: JSONata or Assign (use JSONPath; moto cannot run them)",
        "state machine Flow.Shape: JSONata or Assign (use JSONPath; moto cannot run them)",
    ]


@pytest.mark.parametrize(
    "value, expected",
    [
        (30, 30.0),
        ("45", 45.0),
        ({"Ref": "P"}, 60.0),
        ({"Ref": "Missing"}, None),
        ({"Fn::If": []}, None),
        ({"Fn::FindInMap": ["M", {"Ref": "P"}, "x"]}, 7.0),
        ({"Fn::FindInMap": ["M", "90", "x"]}, None),
    ],
)
def test_given_number_sources_then_numbers_resolve_from_literals_parameter_defaults_and_mappings(
    value, expected
):
    t = small("Parameters:\n  P: {Type: Number, Default: 60}\nMappings:\n  M:\n    '60': {x: 7}\n")

    assert t.number(value) == expected


OPERATIONS_DOC = "# Runbooks\n\n## Queue stuck\n\nWhat to do.\n"


def test_given_alarms_without_description_runbook_or_action_then_the_alarm_rule_flags_them(tmp_path):
    (tmp_path / "ops.md").write_text(OPERATIONS_DOC)
    t = small(
        """
        Resources:
          Topic: {Type: AWS::SNS::Topic}
          Good:
            Type: AWS::CloudWatch::Alarm
            Properties:
              AlarmDescription: "Jobs are stuck in the queue. Check first the dispatcher. Runbook: ops.md#queue-stuck"
              AlarmActions: [!Ref Topic]
              OKActions: [!Ref Topic]
          Silent:
            Type: AWS::CloudWatch::Alarm
            Properties: {AlarmActions: [!Ref Topic], OKActions: [!Ref Topic]}
          Unread:
            Type: AWS::CloudWatch::Alarm
            Properties:
              AlarmDescription: !Sub "Over ${Limit} jobs. Check first the dispatcher. Runbook: ops.md#queue-lost"
              AlarmActions: ["arn:aws:sns:us-east-1:123456789012:elsewhere"]
        """,
        tmp_path,
    )

    assert alarm_problems(t, tmp_path) == [
        "alarm Silent has no AlarmDescription saying what it means",
        "alarm Silent: its description does not say what to check first",
        "alarm Silent: its description names no 'Runbook: <doc>#<anchor>'",
        "alarm Unread: runbook ops.md#queue-lost does not exist",
        "alarm Unread: AlarmActions must notify an SNS topic of the stack",
        "alarm Unread: OKActions must notify an SNS topic of the stack",
        "alarm Unread: ${Limit} is not a parameter or resource",
    ]


DECLARED = {
    "JobsQueued": DeclaredMetric((), {}),
    "DispatchOutcomes": DeclaredMetric(("Outcome",), {"Outcome": frozenset({"processed", "failed"})}),
}
NAMESPACED = """
Parameters:
  Limit: {Type: Number, Default: 5}
Globals:
  Function:
    Environment: {Variables: {POWERTOOLS_METRICS_NAMESPACE: !Sub "Ours/${AWS::StackName}"}}
Resources:
  Queue: {Type: AWS::SQS::Queue}
"""


def test_given_widgets_and_alarms_reading_what_the_code_never_emits_then_the_metric_rule_flags_them():
    t = small(
        NAMESPACED
        + """
  Fine:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: !Sub "Ours/${AWS::StackName}", MetricName: JobsQueued}
  Typo:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: !Sub "Ours/${AWS::StackName}", MetricName: JobQueued}
  OtherNamespace:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: Ours, MetricName: JobsQueued}
  Math:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Metrics:
        - Id: a
          MetricStat:
            Metric:
              Namespace: !Sub "Ours/${AWS::StackName}"
              MetricName: DispatchOutcomes
              Dimensions: [{Name: Outcome, Value: lost}]
        - Id: b
          MetricStat:
            Metric: {Namespace: AWS/SQS, MetricName: ApproximateNumberOfMessagesVisible, Dimensions: [{Name: QueueName, Value: someone-elses}]}
        - Id: c
          MetricStat:
            Metric: {Namespace: AWS/SQS, MetricName: ApproximateNumberOfMessagesVisible, Dimensions: [{Name: QueueName, Value: !GetAtt Queue.QueueName}]}
        - {Id: e, Expression: a + b + c}
"""
    )

    assert metric_problems(t, DECLARED) == [
        "alarm Typo: JobQueued is not a metric the code emits",
        "alarm OtherNamespace: namespace 'Ours' is not the code's 'Ours/<AWS::StackName>'",
        "alarm Math.a: DispatchOutcomes is never emitted with Outcome='lost'",
        "alarm Math.b: AWS/SQS ApproximateNumberOfMessagesVisible QueueName='someone-elses' is not a resource of the stack",
    ]


def dashboard(body: str) -> Template:
    indented = textwrap.indent(textwrap.dedent(body).strip(), " " * 8)
    return small(
        NAMESPACED
        + "  Board:\n    Type: AWS::CloudWatch::Dashboard\n    Properties:\n      DashboardBody: !Sub |\n"
        + indented
        + "\n"
    )


def test_given_a_dashboard_whose_body_is_not_json_then_the_metric_rule_flags_it():
    t = dashboard('{"widgets": [{"type": "metric", "properties": {"metrics": [["AWS/SQS", "X"]]}},]}')

    assert [p.split(":")[0] + ":" + p.split(":")[1] for p in metric_problems(t, DECLARED)] == [
        "dashboard Board: DashboardBody is not JSON"
    ]


def test_given_dashboard_widgets_reading_unknown_metrics_or_dimensions_then_the_metric_rule_flags_them():
    t = dashboard(
        """
        {"widgets": [
          {"type": "text", "properties": {"markdown": "# ok"}},
          {"type": "metric", "properties": {"metrics": [
            ["NS", "JobsQueued", {"stat": "Maximum"}],
            ["NS", "JobsQueued", "Outcome", "processed"],
            ["NS", "DispatchOutcomes", "Outcome", "processed", {"label": "done"}],
            ["...", "failed"],
            [{"expression": "SEARCH('{\\"NS\\",Outcome} MetricName=\\"DispatchOutcomes\\"', 'Sum', 60)", "id": "e1"}],
            [{"expression": "SEARCH('{\\"NS\\",RouteGroup} MetricName=\\"Requests\\"', 'Sum', 60)", "id": "e2"}],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${Queue.QueueName}"],
            ["AWS/Lambda", "Errors", "FunctionName", "${Missing}"]
          ]}},
          {"type": "metric", "properties": {"metrics": []}}
        ]}
        """.replace("NS", "Ours/${AWS::StackName}")
    )

    assert metric_problems(t, DECLARED) == [
        "dashboard Board: ${Missing} is not a parameter or resource",
        "dashboard Board widget 1 metric 3: write every metric out (no '.' shorthand, dimension name/value pairs)",
        "dashboard Board widget 2: a metric widget without metrics",
        "dashboard Board widget 1 metric 1: JobsQueued is emitted with dimensions [], read with ['Outcome']",
        "dashboard Board widget 1 metric 5: Requests is not a metric the code emits",
    ]
