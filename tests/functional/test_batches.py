"""Batches on moto: submission and up-front validation, aggregate status and counts, cancel,
idempotency, isolation between accounts, and crash safety of a half-created batch."""

from __future__ import annotations

import threading
import time
import uuid

import boto3
import pytest

from tests.conftest import heartbeat_body, reset_switchyard_caches

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hello"}]}
MIXED = [
    ("/v1/chat/completions", CHAT, "LLM"),
    ("/v1/completions", {"model": "fake-llm", "prompt": "Once upon"}, "LLM"),
    (
        "/v1/images/generations",
        {"model": "fake-image", "prompt": "lamp", "response_format": "b64_json"},
        "IMAGE",
    ),
    ("/v1/videos/generations", {"model": "fake-video", "prompt": "waves"}, "VIDEO"),
    ("/v1/music/generations", {"model": "fake-music", "prompt": "lofi"}, "MUSIC"),
    ("/v1/audio/speech", {"model": "fake-tts", "input": "hi", "voice": "alloy"}, "TTS"),
]


class Crash(BaseException):
    """The function dies here: no `except Exception` clean-up runs, as when Lambda times out or is killed."""


JOB_SETTINGS = {"NO_PROVIDER_GRACE_SECONDS": "60", "JOB_UPSTREAM_TIMEOUT_SECONDS": "5"}


@pytest.fixture
def provider(api, caller, jobs_env, start_fake_server):
    """The caller's provider, with a slot for every record of a dispatcher batch (so nothing waits)."""
    server = start_fake_server(stream_delay_ms=0)
    response = api(
        "POST",
        "/api/inference/agent/heartbeat/",
        body=heartbeat_body(server.url, max_concurrency=16),
        headers=caller.headers,
    )
    assert response.status == 200, response.content
    return server


# ------------------------------------------------------------------ helpers


def chat_items(count: int, model: str = "fake-llm") -> list[dict]:
    return [
        {"endpoint": "/v1/chat/completions", "body": {**CHAT, "model": model, "messages": [_say(i)]}}
        for i in range(count)
    ]


def _say(i: int) -> dict:
    return {"role": "user", "content": f"item {i}"}


def submit(api, caller, requests=None, *, label=None, headers=None, body=None):
    payload = body if body is not None else {"requests": requests if requests is not None else chat_items(3)}
    if label is not None:
        payload["label"] = label
    return api("POST", "/v1/batches", body=payload, headers={**caller.headers, **(headers or {})})


def batch(api, caller, batch_id) -> dict:
    response = api("GET", f"/v1/batches/{batch_id}", headers=caller.headers)
    assert response.status == 200, response.content
    return response.json()


def job(api, caller, job_id) -> dict:
    response = api("GET", f"/v1/jobs/{job_id}", headers=caller.headers)
    assert response.status == 200, response.content
    return response.json()


def status_is(api, caller, batch_id, status):
    return lambda: batch(api, caller, batch_id)["status"] == status


def scan(env, table_variable: str) -> list[dict]:
    table = boto3.resource("dynamodb").Table(env[table_variable])
    return [item for item in table.scan()["Items"] if "account_id" in item]  # not the liveness items


def assert_nothing_created(env, harness):
    assert scan(env, "BATCHES_TABLE") == []
    assert scan(env, "JOBS_TABLE") == []
    assert harness.depth() == 0


def shift_clock(monkeypatch, seconds: float):
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + seconds)
    return lambda: monkeypatch.setattr(time, "time", real)


# ------------------------------------------------------------------ submission


def test_submission_answers_202_with_the_seed_batch_object(api, caller, harness):
    response = submit(api, caller, chat_items(3), label="Q2 product shots")

    assert response.status == 202
    created = response.json()
    assert isinstance(created["id"], str)
    assert created["label"] == "Q2 product shots"
    assert created["status"] == "PENDING"
    assert (created["total"], created["queued"], created["processing"]) == (3, 3, 0)
    assert (created["processed"], created["failed"], created["canceled"]) == (0, 0, 0)
    assert isinstance(created["created"], int)
    assert [j["status"] for j in created["jobs"]] == ["QUEUED"] * 3
    assert harness.depth() == 3


