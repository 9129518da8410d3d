"""Rate limits as the official openai SDK meets them: it reads the x-ratelimit headers, retries a 429 after
the Retry-After the gateway sent, and raises RateLimitError when the limit still holds. The operator sets
one account's limits with `switchyard-admin set-limits`."""

from __future__ import annotations

import time

import openai
import pytest

from tests.e2e.conftest import admin

pytestmark = pytest.mark.e2e
MESSAGES = [{"role": "user", "content": "hi"}]


def test_the_sdk_retries_a_429_after_retry_after_then_raises_rate_limit_error(local_stack, monkeypatch):
    # Given an account limited to 3 requests a minute by its operator (not near a minute's end)
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)
    account = admin(local_stack, "create-account", "limited-team")
    limits = admin(local_stack, "set-limits", account["account_id"], "--requests-per-minute", "3")
    assert limits["requests_per_minute"] == 3 and limits["overridden"]["requests_per_minute"]
    assert admin(local_stack, "get-limits", account["account_id"])["requests_per_minute"] == 3
    client = openai.OpenAI(base_url=local_stack.openai_base_url, api_key=account["api_key"], max_retries=2)
    # When it makes three calls (admitted; nobody serves the model), every answer says where it stands
    for used in range(1, 4):
        with pytest.raises(openai.NotFoundError) as refused:
            client.chat.completions.create(model="nobody-serves-it", messages=MESSAGES)
        headers = refused.value.response.headers
        assert headers["x-ratelimit-limit-requests"] == "3"
        assert headers["x-ratelimit-remaining-requests"] == str(3 - used)
    # Then the fourth is a 429 the SDK retries twice, waiting what the gateway asked, and then raises
    waits: list[float] = []
    monkeypatch.setattr(openai._base_client.time, "sleep", waits.append)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="nobody-serves-it", messages=MESSAGES)
    response = limited.value.response
    assert response.status_code == 429
    assert limited.value.body["type"] == "rate_limit_exceeded"
    retry_after_ms = int(response.headers["retry-after-ms"])
    assert 0 < retry_after_ms <= 60_000
    assert len(waits) == 2
    assert all(0 < wait <= 60 for wait in waits)
    assert abs(waits[-1] - retry_after_ms / 1000) < 1  # what the last 429 asked for
