"""GET /api/inference/providers: the caller's agents for the dashboard, on the handler and moto."""

from __future__ import annotations

import time

from tests.conftest import heartbeat_body

PROVIDERS = "/api/inference/providers"


def providers_of(api, caller) -> dict:
    response = api("GET", PROVIDERS, headers=caller.headers)
    assert response.status == 200, response.content
    return response.json()


def test_given_an_online_provider_then_it_is_listed_with_models_and_capacity(api, caller, online_provider):
    listing = providers_of(api, caller)

    assert listing["object"] == "list" and listing["offline_after_seconds"] == 60
    [provider] = listing["data"]
    assert provider["id"] == "box-1" and provider["object"] == "provider" and provider["status"] == "online"
    host = online_provider.url.removeprefix("http://").rstrip("/")
    assert provider["endpoint_host"] == host
    assert provider["capacity"] == {"in_use": 0, "max": 4}
    assert {"id": "fake-llm", "service_type": "llm"}.items() <= provider["models"][0].items()
    assert {m["service_type"] for m in provider["models"]} >= {"llm", "image", "tts", "stt"}
    assert provider["last_heartbeat_at"].endswith("Z") and provider["first_seen_at"]


def test_given_a_provider_then_its_secret_and_endpoint_path_are_never_shown(api, caller, start_fake_server):
    fake = start_fake_server()
    beat = heartbeat_body(f"{fake.url}/private/path-token-abc")
    assert api("POST", "/api/inference/agent/heartbeat/", body=beat, headers=caller.headers).status == 200

    response = api("GET", PROVIDERS, headers=caller.headers)

    text = response.content.decode()
    assert beat["secret"] not in text and "/private/path" not in text and "token-abc" not in text


def test_given_running_jobs_then_capacity_counts_live_leases_only(api, caller, online_provider):
    from switchyard.services.providers import get_providers_service

    service = get_providers_service()
    [provider] = service.online_providers(caller.account_id)
    now_ms = int(time.time() * 1000)
    assert service.acquire_slot(provider, "job_a", now_ms + 60_000)
    assert service.acquire_slot(provider, "job_b", now_ms + 60_000)
    assert service.acquire_slot(provider, "job_dead", now_ms - 1)  # its dispatcher died

    assert providers_of(api, caller)["data"][0]["capacity"] == {"in_use": 2, "max": 4}


def test_given_a_silent_provider_then_it_is_listed_offline_after_the_online_ones(
    api, caller, online_provider, aws_stack
):
    import boto3

    beat = heartbeat_body("http://127.0.0.1:9/", provider_id="old-box")
    assert api("POST", "/api/inference/agent/heartbeat/", body=beat, headers=caller.headers).status == 200
    table = boto3.resource("dynamodb").Table(aws_stack.environment["PROVIDERS_TABLE"])
    table.update_item(
        Key={"account_id": caller.account_id, "provider_id": "old-box"},
        UpdateExpression="SET last_seen = :t",
        ExpressionAttributeValues={":t": int((time.time() - 3600) * 1000)},
    )

    data = providers_of(api, caller)["data"]

    assert [(p["id"], p["status"]) for p in data] == [("box-1", "online"), ("old-box", "offline")]


def test_given_another_account_then_it_sees_none_of_the_callers_providers(
    api, caller, new_caller, online_provider
):
    intruder = new_caller("intruder")

    assert providers_of(api, intruder)["data"] == []
    assert api("GET", PROVIDERS).status == 401


def test_given_the_openapi_document_then_the_providers_route_is_in_it(api):
    spec = api("GET", "/openapi.json").json()

    assert "get" in spec["paths"][PROVIDERS]