def test_mixed_endpoints_become_ordinary_jobs_with_their_inference_types_and_results(
    api, caller, harness, provider
):
    # An `async` field in an item body (either value) is ignored and never reaches the provider.
    items = [{"endpoint": path, "body": {**body, "async": False}} for path, body, _ in MIXED]

    created = submit(api, caller, items).json()
    harness.drain(status_is(api, caller, created["id"], "DONE"))

    done = batch(api, caller, created["id"])
    assert [j["inference_type"] for j in done["jobs"]] == [kind for _, _, kind in MIXED]
    assert [j["id"] for j in done["jobs"]] == [j["id"] for j in created["jobs"]]
    assert (done["processed"], done["queued"], done["processing"], done["failed"]) == (6, 0, 0, 0)
    for summary, (path, _, kind) in zip(done["jobs"], MIXED, strict=True):
        envelope = job(api, caller, summary["id"])
        assert envelope["batch_id"] == created["id"]
        assert envelope["status"] == "PROCESSED"
        if kind == "LLM":
            assert envelope["result"]
        else:
            assert envelope["result_url"].endswith(f"/api/inference/assets/{summary['id']}/")
        assert "async" not in (provider.last_request(path)["json"] or {})


def test_a_256_item_batch_runs_to_done_through_the_dispatcher(api, caller, harness, provider):
    response = submit(api, caller, chat_items(256))
    assert response.status == 202
    created = response.json()
    assert created["total"] == created["queued"] == 256

    harness.drain(timeout=40)  # until the queue is empty (reading 256 statuses through moto is slow)

    done = batch(api, caller, created["id"])
    assert (done["status"], done["processed"], done["failed"], done["total"]) == ("DONE", 256, 0, 256)
    assert len({j["id"] for j in done["jobs"]}) == 256
    assert [j["id"] for j in done["jobs"]] == [j["id"] for j in created["jobs"]]


def test_more_than_256_items_is_too_large_and_creates_nothing(api, caller, jobs_env, harness):
    response = submit(api, caller, chat_items(257))

    assert response.status == 400
    assert response.json()["error"]["type"] == "too_large"
    assert "256" in response.json()["error"]["message"]
    assert_nothing_created(jobs_env.environment, harness)


MALFORMED_ITEMS = [
    (
        3,
        {"endpoint": "/v1/chat/completions", "body": {"model": "fake-llm"}},
        "requests[3].body.messages: Field required",
    ),
    (
        1,
        {"endpoint": "/v1/images/generations", "body": {"model": "fake-image", "prompt": "x", "n": 50}},
        "requests[1].body.n: Input should be less than or equal to 10",
    ),
    (
        2,
        {"endpoint": "/v1/3d/generations", "body": {"model": "m", "prompt": "chair"}},
        "requests[2].endpoint",
    ),
    (0, {"endpoint": "/v1/audio/transcriptions", "body": {"model": "w"}}, "requests[0].endpoint"),
    (4, {"endpoint": "/v1/nope", "body": {"model": "m"}}, "requests[4].endpoint"),
    (5, {"body": CHAT}, "requests[5].endpoint: Field required"),
    (1, {"endpoint": "/v1/chat/completions", "body": "hello"}, "requests[1].body: must be a JSON object"),
    (2, {"endpoint": "/v1/chat/completions"}, "requests[2].body: must be a JSON object"),
    (3, "not an object", "requests[3]: must be an object"),
]


def test_a_malformed_item_rejects_the_whole_batch_naming_it_and_creates_nothing(
    api, caller, jobs_env, harness
):
    for index, item, expected in MALFORMED_ITEMS:
        items = chat_items(6)
        items[index] = item

        response = submit(api, caller, items)

        assert response.status == 400, expected
        error = response.json()["error"]
        assert error["type"] == "invalid_request"
        assert expected in error["message"]
        assert error["param"].startswith(f"requests[{index}]")

    # Every malformed item is named, not only the first.
    items = chat_items(5)
    items[1] = {"endpoint": "/v1/chat/completions", "body": {"messages": [_say(1)]}}
    items[4] = {"endpoint": "/v1/audio/speech", "body": {"model": "fake-tts"}}
    message = submit(api, caller, items).json()["error"]["message"]
    assert "requests[1].body.model: Field required" in message
    assert "requests[4].body.input: Field required" in message
    assert_nothing_created(jobs_env.environment, harness)


