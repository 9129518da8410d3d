"""What webhook delivery relies on in template.yaml: its queue, function, alarms, indexes and grants."""

from __future__ import annotations

import pytest

from tests.infra.cfn_template import referenced_resource

# Every function that can end a job (and so announce it), or announce a run's end or a gate's wait.
ANNOUNCERS = [
    "ApiFunction",
    "StreamFunction",
    "DispatcherFunction",
    "SweeperFunction",
    "WorkflowStepFunction",
]


def _policies(template, function: str) -> list[tuple[str, str | None]]:
    found = []
    for policy in template.props(function).get("Policies") or []:
        for name, scope in policy.items():
            if isinstance(scope, dict):  # a SAM policy template: {TableName: !Ref X}
                found.append((name, referenced_resource(next(iter(scope.values()), None)) if scope else None))
            else:  # an inline Statement list (tests/infra/test_house_rules.py checks those)
                found.append((name, None))
    return found


def test_given_the_template_then_every_function_knows_the_webhooks_table_queue_and_schedule(template):
    for function in template.of_type("AWS::Serverless::Function"):
        env = template.function_env(function)
        assert referenced_resource(env["WEBHOOKS_TABLE"]) == "WebhooksTable", function
        assert referenced_resource(env["WEBHOOK_QUEUE_URL"]) == "WebhookDeliveryQueue", function
        assert env["WEBHOOK_RETRY_SCHEDULE_SECONDS"] == {"Ref": "WebhookRetrySchedule"}


def test_given_the_retry_schedule_parameter_then_it_defaults_to_standard_webhooks(template):
    from switchyard.settings import STANDARD_RETRY_SCHEDULE

    assert template.parameters["WebhookRetrySchedule"]["Default"] == STANDARD_RETRY_SCHEDULE


def test_given_the_delivery_function_then_sqs_drives_it_with_partial_batch_failures(template):
    event = template.props("WebhookDeliveryFunction")["Events"]["Deliveries"]
    assert event["Type"] == "SQS"
    props = event["Properties"]
    assert referenced_resource(props["Queue"]) == "WebhookDeliveryQueue"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] <= 10 and props["MaximumBatchingWindowInSeconds"] == 0
    # 15 s per attempt, a batch's records concurrently: the function outlasts one attempt comfortably.
    assert template.number(template.function_prop("WebhookDeliveryFunction", "Timeout")) >= 30


def test_given_the_delivery_queue_then_its_dlq_is_alarmed(template):
    redrive = template.props("WebhookDeliveryQueue")["RedrivePolicy"]
    assert referenced_resource(redrive["deadLetterTargetArn"]) == "WebhookDeliveryDeadLetterQueue"
    alarm = template.props("WebhookDeadLetterAlarm")
    assert referenced_resource(alarm["Dimensions"][0]["Value"]) == "WebhookDeliveryDeadLetterQueue"
    assert referenced_resource(template.props("WebhookDeliveryErrorsAlarm")["Dimensions"][0]["Value"]) == (
        "WebhookDeliveryFunction"
    )


@pytest.mark.parametrize("function", ANNOUNCERS)
def test_given_a_function_that_announces_events_then_it_may_store_and_queue_them(template, function):
    policies = _policies(template, function)
    assert ("DynamoDBCrudPolicy", "WebhooksTable") in policies
    assert ("SQSSendMessagePolicy", "WebhookDeliveryQueue") in policies


def test_given_the_tables_then_the_outbox_and_wake_indexes_are_sparse_and_ordered_by_time(template):
    # One outbox of job ends for every subscriber (webhooks and workflow step tokens alike): one index.
    jobs = {i["IndexName"]: i for i in template.props("JobsTable")["GlobalSecondaryIndexes"]}
    assert [k["AttributeName"] for k in jobs["unannounced_ends"]["KeySchema"]] == [
        "unannounced",
        "finished_ms",
    ]
    ranged_by_end = [n for n, i in jobs.items() if i["KeySchema"][-1]["AttributeName"] == "finished_ms"]
    assert ranged_by_end == ["unannounced_ends"]
    webhooks = template.props("WebhooksTable")
    indexes = {i["IndexName"]: i for i in webhooks["GlobalSecondaryIndexes"]}
    assert [k["AttributeName"] for k in indexes["by_wake"]["KeySchema"]] == ["wake_part", "wake_ms"]
    assert [k["AttributeName"] for k in indexes["by_account"]["KeySchema"]] == ["account_id", "pk"]
    assert webhooks["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_given_the_outputs_then_the_webhook_resources_are_named(template):
    outputs = template.body["Outputs"]
    assert referenced_resource(outputs["WebhooksTableName"]["Value"]) == "WebhooksTable"
    assert referenced_resource(outputs["WebhookDeliveryQueueUrl"]["Value"]) == "WebhookDeliveryQueue"
    assert referenced_resource(outputs["WebhookDeliveryDeadLetterQueueUrl"]["Value"]) == (
        "WebhookDeliveryDeadLetterQueue"
    )


def test_given_the_delivery_function_then_a_whole_batch_of_slow_receivers_fits_in_its_timeout(template):
    # Every record of a batch runs at once on its own thread (switchyard/sqs_batches.py), so the slowest
    # batch is one attempt: a receiver's whole timeout, plus time to record the attempt and queue a retry.
    # The queue's visibility (>= 6 x the timeout) is checked for every queue by the house rules.
    from switchyard.settings import Settings

    attempt = Settings.model_fields["webhook_timeout_seconds"].default
    env = template.function_env("WebhookDeliveryFunction")
    assert "WEBHOOK_TIMEOUT_SECONDS" not in env  # the default is what runs
    timeout = template.number(template.function_prop("WebhookDeliveryFunction", "Timeout", 3))
    assert timeout is not None and attempt + 20 <= timeout
    batch = template.props("WebhookDeliveryFunction")["Events"]["Deliveries"]["Properties"]["BatchSize"]
    assert batch <= 10  # SQS's largest batch without a batching window
