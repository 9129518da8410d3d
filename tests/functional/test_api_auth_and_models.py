"""Authentication, /v1/models and provider registration through the ApiFunction handler on moto."""

from __future__ import annotations

import time

import pytest

from tests.conftest import FAKE_MODELS, heartbeat_body


@pytest.mark.parametrize("path", ["/v1/models", "/v1/jobs", "/api/inference/queue/summary"])
def test_given_no_key_when_calling_then_401_detail(api, path):
    response = api("GET", path)
    assert response.status == 401
    assert set(response.json()) == {"detail"}
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


def test_given_bad_key_when_calling_then_401(api):
    response = api("GET", "/v1/models", headers={"authorization": "Bearer sy-not-a-key"})
    assert response.status == 401
    assert response.json()["detail"]


def test_given_no_key_and_bad_body_then_401_not_400(api):
    response = api("POST", "/v1/chat/completions", body={"model": "x"})
    assert response.status == 401


def test_given_revoked_key_then_401(api, aws_stack, monkeypatch):
    from switchyard.services.accounts import get_accounts_service

    service = get_accounts_service()
    account = service.create_account("revoker")
    key = service.create_api_key(account.account_id)
    assert api("GET", "/v1/models", headers={"authorization": f"Bearer {key.secret}"}).status == 200
    service.revoke_api_key(account.account_id, key.key_id)
    assert api("GET", "/v1/models", headers={"authorization": f"Bearer {key.secret}"}).status == 401


def test_keys_are_stored_only_as_hashes(aws_stack, caller):
    import boto3

    items = boto3.resource("dynamodb").Table(aws_stack.environment["API_KEYS_TABLE"]).scan()["Items"]
    assert items
    for item in items:
        assert caller.api_key not in str(item)


def test_given_heartbeat_when_listing_models_then_openai_list_with_capabilities(api, caller, online_provider):
    response = api("GET", "/v1/models", headers=caller.headers)
    assert response.status == 200
    body = response.json()
    assert body["object"] == "list"
    by_id = {m["id"]: m for m in body["data"]}
    assert set(by_id) == {m["id"] for m in FAKE_MODELS}
    llm = by_id["fake-llm"]
    assert llm["object"] == "model"
    assert llm["service_type"] == "llm"
    assert llm["input_modalities"] == ["text"]
    assert "streaming" in llm["supported_features"]
    assert by_id["fake-mesh"]["service_type"] == "mesh"


def test_given_stale_provider_then_it_is_offline(api, caller, online_provider, monkeypatch):
    from switchyard.services.providers import get_providers_service

    service = get_providers_service()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)
    service._online_cache.clear()
    assert api("GET", "/v1/models", headers=caller.headers).json()["data"] == []


def test_two_accounts_cannot_see_each_others_providers(api, new_caller, start_fake_server):
    alice, bob = new_caller("alice"), new_caller("bob")
    provider = start_fake_server()
    assert (
        api(
            "POST",
            "/api/inference/agent/heartbeat/",
            body=heartbeat_body(provider.url),
            headers=alice.headers,
        ).status
        == 200
    )
    assert {m["id"] for m in api("GET", "/v1/models", headers=alice.headers).json()["data"]}
    assert api("GET", "/v1/models", headers=bob.headers).json()["data"] == []
    chat = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}]}
    response = api("POST", "/v1/chat/completions", body=chat, headers=bob.headers)
    assert response.status == 404
    assert response.json()["error"] == {
        "message": "No online provider serving model 'fake-llm' for this user.",
        "type": "no_provider",
    }


@pytest.mark.parametrize(
    "endpoint_url",
    [
        "http://169.254.169.254/latest",
        "http://10.0.0.5:8000",
        "http://192.168.1.20",
        "http://172.16.0.1",
        "http://[::ffff:169.254.169.254]",
        "http://100.100.100.200",
        "http://0.0.0.0:80",
        "ftp://127.0.0.1",
        "http://user:pw@127.0.0.1:9000",
    ],
)
def test_given_private_endpoint_when_heartbeat_then_refused(api, caller, endpoint_url):
    response = api(
        "POST", "/api/inference/agent/heartbeat/", body=heartbeat_body(endpoint_url), headers=caller.headers
    )
    assert response.status == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert response.json()["error"]["param"] == "endpoint_url"


def test_heartbeat_validation_names_the_field(api, caller):
    body = heartbeat_body("http://127.0.0.1:9")
    body["models"][0]["service_type"] = "telepathy"
    response = api("POST", "/api/inference/agent/heartbeat/", body=body, headers=caller.headers)
    assert response.status == 400
    assert "models.0.service_type" in response.json()["error"]["message"]


def test_heartbeat_route_works_without_trailing_slash(api, caller):
    response = api(
        "POST",
        "/api/inference/agent/heartbeat",
        body=heartbeat_body("http://127.0.0.1:9"),
        headers=caller.headers,
    )
    assert response.status == 200
    assert response.json()["status"] == "online"


def test_openapi_document_is_valid_openapi_3(api):
    from openapi_spec_validator import validate

    response = api("GET", "/openapi.json")
    assert response.status == 200
    spec = response.json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    for path in (
        "/v1/chat/completions",
        "/v1/audio/transcriptions",
        "/v1/jobs",
        "/api/inference/agent/heartbeat/",
    ):
        assert path in spec["paths"]
    assert (
        "multipart/form-data" in spec["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]
    )


def test_api_explorer_page_is_served(api):
    response = api("GET", "/docs")
    assert response.status == 200
    assert b"swagger" in response.content.lower()
