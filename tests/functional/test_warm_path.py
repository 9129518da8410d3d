"""The warm path under real traffic: after a heartbeat, and after a pause longer than the caches last,
a request still finds its key, its providers and its rate-limit lease in memory and makes no DynamoDB
call at all (the lease is renewed in the background, services/rate_limits.py).

Under real token pacing a streamed chat answer takes seconds, and the next message comes after the user
has read it; before these guarantees every such request paid the provider-list query (~15 ms on moto)
before its first token.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import heartbeat_body, reset_switchyard_caches
from tests.functional.test_rate_limits import away_from_a_minute_boundary  # noqa: F401 - autouse: a lease lasts a minute

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hello there"}]}
# What a warm inference request asks DynamoDB: nothing. The key and the providers come from caches, the
# rate-limit admission from this instance's lease of the account's minute (services/rate_limits.py).
NO_CALLS: list[str] = []
CACHE_SECONDS = 2.0  # refresh-ahead starts 0.5 s before expiry: room for a moto query on a busy machine (1 s, 0.25 s of room, missed once in ~5 runs under make test)


@pytest.fixture(autouse=True)
def short_lived_caches(aws_stack, monkeypatch):
    monkeypatch.setenv("PROVIDER_CACHE_SECONDS", str(CACHE_SECONDS))
    monkeypatch.setenv("AUTH_CACHE_SECONDS", str(CACHE_SECONDS))
    monkeypatch.setenv("CACHE_KEEP_WARM_SECONDS", "60")
    reset_switchyard_caches()


def warm_up(api, caller):
    """Warm the key and provider caches and the rate-limit lease: an instance's first request of an
    account leases one place (it learns the account's limit), its second a block."""
    for _ in range(2):
        api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)


@pytest.fixture
def request_aws_calls(monkeypatch):
    """AWS operations made by this (the request's) thread from now on; background reloads are not counted."""
    import botocore.client

    calls: list[str] = []
    real = botocore.client.BaseClient._make_api_call
    request_thread = threading.get_ident()

    def counting(self, operation, params):
        if threading.get_ident() == request_thread:
            calls.append(operation)
        return real(self, operation, params)

    def start() -> list[str]:
        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
        return calls

    return start


def test_after_a_heartbeat_the_next_request_makes_no_dynamodb_read(
    api, caller, online_provider, request_aws_calls
):
    warm_up(api, caller)
    beat = api(
        "POST",
        "/api/inference/agent/heartbeat/",
        body=heartbeat_body(online_provider.url),
        headers=caller.headers,
    )
    assert beat.status == 200

    calls = request_aws_calls()
    assert api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers).status == 200
    assert calls == NO_CALLS


def test_a_heartbeat_that_changes_the_models_is_routed_by_at_once(api, caller, online_provider):
    api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    models = [{"id": "renamed-llm", "service_type": "llm"}]
    beat = heartbeat_body(online_provider.url, models=models)
    api("POST", "/api/inference/agent/heartbeat/", body=beat, headers=caller.headers)

    api("POST", "/v1/chat/completions", body={**CHAT, "model": "renamed-llm"}, headers=caller.headers)
    assert online_provider.last_request("/v1/chat/completions")["json"]["model"] == "renamed-llm"
    gone = api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    assert gone.status == 404 and gone.json()["error"]["type"] == "no_provider"


def test_after_a_pause_longer_than_the_caches_last_a_request_makes_no_dynamodb_read(
    api, caller, online_provider, request_aws_calls
):
    warm_up(api, caller)
    time.sleep(2.5 * CACHE_SECONDS)  # a user reading the answer: both entries would have expired twice over

    calls = request_aws_calls()
    assert api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers).status == 200
    assert calls == NO_CALLS