def test_a_malformed_request_body_is_rejected_and_creates_nothing(api, caller, jobs_env, harness):
    for body in ({}, {"requests": []}, {"requests": {"endpoint": "/v1/chat/completions"}}, {"requests": "x"}):
        response = submit(api, caller, body=body)

        assert response.status == 400, body
        assert response.json()["error"]["type"] == "invalid_request"
        assert response.json()["error"]["message"].startswith("requests")

    response = submit(api, caller, chat_items(1), label=42)
    assert response.status == 400
    assert response.json()["error"]["param"] == "label"

    headers = {**caller.headers, "content-type": "application/json"}
    response = api("POST", "/v1/batches", body=b"{not json", headers=headers)
    assert response.status == 400
    assert "detail" in response.json()
    assert_nothing_created(jobs_env.environment, harness)


def test_async_disabled_answers_503(api, caller, jobs_env, monkeypatch):
    monkeypatch.setenv("ASYNC_ENABLED", "false")
    reset_switchyard_caches()

    response = submit(api, caller)

    assert response.status == 503
    assert response.json()["error"]["type"] == "async_disabled"


# ------------------------------------------------------------------ status, counts, listing


def test_status_goes_pending_processing_done_as_jobs_finish(api, caller, harness, provider):
    items = chat_items(2) + chat_items(1, model="ghost-llm")  # nobody serves ghost-llm: it waits
    created = submit(api, caller, items).json()
    assert batch(api, caller, created["id"])["status"] == "PENDING"

    harness.drain(lambda: batch(api, caller, created["id"])["processed"] == 2)
    waiting = batch(api, caller, created["id"])
    assert (waiting["status"], waiting["queued"], waiting["processed"]) == ("PROCESSING", 1, 2)

    canceled = api("POST", f"/v1/batches/{created['id']}/cancel", headers=caller.headers).json()
    assert (canceled["status"], canceled["processed"], canceled["canceled"]) == ("DONE", 2, 1)
    assert [j["status"] for j in canceled["jobs"]] == ["PROCESSED", "PROCESSED", "CANCELED"]


def test_counts_stay_right_while_jobs_complete_and_are_canceled_concurrently(
    api, caller, jobs_env, harness, start_fake_server
):
    server = start_fake_server(stream_delay_ms=0, latency_ms=20)
    api(
        "POST",
        "/api/inference/agent/heartbeat/",
        body=heartbeat_body(server.url, max_concurrency=16),
        headers=caller.headers,
    )
    created = submit(api, caller, chat_items(40)).json()
    ids = [j["id"] for j in created["jobs"]]
    finished = threading.Event()

    def dispatch() -> None:  # ten records of each poll run (and complete) concurrently
        harness.drain(status_is(api, caller, created["id"], "DONE"), timeout=40)
        finished.set()

    worker = threading.Thread(target=dispatch)
    worker.start()
    for job_id in ids[-10:]:  # cancels racing with completions
        api("POST", f"/v1/jobs/{job_id}/cancel", headers=caller.headers)
    processed_seen = 0
    while not finished.is_set():
        seen = batch(api, caller, created["id"])
        parts = ("queued", "processing", "processed", "failed", "canceled")
        assert sum(seen[part] for part in parts) == 40
        assert seen["processed"] >= processed_seen
        processed_seen = seen["processed"]
        time.sleep(0.05)
    worker.join()

    final = batch(api, caller, created["id"])
    truth = [job(api, caller, job_id)["status"] for job_id in ids]
    assert final["status"] == "DONE"
    assert final["processed"] == truth.count("PROCESSED")
    assert final["canceled"] == truth.count("CANCELED")
    assert final["processed"] + final["canceled"] == 40
    assert [j["status"] for j in final["jobs"]] == truth


def test_list_batches_newest_first_with_paging(api, caller, harness):
    ids = [submit(api, caller, chat_items(2), label=f"b{i}").json()["id"] for i in range(3)]

    listed = api("GET", "/v1/batches", headers=caller.headers).json()
    assert listed["object"] == "list"
    assert [b["id"] for b in listed["data"]] == list(reversed(ids))
    assert listed["data"][0]["label"] == "b2" and listed["data"][0]["queued"] == 2
    first = api("GET", "/v1/batches", headers=caller.headers, query={"limit": "2"}).json()
    assert len(first["data"]) == 2 and first["has_more"] is True
    rest = api(
        "GET", "/v1/batches", headers=caller.headers, query={"limit": "2", "after": first["last_id"]}
    ).json()
    assert [b["id"] for b in rest["data"]] == [ids[0]] and rest["has_more"] is False
    assert api("GET", "/v1/batches", headers=caller.headers, query={"limit": "0"}).status == 400
    assert api("GET", "/v1/batches", headers=caller.headers, query={"limit": "51"}).status == 400


