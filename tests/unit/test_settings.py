"""Settings fail fast: the stack's resources have no defaults, and a missing one is named."""

from __future__ import annotations

import pytest
from switchyard.settings import Settings, SettingsError, get_settings


@pytest.fixture
def environment(settings_environment, monkeypatch):
    """Every required variable set; get_settings() forgets what it read before and after each test."""
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_the_required_variables_are_the_stacks_resources():
    assert Settings.required_variables() == [
        "ACCOUNTS_TABLE",
        "API_KEYS_TABLE",
        "PROVIDERS_TABLE",
        "MEDIA_BUCKET",
        "JOBS_TABLE",
        "IDEMPOTENCY_TABLE",
        "JOBS_QUEUE_URL",
        "RUNS_TABLE",
        "WORKFLOW_STATE_MACHINE_ARN",
        "BATCHES_TABLE",
        "LIMITS_TABLE",
        "WEBHOOKS_TABLE",
        "WEBHOOK_QUEUE_URL",
    ]


def test_given_every_required_variable_then_the_settings_load_with_the_defaults_for_the_rest(environment):
    environment.setenv("JOBS_QUEUE_URL", "http://127.0.0.1:1/123456789012/jobs")

    settings = get_settings()

    assert settings.jobs_queue_url == "http://127.0.0.1:1/123456789012/jobs"
    assert settings.upstream_timeout_seconds == 120.0
    assert get_settings() is settings  # validated once


def test_given_missing_and_empty_resources_then_the_error_names_each_variable(environment):
    environment.delenv("JOBS_QUEUE_URL")
    environment.delenv("RUNS_TABLE")
    environment.setenv("WORKFLOW_STATE_MACHINE_ARN", "  ")

    with pytest.raises(SettingsError) as error:
        get_settings()

    message = str(error.value)
    assert "JOBS_QUEUE_URL is not set" in message
    assert "RUNS_TABLE is not set" in message
    assert "WORKFLOW_STATE_MACHINE_ARN is empty" in message
    assert "ACCOUNTS_TABLE" not in message


def test_given_a_tunable_of_the_wrong_type_then_the_error_names_its_variable(environment):
    environment.setenv("PROVIDER_ENDPOINT_POLICY", "everywhere")

    with pytest.raises(SettingsError, match="PROVIDER_ENDPOINT_POLICY: Input should be"):
        get_settings()


def test_given_a_lease_no_longer_than_the_call_deadline_then_the_settings_refuse_to_load(environment):
    environment.setenv("JOB_UPSTREAM_TIMEOUT_SECONDS", "240")
    environment.setenv("JOB_LEASE_SECONDS", "240")

    with pytest.raises(SettingsError, match=r"job_lease_seconds \(240\) must be longer than"):
        get_settings()
