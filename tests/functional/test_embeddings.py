"""Embeddings: the `embedding` service type, sync and async, through the API handler on moto."""

from __future__ import annotations

from tests.conftest import heartbeat_body

EMBED = {"model": "fake-embed", "input": ["a lighthouse", "a harbour"]}


def test_sync_embeddings_reach_an_embedding_provider_and_answer_openai_shape(api, caller, online_provider):
    response = api("POST", "/v1/embeddings", body=EMBED, headers=caller.headers)
    assert response.status == 200, response.content
    answer = response.json()
    assert answer["object"] == "list"
    assert [item["index"] for item in answer["data"]] == [0, 1]
    assert len(answer["data"][0]["embedding"]) == 8
    assert online_provider.last_request("/v1/embeddings")["json"] == EMBED


def test_embeddings_route_only_to_providers_declaring_the_embedding_type(api, caller, start_fake_server):
    provider = start_fake_server()
    as_llm = [{"id": "fake-embed", "service_type": "llm"}]
    beat = heartbeat_body(provider.url, models=as_llm)
    assert api("POST", "/api/inference/agent/heartbeat/", body=beat, headers=caller.headers).status == 200
    response = api("POST", "/v1/embeddings", body=EMBED, headers=caller.headers)
    assert response.status == 404
    assert response.json()["error"]["type"] == "no_provider"


def test_embeddings_listed_with_their_service_type(api, caller, online_provider):
    models = {m["id"]: m for m in api("GET", "/v1/models", headers=caller.headers).json()["data"]}
    assert models["fake-embed"]["service_type"] == "embedding"


def test_embeddings_without_input_are_a_400_naming_the_field(api, caller, online_provider):
    response = api("POST", "/v1/embeddings", body={"model": "fake-embed"}, headers=caller.headers)
    assert response.status == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert "input" in response.json()["error"]["message"]
    empty = api("POST", "/v1/embeddings", body={"model": "fake-embed", "input": []}, headers=caller.headers)
    assert empty.status == 400


def test_async_embeddings_keep_the_vectors_as_the_job_result(api, caller, harness, online_provider):
    accepted = api("POST", "/v1/embeddings", body={**EMBED, "async": True}, headers=caller.headers)
    assert accepted.status == 202, accepted.content
    envelope = accepted.json()
    assert envelope["inference_type"] == "EMBEDDING"
    harness.drain(
        lambda: (
            api("GET", f"/v1/jobs/{envelope['id']}", headers=caller.headers).json()["status"] == "PROCESSED"
        )
    )
    job = api("GET", f"/v1/jobs/{envelope['id']}", headers=caller.headers).json()
    assert len(job["result"]["data"]) == 2 and "result_url" not in job
    assert "async" not in online_provider.last_request("/v1/embeddings")["json"]