# ------------------------------------------------------------------ cancel, idempotency, isolation


def test_cancel_cancels_every_queued_job_and_the_dispatcher_never_runs_them(api, caller, harness, provider):
    created = submit(api, caller, chat_items(5)).json()

    response = api("POST", f"/v1/batches/{created['id']}/cancel", headers=caller.headers)

    assert response.status == 200
    canceled = response.json()
    assert (canceled["status"], canceled["canceled"], canceled["queued"]) == ("DONE", 5, 0)
    harness.drain()
    assert provider.last_request("/v1/chat/completions") is None
    again = api("POST", f"/v1/batches/{created['id']}/cancel", headers=caller.headers).json()
    assert again == {**canceled}
    assert job(api, caller, created["jobs"][0]["id"])["status"] == "CANCELED"


def test_idempotency_key_returns_the_same_batch_and_a_different_body_is_a_conflict(
    api, caller, jobs_env, harness
):
    key = {"idempotency-key": str(uuid.uuid4())}
    first = submit(api, caller, chat_items(4), headers=key)
    second = submit(api, caller, chat_items(4), headers=key)

    assert first.status == second.status == 202
    assert first.json()["id"] == second.json()["id"]
    assert [j["id"] for j in second.json()["jobs"]] == [j["id"] for j in first.json()["jobs"]]
    conflict = submit(api, caller, chat_items(5), headers=key)
    assert conflict.status == 409
    assert "Idempotency-Key" in conflict.json()["error"]["message"]
    assert len(scan(jobs_env.environment, "BATCHES_TABLE")) == 1
    assert len(scan(jobs_env.environment, "JOBS_TABLE")) == 4


def test_only_the_owner_can_read_or_cancel_the_batch_and_its_jobs(api, caller, new_caller, harness):
    created = submit(api, caller, chat_items(2)).json()
    intruder = new_caller("intruder")

    assert api("GET", f"/v1/batches/{created['id']}", headers=intruder.headers).status == 404
    assert api("POST", f"/v1/batches/{created['id']}/cancel", headers=intruder.headers).status == 404
    assert api("GET", "/v1/batches", headers=intruder.headers).json()["data"] == []
    job_id = created["jobs"][0]["id"]
    assert api("GET", f"/v1/jobs/{job_id}", headers=intruder.headers).status == 404
    assert api("POST", f"/v1/jobs/{job_id}/cancel", headers=intruder.headers).status == 404
    assert batch(api, caller, created["id"])["queued"] == 2
    # Without a key nothing is reachable; an unknown batch is simply not found.
    assert api("POST", "/v1/batches", body={"requests": chat_items(1)}).status == 401
    assert api("GET", f"/v1/batches/{created['id']}").status == 401
    assert api("GET", "/v1/batches/batch_nope", headers=caller.headers).status == 404
    assert api("POST", "/v1/batches/batch_nope/cancel", headers=caller.headers).status == 404


# ------------------------------------------------------------------ crash safety


def _crash_before_any_job(monkeypatch):
    from switchyard.adapters.jobs_table import JobsTable

    def crash(self, jobs):
        raise Crash()

    monkeypatch.setattr(JobsTable, "batch_create", crash)


