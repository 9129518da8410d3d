"""Async jobs on moto: submission, every status transition, listing, cancel, retry, idempotency, assets."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.conftest import heartbeat_body, reset_switchyard_caches
from tests.functional.jobs_harness import JobsHarness

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hello"}], "async": True}


JOB_SETTINGS = {"NO_PROVIDER_GRACE_SECONDS": "0.3", "JOB_UPSTREAM_TIMEOUT_SECONDS": "2"}


def submit(api, caller, path="/v1/chat/completions", body=None, headers=None):
    return api("POST", path, body=body or CHAT, headers={**caller.headers, **(headers or {})})


def job(api, caller, job_id):
    response = api("GET", f"/v1/jobs/{job_id}", headers=caller.headers)
    assert response.status == 200, response.content
    return response.json()


def test_async_submission_returns_202_and_the_seed_envelope(api, caller, harness):
    response = submit(api, caller)
    assert response.status == 202
    envelope = response.json()
    assert isinstance(envelope["id"], str)
    assert envelope["object"] == "inference.job"
    assert envelope["status"] == "QUEUED"
    assert envelope["inference_type"] == "LLM"
    assert envelope["model"] == "fake-llm"
    assert isinstance(envelope["created"], int)
    assert envelope["queued_at"].endswith("Z")


def test_llm_job_goes_queued_processing_processed_with_choices_in_result(
    api, caller, harness, online_provider, caplog
):
    job_id = submit(api, caller).json()["id"]
    assert job(api, caller, job_id)["status"] == "QUEUED"
    with caplog.at_level(logging.INFO, logger="switchyard.services.dispatcher"):
        harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED")
    done = job(api, caller, job_id)
    assert done["result"]["choices"][0]["message"]["content"]
    assert done["started_at"] and done["finished_at"]
    seen = online_provider.last_request("/v1/chat/completions")
    assert "async" not in seen["json"]
    # The provider gets a UUID it accepts (not "job_..."), the same for every attempt, and the log ties
    # it to the job.
    request_id = seen["headers"]["x-request-id"]
    assert request_id == str(uuid.uuid5(uuid.UUID("6f1d7c52-3a0e-4b8e-9a44-5d0c2b7e9f10"), job_id))
    assert any(job_id in line and request_id in line for line in caplog.messages)


def test_processing_is_visible_while_the_provider_works(
    api, caller, jobs_env, start_fake_server, monkeypatch
):
    import threading

    harness = JobsHarness(jobs_env.environment)
    provider = start_fake_server(latency_ms=600)
    api("POST", "/api/inference/agent/heartbeat/", body=heartbeat_body(provider.url), headers=caller.headers)
    job_id = submit(api, caller).json()["id"]
    worker = threading.Thread(target=harness.dispatch_once)
    worker.start()
    seen = set()
    while worker.is_alive():
        seen.add(job(api, caller, job_id)["status"])
    worker.join()
    assert "PROCESSING" in seen
    assert job(api, caller, job_id)["status"] == "PROCESSED"


@pytest.mark.parametrize(
    "path,body,inference_type",
    [
        (
            "/v1/images/generations",
            {"model": "fake-image", "prompt": "lamp", "response_format": "b64_json"},
            "IMAGE",
        ),
        ("/v1/audio/speech", {"model": "fake-tts", "input": "hi", "voice": "alloy"}, "TTS"),
        ("/v1/music/generations", {"model": "fake-music", "prompt": "lofi"}, "MUSIC"),
        ("/v1/videos/generations", {"model": "fake-video", "prompt": "waves"}, "VIDEO"),
        ("/v1/3d/generations", {"model": "fake-mesh", "prompt": "chair"}, "MESH"),
    ],
)
def test_media_job_result_url_serves_the_stored_asset_to_its_owner_only(
    api, caller, new_caller, harness, online_provider, path, body, inference_type
):
    envelope = submit(api, caller, path, {**body, "async": True}).json()
    assert envelope["inference_type"] == inference_type
    harness.drain(lambda: job(api, caller, envelope["id"])["status"] == "PROCESSED")
    done = job(api, caller, envelope["id"])
    url = done["result_url"]
    assert url.startswith("https://gateway.test/api/inference/assets/") and url.endswith("/")
    asset_path = url.removeprefix("https://gateway.test")
    asset = api("GET", asset_path, headers=caller.headers)
    assert asset.status == 200
    assert len(asset.content) > 16
    assert not asset.headers["content-type"].startswith("application/json") or inference_type == "MESH"
    intruder = new_caller("intruder")
    assert api("GET", asset_path, headers=intruder.headers).status == 404
    assert api("GET", asset_path).status == 401


def test_image_asset_is_the_decoded_png(api, caller, harness, online_provider):
    body = {"model": "fake-image", "prompt": "lamp", "response_format": "b64_json", "async": True}
    job_id = submit(api, caller, "/v1/images/generations", body).json()["id"]
    harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED")
    asset = api("GET", f"/api/inference/assets/{job_id}/", headers=caller.headers)
    assert asset.headers["content-type"] == "image/png"
    assert asset.content.startswith(b"\x89PNG")


def test_list_jobs_newest_first_with_filters_and_paging(api, caller, harness, online_provider):
    ids = [submit(api, caller).json()["id"] for _ in range(5)]
    listed = api("GET", "/v1/jobs", headers=caller.headers).json()
    assert [j["id"] for j in listed["data"]] == list(reversed(ids))
    assert listed["object"] == "list"
    first_page = api("GET", "/v1/jobs", headers=caller.headers, query={"limit": "2"}).json()
    assert len(first_page["data"]) == 2 and first_page["has_more"] is True
    second = api(
        "GET", "/v1/jobs", headers=caller.headers, query={"limit": "2", "after": first_page["last_id"]}
    ).json()
    assert [j["id"] for j in second["data"]] == list(reversed(ids))[2:4]
    assert len(api("GET", "/v1/jobs", headers=caller.headers, query={"active": "1"}).json()["data"]) == 5
    harness.drain(lambda: all(job(api, caller, i)["status"] == "PROCESSED" for i in ids))
    assert api("GET", "/v1/jobs", headers=caller.headers, query={"active": "1"}).json()["data"] == []
    processed = api("GET", "/v1/jobs", headers=caller.headers, query={"status": "PROCESSED"}).json()["data"]
    assert len(processed) == 5
    assert api("GET", "/v1/jobs", headers=caller.headers, query={"status": "BOGUS"}).status == 400
    assert api("GET", "/v1/jobs", headers=caller.headers, query={"limit": "0"}).status == 400


def test_other_accounts_cannot_read_cancel_or_retry_a_job(api, caller, new_caller, harness):
    job_id = submit(api, caller).json()["id"]
    intruder = new_caller("intruder")
    assert api("GET", f"/v1/jobs/{job_id}", headers=intruder.headers).status == 404
    assert api("POST", f"/v1/jobs/{job_id}/cancel", headers=intruder.headers).status == 404
    assert api("POST", f"/v1/jobs/{job_id}/retry", headers=intruder.headers).status == 404
    assert api("GET", "/v1/jobs", headers=intruder.headers).json()["data"] == []
    assert job(api, caller, job_id)["status"] == "QUEUED"


def test_cancel_a_queued_job_then_the_dispatcher_never_runs_it(api, caller, harness, online_provider):
    job_id = submit(api, caller).json()["id"]
    response = api("POST", f"/v1/jobs/{job_id}/cancel", headers=caller.headers)
    assert response.status == 200
    assert response.json() == {"id": job_id, "status": "CANCELED", "canceled": True}
    harness.drain()
    assert job(api, caller, job_id)["status"] == "CANCELED"
    assert online_provider.last_request("/v1/chat/completions") is None


def test_cancel_a_finished_job_has_no_effect_and_says_so(api, caller, harness, online_provider):
    job_id = submit(api, caller).json()["id"]
    harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED")
    response = api("POST", f"/v1/jobs/{job_id}/cancel", headers=caller.headers).json()
    assert response["canceled"] is False
    assert response["status"] == "PROCESSED"
    assert "already finished" in response["detail"]


def test_retry_a_canceled_job_requeues_it_with_a_fresh_attempt(api, caller, harness, online_provider):
    job_id = submit(api, caller).json()["id"]
    api("POST", f"/v1/jobs/{job_id}/cancel", headers=caller.headers)
    harness.drain()
    response = api("POST", f"/v1/jobs/{job_id}/retry", headers=caller.headers)
    assert response.status == 202
    assert response.json()["status"] == "QUEUED"
    assert response.json()["id"] == job_id
    harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED")
    assert job(api, caller, job_id)["attempts"] == 1


@pytest.mark.parametrize("state", ["QUEUED", "PROCESSED"])
def test_retry_in_a_non_retryable_state_is_409(api, caller, harness, online_provider, state):
    job_id = submit(api, caller).json()["id"]
    if state == "PROCESSED":
        harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED")
    response = api("POST", f"/v1/jobs/{job_id}/retry", headers=caller.headers)
    assert response.status == 409
    assert response.json()["error"]["type"] == "conflict"


def test_idempotency_key_returns_the_existing_job(api, caller, harness):
    key = str(uuid.uuid4())
    first = submit(api, caller, headers={"idempotency-key": key})
    second = submit(api, caller, headers={"idempotency-key": key})
    assert first.status == second.status == 202
    assert first.json()["id"] == second.json()["id"]
    assert len(api("GET", "/v1/jobs", headers=caller.headers).json()["data"]) == 1


def test_idempotency_key_with_a_different_body_is_an_error(api, caller, harness):
    key = str(uuid.uuid4())
    submit(api, caller, headers={"idempotency-key": key})
    other = {**CHAT, "messages": [{"role": "user", "content": "something else"}]}
    response = submit(api, caller, body=other, headers={"idempotency-key": key})
    assert response.status == 409
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert len(api("GET", "/v1/jobs", headers=caller.headers).json()["data"]) == 1


def test_idempotency_keys_are_per_account(api, caller, new_caller, harness):
    key = str(uuid.uuid4())
    other = new_caller("other")
    a = submit(api, caller, headers={"idempotency-key": key}).json()["id"]
    b = submit(api, other, headers={"idempotency-key": key}).json()["id"]
    assert a != b


def test_async_disabled_answers_503_on_every_async_endpoint(api, caller, jobs_env, monkeypatch):
    monkeypatch.setenv("ASYNC_ENABLED", "false")
    reset_switchyard_caches()
    response = submit(api, caller)
    assert response.status == 503
    assert response.json()["error"]["type"] == "async_disabled"
    summary = api("GET", "/api/inference/queue/summary", headers=caller.headers).json()
    assert summary["async_enabled"] is False


def test_queue_summary_counts_active_work_and_detects_a_stalled_worker(
    api, caller, harness, online_provider, monkeypatch
):
    import time as time_module

    submit(api, caller)
    submit(api, caller)
    summary = api("GET", "/api/inference/queue/summary/", headers=caller.headers).json()
    assert summary["queued"] == 2 and summary["active"] == 2
    assert summary["async_enabled"] is True
    assert summary["worker_stalled"] is False
    real = time_module.time
    monkeypatch.setattr(time_module, "time", lambda: real() + 120)
    assert api("GET", "/api/inference/queue/summary", headers=caller.headers).json()["worker_stalled"] is True
    monkeypatch.setattr(time_module, "time", real)
    harness.drain()
    summary = api("GET", "/api/inference/queue/summary", headers=caller.headers).json()
    assert summary["active"] == 0 and summary["worker_stalled"] is False
    assert summary["dispatcher_last_tick_at"]


def test_unknown_job_is_404(api, caller, harness):
    response = api("GET", "/v1/jobs/job_nope", headers=caller.headers)
    assert response.status == 404
