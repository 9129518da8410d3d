"""Provider registration against hostile endpoints and secrets, and a provider that is the gateway itself:
refused at the heartbeat where that can be known, and stopped after one refused call where it cannot."""

from __future__ import annotations

import ipaddress

import boto3
import pytest

from tests.conftest import FAKE_MODELS, heartbeat_body
from tests.functional.test_jobs_lifecycle import job, submit

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}]}


def heartbeat(api, caller, **fields):
    body = {**heartbeat_body("http://127.0.0.1:9"), **fields}
    return api("POST", "/api/inference/agent/heartbeat/", body=body, headers=caller.headers)


def stored_providers(aws_stack) -> list[dict]:
    return boto3.resource("dynamodb").Table(aws_stack.environment["PROVIDERS_TABLE"]).scan()["Items"]


@pytest.mark.parametrize(
    ("endpoint_url", "says"),
    [
        ("http://127.0.0.1:99999", "port that is not a number from 1 to 65535"),
        ("http://127.0.0.1:9100/\tv1", "whitespace, control characters"),
        ("http://xn--zz.example.net:9100", "not valid IDNA"),
        ("http://169.254.169.254", "link-local"),
        ("http://[::ffff:169.254.169.254]", "IPv4-mapped"),
        ("https://abc.execute-api.us-east-1.amazonaws.com/dev", "API Gateway or Lambda Function URL"),
        ("http://2130706433:9100", "ambiguous numeric host"),
    ],
)
def test_a_bad_endpoint_is_a_clear_400_and_nothing_is_stored(api, caller, aws_stack, endpoint_url, says):
    response = heartbeat(api, caller, endpoint_url=endpoint_url)
    assert response.status == 400, response.content
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request", "endpoint_url")
    assert says in error["message"]
    assert stored_providers(aws_stack) == []


def test_a_secret_that_is_an_api_key_is_refused(api, caller, new_caller, aws_stack):
    other = new_caller("team-b")
    for secret in (caller.api_key, other.api_key, "sy-0123456789abcdefghijklmnop"):
        response = heartbeat(api, caller, secret=secret)
        assert response.status == 400, response.content
        assert response.json()["error"]["param"] == "secret"
    assert stored_providers(aws_stack) == []


def test_max_concurrency_has_an_upper_bound(api, caller):
    assert heartbeat(api, caller, max_concurrency=256).status == 200
    response = heartbeat(api, caller, max_concurrency=257)
    assert response.status == 400
    assert response.json()["error"]["param"] == "max_concurrency"


def test_a_name_that_rebinds_after_the_heartbeat_is_refused_when_the_gateway_connects(
    api, caller, online_provider, monkeypatch
):
    # Given a provider registered under a name that resolved to its (allowed) loopback address
    from switchyard import endpoint_policy

    port = int(online_provider.url.rsplit(":", 1)[1])
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    last: list[str] = []

    def resolver(host, _port):
        assert host == "rebind.example.net"
        last[:] = next(answers, last)
        return [ipaddress.ip_address(a) for a in last]

    monkeypatch.setattr(endpoint_policy, "resolve_with_system_dns", resolver)
    body = heartbeat_body(f"http://rebind.example.net:{port}", provider_id="rebinder", models=FAKE_MODELS[:1])
    api("POST", "/api/inference/agent/heartbeat/", body={**body}, headers=caller.headers)
    # (the fixture's own provider, on 127.0.0.1, goes offline: only the rebinding one serves the model)
    api(
        "POST",
        "/api/inference/agent/heartbeat/",
        body=heartbeat_body("http://127.0.0.1:9", models=[]),
        headers=caller.headers,
    )
    calls_before = len(online_provider.server.history.all())
    # When the name now answers the metadata service's address, the call is refused before it connects
    response = api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    assert response.status == 502
    assert "169.254.169.254 is a link-local address" in response.json()["error"]["message"]
    assert len(online_provider.server.history.all()) == calls_before


@pytest.fixture
def gateway_url(aws_stack):
    """The gateway itself (the API handler behind the front) on loopback, counting what reaches it."""
    from switchyard.front import create_app
    from switchyard_agent.serving import serve_in_thread
    from switchyard_local.handler_loading import load_handler

    from tests.conftest import ROOT

    handler = load_handler(ROOT / "functions" / "api", "app.handler")
    arrived: list[dict] = []

    def counting(event, context):
        arrived.append(event["headers"])
        return handler(event, context)

    with serve_in_thread(create_app(counting), lifespan="on") as url:
        yield url, arrived


def test_a_provider_endpoint_that_is_the_gateway_itself_costs_one_refused_call(
    api, caller, gateway_url, harness
):
    # Given a provider whose endpoint is the gateway's own URL (loopback: the local stack allows it)
    url, arrived = gateway_url
    assert heartbeat(api, caller, endpoint_url=url, models=FAKE_MODELS[:1]).status == 200
    # When a caller uses it, the gateway calls itself once, and that call is refused as a loop
    response = api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    assert response.status == 502
    message = response.json()["error"]["message"]
    assert "HTTP 508" in message and "must not lead back to a gateway" in message
    assert len(arrived) == 1
    assert arrived[0]["cdn-loop"] == "switchyard"
    # An async job ends the same way after one refused call: a retry would loop again, so none is spent
    job_id = submit(api, caller).json()["id"]
    harness.drain(lambda: job(api, caller, job_id)["status"] == "FAILED", timeout=30)
    ended = job(api, caller, job_id)
    assert "HTTP 508" in ended["error"]["message"]
    assert ended["attempts"] == 1
    assert len(arrived) == 1 + 1