def _crash_half_way_through_the_jobs(monkeypatch):
    from switchyard.adapters.jobs_table import JobsTable

    original = JobsTable.batch_create

    def crash(self, jobs):
        original(self, jobs[: len(jobs) // 2])
        raise Crash()

    monkeypatch.setattr(JobsTable, "batch_create", crash)


def _crash_before_the_commit(monkeypatch):
    from switchyard.adapters.batches_table import BatchesTable

    def crash(self, batch_id):
        raise Crash()

    monkeypatch.setattr(BatchesTable, "commit", crash)


@pytest.mark.parametrize(
    "inject,jobs_written",
    [(_crash_before_any_job, 0), (_crash_half_way_through_the_jobs, 20), (_crash_before_the_commit, 40)],
)
def test_a_crash_half_way_leaves_nothing_visible_and_the_sweeper_deletes_it(
    api, caller, jobs_env, harness, provider, monkeypatch, inject, jobs_written
):
    env = jobs_env.environment
    with monkeypatch.context() as patch:
        inject(patch)
        with pytest.raises(Crash):
            submit(api, caller, chat_items(40))
    [stored_batch] = scan(env, "BATCHES_TABLE")
    stored_jobs = scan(env, "JOBS_TABLE")
    assert stored_batch["state"] == "CREATING" and len(stored_jobs) == jobs_written

    # Nothing of it is visible, anywhere.
    assert api("GET", "/v1/batches", headers=caller.headers).json()["data"] == []
    assert api("GET", f"/v1/batches/{stored_batch['batch_id']}", headers=caller.headers).status == 404
    assert api("GET", "/v1/jobs", headers=caller.headers).json()["data"] == []
    assert api("GET", "/v1/jobs", headers=caller.headers, query={"active": "1"}).json()["data"] == []
    for stored in stored_jobs[:3]:
        assert api("GET", f"/v1/jobs/{stored['job_id']}", headers=caller.headers).status == 404
        assert api("POST", f"/v1/jobs/{stored['job_id']}/cancel", headers=caller.headers).status == 404
    summary = api("GET", "/api/inference/queue/summary", headers=caller.headers).json()
    assert summary["queued"] == 0 and summary["active"] == 0

    # Inert: long past the lost-message delay, the sweeper re-queues none of it, and nothing runs.
    restore = shift_clock(monkeypatch, 120)
    report = harness.sweep()
    assert report["requeued_lost"] == [] and report["abandoned_batches"] == []
    restore()
    harness.drain()
    assert provider.last_request("/v1/chat/completions") is None
    assert len(scan(env, "JOBS_TABLE")) == jobs_written

    # Past the abandon delay, the sweeper deletes the batch and its jobs.
    shift_clock(monkeypatch, 1000)
    report = harness.sweep()
    assert report["abandoned_batches"] == [stored_batch["batch_id"]]
    assert scan(env, "BATCHES_TABLE") == [] and scan(env, "JOBS_TABLE") == []


def test_a_crash_after_the_commit_loses_no_work_the_sweeper_queues_it(
    api, caller, jobs_env, harness, provider, monkeypatch
):
    from switchyard.adapters.jobs_queue import JobsQueue

    def crash(self, messages):
        raise Crash()

    with monkeypatch.context() as patch:
        patch.setattr(JobsQueue, "send_many", crash)
        with pytest.raises(Crash):
            submit(api, caller, chat_items(12))
    [listed] = api("GET", "/v1/batches", headers=caller.headers).json()["data"]
    assert (listed["status"], listed["queued"]) == ("PENDING", 12)
    assert harness.depth() == 0

    restore = shift_clock(monkeypatch, 120)
    report = harness.sweep()
    restore()
    assert len(report["requeued_lost"]) == 12 and report["abandoned_batches"] == []
    harness.drain(status_is(api, caller, listed["id"], "DONE"))
    assert batch(api, caller, listed["id"])["processed"] == 12


def test_a_failed_job_write_discards_the_batch_at_once(api, caller, jobs_env, harness, monkeypatch):
    from switchyard.adapters.jobs_table import JobsTable

    original = JobsTable.batch_create

    def fail(self, jobs):
        original(self, jobs[:3])
        raise RuntimeError("throttled")

    monkeypatch.setattr(JobsTable, "batch_create", fail)
    with pytest.raises(RuntimeError):
        submit(api, caller, chat_items(8))

    assert_nothing_created(jobs_env.environment, harness)


def test_a_sweeper_that_dies_while_deleting_a_batch_finishes_the_job_next_time(
    api, caller, jobs_env, harness, monkeypatch
):
    from switchyard.adapters.batches_table import BatchesTable

    env = jobs_env.environment
    with monkeypatch.context() as patch:
        _crash_before_the_commit(patch)
        with pytest.raises(Crash):
            submit(api, caller, chat_items(30))
    shift_clock(monkeypatch, 1000)

    with monkeypatch.context() as patch:

        def crash(self, batch_id):
            raise Crash()

        patch.setattr(BatchesTable, "delete", crash)
        with pytest.raises(Crash):
            harness.sweep()
    [stored] = scan(env, "BATCHES_TABLE")
    assert stored["state"] == "ABANDONED" and scan(env, "JOBS_TABLE") == []

    assert harness.sweep()["abandoned_batches"] == [stored["batch_id"]]
    assert scan(env, "BATCHES_TABLE") == []
