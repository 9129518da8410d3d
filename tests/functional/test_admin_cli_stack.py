"""switchyard-admin against a deployed stack: it finds every resource name the settings require."""

from __future__ import annotations

from switchyard_admin import cli


def test_a_deployed_stack_gives_the_admin_cli_every_name_the_settings_require(monkeypatch):
    import boto3

    physical = {logical: f"physical-{logical}" for logical in cli.STACK_TABLES}

    class FakeCloudFormation:
        def describe_stack_resources(self, StackName):
            return {
                "StackResources": [
                    {"LogicalResourceId": logical, "PhysicalResourceId": value}
                    for logical, value in physical.items()
                ]
            }

    monkeypatch.setattr(boto3, "client", lambda service, region_name=None: FakeCloudFormation())
    for variable in cli.STACK_TABLES.values():
        monkeypatch.setenv(variable, "unset")  # so that what the CLI writes is undone after the test
    cli.use_deployed_stack("switchyard-dev", "us-east-1")
    from switchyard.settings import Settings

    settings = Settings()
    assert settings.webhooks_table == "physical-WebhooksTable"
    assert settings.webhook_queue_url == "physical-WebhookDeliveryQueue"
    assert settings.accounts_table == "physical-AccountsTable"
