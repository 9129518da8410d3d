"""Async jobs end to end: the openai SDK with extra_body={"async": True}, and raw httpx for /v1/jobs."""

from __future__ import annotations

import time
import uuid

import pytest

pytestmark = pytest.mark.e2e


def wait_for(http, local_stack, job_id, statuses=("PROCESSED", "FAILED", "CANCELED"), timeout=30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/v1/jobs/{job_id}", headers=local_stack.headers()).json()
        if job["status"] in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


def test_async_chat_through_the_sdk(client, http, local_stack):
    raw = client.chat.completions.with_raw_response.create(
        model="fake-llm", messages=[{"role": "user", "content": "hello async"}], extra_body={"async": True}
    )
    assert raw.status_code == 202
    envelope = raw.http_response.json()
    assert envelope["object"] == "inference.job" and envelope["status"] == "QUEUED"
    assert isinstance(envelope["id"], str)
    job = wait_for(http, local_stack, envelope["id"])
    assert job["status"] == "PROCESSED"
    assert job["result"]["choices"][0]["message"]["content"]


def test_async_image_result_url_serves_the_png(client, http, local_stack):
    raw = client.images.with_raw_response.generate(
        model="fake-image", prompt="a lighthouse", response_format="b64_json", extra_body={"async": True}
    )
    assert raw.status_code == 202
    job = wait_for(http, local_stack, raw.http_response.json()["id"])
    assert job["status"] == "PROCESSED"
    assert job["result_url"].startswith(local_stack.base_url + "/api/inference/assets/")
    asset = http.get(job["result_url"], headers=local_stack.headers())
    assert asset.status_code == 200 and asset.content.startswith(b"\x89PNG")
    assert http.get(job["result_url"]).status_code == 401


def test_async_speech_stores_audio(client, http, local_stack):
    raw = client.audio.speech.with_raw_response.create(
        model="fake-tts", voice="alloy", input="queued speech", extra_body={"async": True}
    )
    assert raw.status_code == 202
    job = wait_for(http, local_stack, raw.http_response.json()["id"])
    asset = http.get(job["result_url"], headers=local_stack.headers())
    assert asset.headers["content-type"].startswith("audio/")


def test_jobs_list_cancel_retry_and_summary(http, local_stack, provider):
    headers = local_stack.headers()
    body = {"model": "fake-llm", "messages": [{"role": "user", "content": "x"}], "async": True}
    job_id = http.post("/v1/chat/completions", json=body, headers=headers).json()["id"]
    canceled = http.post(f"/v1/jobs/{job_id}/cancel", headers=headers).json()
    if canceled["canceled"]:
        assert canceled == {"id": job_id, "status": "CANCELED", "canceled": True}
        retried = http.post(f"/v1/jobs/{job_id}/retry", headers=headers)
        assert retried.status_code == 202 and retried.json()["status"] == "QUEUED"
    assert wait_for(http, local_stack, job_id)["status"] == "PROCESSED"
    assert http.post(f"/v1/jobs/{job_id}/retry", headers=headers).status_code == 409
    again = http.post(f"/v1/jobs/{job_id}/cancel", headers=headers).json()
    assert again["canceled"] is False and again["status"] == "PROCESSED"
    listed = http.get("/v1/jobs", params={"limit": 5}, headers=headers).json()
    assert listed["object"] == "list" and listed["data"][0]["id"] == job_id
    summary = http.get("/api/inference/queue/summary", headers=headers).json()
    assert summary["async_enabled"] is True and summary["worker_stalled"] is False


def test_idempotency_key(http, local_stack, provider):
    headers = {**local_stack.headers(), "Idempotency-Key": str(uuid.uuid4())}
    body = {"model": "fake-llm", "prompt": "same", "async": True}
    first = http.post("/v1/completions", json=body, headers=headers)
    second = http.post("/v1/completions", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    conflict = http.post("/v1/completions", json={**body, "prompt": "different"}, headers=headers)
    assert conflict.status_code == 409


def test_async_on_upload_endpoint_is_400(http, local_stack, provider):
    files = {"file": ("a.wav", b"RIFF0000WAVE", "audio/wav")}
    response = http.post(
        "/v1/audio/transcriptions",
        data={"model": "fake-whisper", "async": "true"},
        files=files,
        headers=local_stack.headers(),
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"


def test_no_provider_job_fails_after_the_grace_period(http, local_stack, provider):
    body = {"model": "nobody-serves-this", "prompt": "x", "async": True}
    job_id = http.post("/v1/completions", json=body, headers=local_stack.headers()).json()["id"]
    job = wait_for(http, local_stack, job_id, timeout=40)
    assert job["status"] == "FAILED" and job["error"]["type"] == "no_provider"
