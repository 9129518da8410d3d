"""Fixtures of the async-jobs tests: fast dispatcher settings and a harness that drives the dispatcher.

A test module sets `JOB_SETTINGS` (environment values) to tune the dispatcher for what it tests.
"""

from __future__ import annotations

import pytest

from tests.conftest import reset_switchyard_caches
from tests.functional.jobs_harness import JobsHarness

# No waiting between attempts or for slots: tests drive the dispatcher themselves.
FAST_DISPATCH = {"RETRY_BACKOFF_BASE_SECONDS": "0", "CAPACITY_WAIT_SECONDS": "0"}


@pytest.fixture
def jobs_env(aws_stack, monkeypatch, request):
    for name, value in {**FAST_DISPATCH, **getattr(request.module, "JOB_SETTINGS", {})}.items():
        monkeypatch.setenv(name, value)
    reset_switchyard_caches()
    return aws_stack


@pytest.fixture
def harness(jobs_env) -> JobsHarness:
    return JobsHarness(jobs_env.environment)
