"""Batches and workflows end to end through the local stack (its dispatcher poller, its Step Functions
executor running statemachines/workflow.asl.json, its sweeper timer) with the real agent."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

FAKE_MODELS = {"text_model": "fake-llm", "image_model": "fake-image", "speech_model": "fake-tts"}


def poll(fetch, done, timeout=90.0, every=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if done(value):
            return value
        time.sleep(every)
    raise AssertionError(f"not done in {timeout} s: {value}")


def test_a_256_item_batch_runs_to_done(http, local_stack, provider):
    headers = local_stack.headers()
    requests = [
        {
            "endpoint": "/v1/chat/completions",
            "body": {"model": "fake-llm", "messages": [{"role": "user", "content": f"item {i}"}]},
        }
        if i % 4
        else {
            "endpoint": "/v1/images/generations",
            "body": {"model": "fake-image", "prompt": f"item {i}", "response_format": "b64_json"},
        }
        for i in range(256)
    ]
    accepted = http.post("/v1/batches", json={"label": "e2e", "requests": requests}, headers=headers)
    assert accepted.status_code == 202, accepted.text
    batch = accepted.json()
    assert batch["status"] == "PENDING" and batch["total"] == 256 and batch["queued"] == 256
    done = poll(
        lambda: http.get(f"/v1/batches/{batch['id']}", headers=headers).json(),
        lambda b: b["status"] == "DONE",
        timeout=240,
        every=1,
    )
    assert done["processed"] == 256 and done["failed"] == 0
    assert {j["inference_type"] for j in done["jobs"]} == {"LLM", "IMAGE"}
    first_image = next(j for j in done["jobs"] if j["inference_type"] == "IMAGE")
    assert http.get(f"/v1/jobs/{first_image['id']}", headers=headers).json()["result_url"]


def test_a_257_item_batch_is_refused_and_leaves_nothing_behind(http, local_stack, provider):
    headers = local_stack.headers()
    before_batches = http.get("/v1/batches", headers=headers).json()["data"]
    before_jobs = http.get("/v1/jobs", params={"limit": 1}, headers=headers).json()["data"]
    item = {"endpoint": "/v1/completions", "body": {"model": "fake-llm", "prompt": "x"}}
    response = http.post("/v1/batches", json={"requests": [item] * 257}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "too_large"
    assert http.get("/v1/batches", headers=headers).json()["data"] == before_batches
    assert http.get("/v1/jobs", params={"limit": 1}, headers=headers).json()["data"] == before_jobs


def test_a_workflow_template_runs_with_an_approval(http, local_stack, provider):
    headers = local_stack.headers()
    templates = http.get("/v1/workflows/templates", headers=headers).json()["data"]
    assert len(templates) >= 3
    started = http.post(
        "/v1/workflows/runs",
        json={"template": "illustrated-narration", "inputs": {"topic": "a lighthouse", **FAKE_MODELS}},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]

    def run():
        return http.get(f"/v1/workflows/runs/{run_id}", headers=headers).json()

    def steps(state):
        return {step["id"]: step for step in state["steps"]}

    waiting = poll(run, lambda r: steps(r)["review"]["status"] == "waiting")
    assert steps(waiting)["image"]["status"] == "succeeded"
    assert {"from": "image", "to": "review"} in waiting["edges"]
    approved = http.post(
        f"/v1/workflows/runs/{run_id}/steps/review/approve", json={"comment": "ship it"}, headers=headers
    )
    assert approved.status_code == 200
    again = http.post(f"/v1/workflows/runs/{run_id}/steps/review/approve", headers=headers)
    assert again.status_code == 409
    done = poll(run, lambda r: r["status"] != "RUNNING")
    assert done["status"] == "SUCCEEDED", done
    assert steps(done)["narration"]["result_url"]
    assert steps(done)["review"]["status"] == "succeeded"


def test_a_rejected_gate_ends_its_branch(http, local_stack, provider):
    headers = local_stack.headers()
    spec = {
        "steps": [
            {
                "id": "draft",
                "endpoint": "/v1/completions",
                "body": {"model": "fake-llm", "prompt": "a slogan"},
            },
            {"id": "review", "type": "gate", "depends_on": ["draft"]},
            {
                "id": "speak",
                "endpoint": "/v1/audio/speech",
                "depends_on": ["review"],
                "body": {"model": "fake-tts", "input": "{{steps.draft.output.text}}", "voice": "alloy"},
            },
        ]
    }
    run_id = http.post("/v1/workflows/runs", json={"spec": spec}, headers=headers).json()["id"]

    def run():
        return http.get(f"/v1/workflows/runs/{run_id}", headers=headers).json()

    poll(run, lambda r: any(s["id"] == "review" and s["status"] == "waiting" for s in r["steps"]))
    assert (
        http.post(
            f"/v1/workflows/runs/{run_id}/steps/review/reject", json={"comment": "no"}, headers=headers
        ).status_code
        == 200
    )
    done = poll(run, lambda r: r["status"] != "RUNNING")
    assert done["status"] == "REJECTED"
    assert {s["id"]: s["status"] for s in done["steps"]}["speak"] == "skipped"
