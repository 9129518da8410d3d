"""Workflow runs end to end on in-process moto with the Step Functions executor on.

The state machine is the real statemachines/workflow.asl.json, provisioned from template.yaml; its
Lambda tasks run the real WorkflowStepFunction handler in-process (switchyard_local.lambda_runtime),
and a JobsHarness thread plays the SQS event source of the real dispatcher against a fake model server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from switchyard.errors import Conflict

from tests.conftest import BASE_ENVIRONMENT, TEMPLATE, Stack, reset_switchyard_caches
from tests.functional.jobs_harness import JobsHarness

RUNS = "/v1/workflows/runs"
JOB_ENVIRONMENT = {
    "RETRY_BACKOFF_BASE_SECONDS": "0",
    "CAPACITY_WAIT_SECONDS": "0",
    "NO_PROVIDER_GRACE_SECONDS": "0.3",
    "JOB_UPSTREAM_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
def aws_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """conftest's stack, plus the Lambda patch so the state machine's tasks run the real handler.

    Provisioning turns on moto's Step Functions executor (the template has a state machine). Runs still
    going at the end are canceled and drained while moto is up, so no execution thread outlives it.
    """
    from moto import mock_aws
    from switchyard.ttl_cache import stop_keeping_warm, wait_for_refreshes
    from switchyard_local import dynamodb_atomicity
    from switchyard_local.lambda_patch import install_lambda_patch, uninstall_lambda_patch
    from switchyard_local.lambda_runtime import LocalFunctionRuntime
    from switchyard_local.provision import provision

    dynamodb_atomicity.install()
    for name, value in BASE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        provisioned = provision(TEMPLATE, {"ProviderEndpointPolicy": "loopback"})
        for name, value in {**provisioned.environment, **JOB_ENVIRONMENT}.items():
            monkeypatch.setenv(name, str(value))
        reset_switchyard_caches()
        install_lambda_patch(LocalFunctionRuntime(provisioned.functions.values()))
        try:
            yield Stack(dict(provisioned.environment), provisioned.physical)
            _wind_down_executions(provisioned.environment)
        finally:
            stop_keeping_warm()
            wait_for_refreshes()  # a cache reload still running must not reach past the AWS double
            uninstall_lambda_patch()
    reset_switchyard_caches()


def _wind_down_executions(environment: dict[str, str]) -> None:
    import boto3

    sfn = boto3.client("stepfunctions")
    arn = environment["WORKFLOW_STATE_MACHINE_ARN"]
    from switchyard.services.workflows import get_workflows_service

    service = get_workflows_service()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        running = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
        if not running:
            return
        for execution in running:
            run = service.runs.get_run(execution["name"])
            if run and run.status == "RUNNING":
                with contextlib.suppress(Conflict):  # it ended meanwhile
                    service.cancel(run.account_id, run.run_id, None)
        time.sleep(0.05)


@pytest.fixture
def harness(aws_stack) -> JobsHarness:
    return JobsHarness(aws_stack.environment)


@contextmanager
def dispatching(harness: JobsHarness) -> Iterator[None]:
    """The dispatcher's event source, polling in the background like the local stack's poller."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                if harness.dispatch_once() == 0:
                    time.sleep(0.1)
            except BaseException as exc:  # noqa: BLE001 - surfaced when the block ends
                failures.append(exc)
                return

    worker = threading.Thread(target=loop, name="dispatcher-poller", daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(10)
    if failures:
        raise failures[0]


@pytest.fixture
def dispatcher(harness) -> Iterator[JobsHarness]:
    with dispatching(harness):
        yield harness


# ---------------------------------------------------------------- helpers


def chat(text: str, model: str = "fake-llm") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def llm(step_id: str, text: str, depends_on: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "endpoint": "/v1/chat/completions",
        "body": chat(text),
        "depends_on": depends_on or [],
        **extra,
    }


def gate(step_id: str, depends_on: list[str], **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "gate", "depends_on": depends_on, **extra}


def start(api, caller, steps: list[dict] | None = None, *, inputs=None, template=None, headers=None):
    body: dict[str, Any] = {"template": template} if template else {"spec": {"steps": steps}}
    if inputs is not None:
        body["inputs"] = inputs
    return api("POST", RUNS, body=body, headers={**caller.headers, **(headers or {})})


def started(api, caller, steps=None, **kwargs) -> dict[str, Any]:
    response = start(api, caller, steps, **kwargs)
    assert response.status == 202, response.content
    return response.json()


def get_run(api, caller, run_id: str) -> dict[str, Any]:
    response = api("GET", f"{RUNS}/{run_id}", headers=caller.headers)
    assert response.status == 200, response.content
    return response.json()


def steps_of(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in run["steps"]}


def wait_for(
    api, caller, run_id: str, condition: Callable[[dict[str, Any]], bool], timeout: float = 15.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = get_run(api, caller, run_id)
        if condition(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached; run is {run}")
        # Not faster: every read is several moto calls, and a busy poller slows the run it watches.
        time.sleep(0.1)


def finished(run: dict[str, Any]) -> bool:
    return run["status"] != "RUNNING"


def step_is(step_id: str, *statuses: str) -> Callable[[dict[str, Any]], bool]:
    def holds(run: dict[str, Any]) -> bool:
        steps = steps_of(run)
        assert step_id in steps, f"step {step_id} missing from {run}"
        return steps[step_id]["status"] in statuses

    return holds


def execution_status(run_id: str, environment: dict[str, str]) -> str:
    import boto3

    arn = environment["WORKFLOW_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + f":{run_id}"
    return boto3.client("stepfunctions").describe_execution(executionArn=arn)["status"]


def wait_for_execution(run_id: str, environment: dict[str, str], timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while (status := execution_status(run_id, environment)) == "RUNNING":
        if time.monotonic() > deadline:
            raise AssertionError("the execution is still RUNNING")
        time.sleep(0.03)
    return status


def approve(api, caller, run_id: str, step_id: str, comment: str | None = None, action: str = "approve"):
    body = {"comment": comment} if comment is not None else None
    return api("POST", f"{RUNS}/{run_id}/steps/{step_id}/{action}", body=body, headers=caller.headers)


DIAMOND = [
    llm("a", "start"),
    llm("b", "left: {{steps.a.output.text}}", ["a"]),
    llm("c", "right: {{steps.a.output.text}}", ["a"]),
    llm("d", "join: {{steps.b.output.text}} | {{steps.c.output.text}}", ["b", "c"]),
]


# ---------------------------------------------------------------- DAG scheduling


def test_diamond_runs_b_and_c_side_by_side_and_d_after_both(api, caller, harness, online_provider, aws_stack):
    run = started(api, caller, DIAMOND)
    assert run["status"] == "RUNNING"
    assert {s["id"]: s["status"] for s in run["steps"]} == dict.fromkeys("abcd", "pending")
    assert run["edges"] == [
        {"from": "a", "to": "b"},
        {"from": "a", "to": "c"},
        {"from": "b", "to": "d"},
        {"from": "c", "to": "d"},
    ]

    # Only A is queued; nothing dispatches yet.
    run = wait_for(api, caller, run["id"], step_is("a", "running"))
    harness.drain(lambda: steps_of(get_run(api, caller, run["id"]))["a"]["status"] == "succeeded")
    # A is done: B and C are both queued as jobs before either has finished.
    both = wait_for(api, caller, run["id"], lambda r: all(steps_of(r)[s]["job_status"] for s in "bc"))
    b, c = steps_of(both)["b"], steps_of(both)["c"]
    assert b["job_status"] == c["job_status"] == "QUEUED"
    assert steps_of(both)["d"]["status"] == "pending"
    jobs = api("GET", "/v1/jobs", headers=caller.headers, query={"active": "1"}).json()["data"]
    assert {j["id"] for j in jobs} == {b["job_id"], c["job_id"]}

    with dispatching(harness):
        done = wait_for(api, caller, run["id"], finished)
    assert done["status"] == "SUCCEEDED", done
    steps = steps_of(done)
    assert all(s["status"] == "succeeded" for s in steps.values())
    assert steps["d"]["started_at"] >= max(steps["b"]["finished_at"], steps["c"]["finished_at"])
    assert steps["a"]["output"]["text"]
    # B's body was built from A's text (the fake server echoes the last user message).
    sent = [r["json"]["messages"][0]["content"] for r in online_provider.server.history.all() if r["json"]]
    assert "left: Fake reply from fake-llm: start" in sent
    assert (
        "join: Fake reply from fake-llm: left: Fake reply from fake-llm: start | Fake reply from fake-llm: right: Fake reply from fake-llm: start"
        in sent
    )
    assert wait_for_execution(done["id"], aws_stack.environment) == "SUCCEEDED"


def test_a_long_branch_does_not_hold_back_an_unrelated_short_one(api, caller, online_provider, dispatcher):
    # "hold" blocks its branch until approved; the short chain s1 -> s2 -> s3 is three levels deep.
    run = started(
        api,
        caller,
        [
            gate("hold", []),
            llm("after_hold", "after", ["hold"]),
            llm("s1", "one"),
            llm("s2", "two {{steps.s1.output.text}}", ["s1"]),
            llm("s3", "three {{steps.s2.output.text}}", ["s2"]),
        ],
    )

    short_done = wait_for(api, caller, run["id"], step_is("s3", "succeeded"))

    steps = steps_of(short_done)
    assert steps["hold"]["status"] == "waiting"
    assert steps["after_hold"]["status"] == "pending"
    assert short_done["status"] == "RUNNING"
    assert approve(api, caller, run["id"], "hold").status == 200
    done = wait_for(api, caller, run["id"], finished)
    assert done["status"] == "SUCCEEDED"


# ---------------------------------------------------------------- gates

REVIEWED = [
    llm("draft", "draft"),
    gate("review", ["draft"], prompt="Is the draft good?", timeout_seconds=600),
    llm("final", "final {{steps.draft.output.text}} / note: {{steps.review.output.comment}}", ["review"]),
]


def test_approving_a_gate_records_who_and_when_and_runs_what_follows(
    api, caller, dispatcher, online_provider
):
    run = started(api, caller, REVIEWED)
    waiting = wait_for(api, caller, run["id"], step_is("review", "waiting"))
    gate_view = steps_of(waiting)["review"]
    assert gate_view["gate"]["prompt"] == "Is the draft good?"
    assert gate_view["gate"]["timeout_seconds"] == 600
    assert gate_view["gate"]["waiting_since"] and gate_view["gate"]["expires_at"]
    assert steps_of(waiting)["final"]["status"] == "pending"

    response = approve(api, caller, run["id"], "review", comment="ship it")

    assert response.status == 200, response.content
    resolution = response.json()["step"]["gate"]["resolution"]
    assert resolution["decision"] == "approved"
    assert resolution["by"] == caller.account_id
    assert resolution["comment"] == "ship it"
    assert resolution["at"].endswith("Z")
    again = approve(api, caller, run["id"], "review")
    assert again.status == 409
    assert again.json()["error"]["type"] == "conflict"
    assert "already approved" in again.json()["error"]["message"]
    assert approve(api, caller, run["id"], "review", action="reject").status == 409
    done = wait_for(api, caller, run["id"], finished)
    assert done["status"] == "SUCCEEDED"
    assert steps_of(done)["review"]["output"]["comment"] == "ship it"
    sent = online_provider.last_request("/v1/chat/completions")["json"]["messages"][0]["content"]
    assert sent == "final Fake reply from fake-llm: draft / note: ship it"


def test_rejecting_a_gate_skips_its_branch_and_the_run_says_rejected(
    api, caller, online_provider, dispatcher
):
    run = started(
        api,
        caller,
        [*REVIEWED, llm("publish", "publish", ["final"]), llm("unrelated", "side")],
    )
    wait_for(api, caller, run["id"], step_is("review", "waiting"))

    response = approve(api, caller, run["id"], "review", comment="too long", action="reject")

    assert response.status == 200, response.content
    assert response.json()["step"]["status"] == "rejected"
    done = wait_for(api, caller, run["id"], finished)
    steps = steps_of(done)
    assert done["status"] == "REJECTED"
    assert done["error"]["step_id"] == "review"
    assert "rejected" in done["error"]["message"] and "too long" in done["error"]["message"]
    assert steps["review"]["status"] == "rejected"
    assert steps["final"]["status"] == steps["publish"]["status"] == "skipped"
    assert steps["final"]["error"]["message"] == "skipped: upstream step 'review' was rejected"
    assert steps["unrelated"]["status"] == "succeeded"
    assert approve(api, caller, run["id"], "review").status == 409


def test_a_gate_that_times_out_fails_the_run_with_the_reason(api, caller, dispatcher, aws_stack):
    run = started(api, caller, [gate("review", [], timeout_seconds=1), llm("after", "x", ["review"])])

    done = wait_for(api, caller, run["id"], finished)

    steps = steps_of(done)
    assert done["status"] == "FAILED"
    assert steps["review"]["status"] == "timed_out"
    assert steps["review"]["error"]["message"] == "gate 'review' got no decision within 1 s"
    assert steps["after"]["status"] == "skipped"
    assert done["error"]["message"] == "gate 'review' got no decision within 1 s"
    late = approve(api, caller, run["id"], "review")
    assert late.status == 409
    assert "timed out" in late.json()["error"]["message"]
    assert wait_for_execution(run["id"], aws_stack.environment) == "FAILED"


def test_only_a_waiting_gate_can_be_decided(api, caller, harness, online_provider):
    run = started(api, caller, REVIEWED)
    wait_for(api, caller, run["id"], step_is("draft", "running"))

    not_a_gate = approve(api, caller, run["id"], "draft")
    not_yet = approve(api, caller, run["id"], "review")
    unknown = approve(api, caller, run["id"], "nope")

    assert not_a_gate.status == 409
    assert "not a gate" in not_a_gate.json()["error"]["message"]
    assert not_yet.status == 409
    assert "not waiting for a decision yet" in not_yet.json()["error"]["message"]
    assert unknown.status == 404
    bad_comment = api(
        "POST", f"{RUNS}/{run['id']}/steps/review/approve", body={"comment": 5}, headers=caller.headers
    )
    assert bad_comment.status == 400


# ---------------------------------------------------------------- failures and cancel


def test_a_failed_step_skips_its_dependents_and_fails_the_run(api, caller, online_provider, dispatcher):
    ghost = llm("broken", "x")
    ghost["body"]["model"] = "ghost-llm"  # no provider serves it: no_provider once the grace period ends
    run = started(
        api,
        caller,
        [
            llm("a", "a"),
            {**ghost, "depends_on": ["a"]},
            llm("c", "c {{steps.broken.output.text}}", ["broken"]),
            llm("d", "d", ["c", "a"]),
            llm("side", "side", ["a"]),
        ],
    )

    done = wait_for(api, caller, run["id"], finished)

    steps = steps_of(done)
    assert done["status"] == "FAILED"
    assert steps["broken"]["status"] == "failed"
    assert steps["broken"]["error"]["type"] == "no_provider"
    assert steps["c"]["status"] == steps["d"]["status"] == "skipped"
    assert steps["c"]["error"]["message"] == "skipped: upstream step 'broken' failed"
    assert steps["side"]["status"] == steps["a"]["status"] == "succeeded"
    assert done["error"]["step_id"] == "broken"
    assert done["error"]["message"].startswith(
        "step 'broken' failed: No online provider serving model 'ghost-llm'"
    )
    job = api("GET", f"/v1/jobs/{steps['broken']['job_id']}", headers=caller.headers).json()
    assert job["status"] == "FAILED"
    assert (job["workflow_run_id"], job["workflow_step_id"]) == (run["id"], "broken")
    retry = api("POST", f"/v1/jobs/{job['id']}/retry", headers=caller.headers)
    assert retry.status == 409
    assert "start a new run" in retry.json()["error"]["message"]


def test_cancel_stops_the_run_its_gates_and_its_queued_jobs(api, caller, harness, aws_stack):
    run = started(
        api,
        caller,
        [
            llm("queued", "q"),
            gate("review", []),
            llm("later", "l", ["queued"]),
            llm("last", "z", ["review", "later"]),
        ],
    )
    ready = wait_for(
        api,
        caller,
        run["id"],
        lambda r: steps_of(r)["queued"]["job_status"] and step_is("review", "waiting")(r),
    )
    job_id = steps_of(ready)["queued"]["job_id"]

    response = api("POST", f"{RUNS}/{run['id']}/cancel", headers=caller.headers)

    assert response.status == 200, response.content
    assert response.json()["status"] == "CANCELED"
    assert all(s["status"] == "canceled" for s in response.json()["steps"])
    assert api("GET", f"/v1/jobs/{job_id}", headers=caller.headers).json()["status"] == "CANCELED"
    assert wait_for_execution(run["id"], aws_stack.environment) == "FAILED"  # the RunCanceled Fail state
    done = get_run(api, caller, run["id"])
    assert done["status"] == "CANCELED"
    assert all(s["status"] == "canceled" for s in done["steps"])
    assert api("POST", f"{RUNS}/{run['id']}/cancel", headers=caller.headers).status == 409
    assert approve(api, caller, run["id"], "review").status == 409
    assert harness.depth() <= 1  # the canceled job's message is dropped as stale when it is read
    harness.drain()


def test_another_account_can_neither_see_nor_decide_nor_cancel_a_run(api, caller, new_caller):
    run = started(api, caller, [gate("review", [])])
    wait_for(api, caller, run["id"], step_is("review", "waiting"))
    intruder = new_caller("intruder")

    assert api("GET", f"{RUNS}/{run['id']}", headers=intruder.headers).status == 404
    assert approve(api, intruder, run["id"], "review").status == 404
    assert approve(api, intruder, run["id"], "review", action="reject").status == 404
    assert api("POST", f"{RUNS}/{run['id']}/cancel", headers=intruder.headers).status == 404
    assert api("GET", RUNS, headers=intruder.headers).json()["data"] == []
    assert steps_of(get_run(api, caller, run["id"]))["review"]["status"] == "waiting"
    assert api("GET", f"{RUNS}/{run['id']}").status == 401


# ---------------------------------------------------------------- validation and listing


INVALID_SPECS = [
    ([llm("a", "x", ["b"]), llm("b", "y", ["a"])], None, "steps form a cycle: "),
    ([llm("a", "x", ["zz"])], None, "step 'a': depends_on names unknown step 'zz'"),
    ([llm("a", "x"), llm("b", "{{steps.a.output.text}}")], None, "which is not upstream of it"),
    ([llm("a", "{{steps.zz.output.text}}")], None, "references unknown step 'zz'"),
    ([llm("a", "x"), llm("a", "y")], None, "duplicate step id 'a'"),
    (
        [{"id": "a", "endpoint": "/v1/audio/transcriptions", "body": {"model": "m"}}],
        None,
        "step 'a': endpoint '/v1/audio/transcriptions' is synchronous only",
    ),
    (
        [{"id": "a", "endpoint": "/v1/images/generations", "body": {"model": "m"}}],
        None,
        "step 'a': body.prompt",
    ),
    ([llm("a", "{{inputs.topic}}")], {}, "missing input 'topic'"),
    ([llm(f"s{i}", "x") for i in range(41)], None, "at most 40"),
]


def test_invalid_specs_are_refused_before_anything_starts(api, caller):
    # One stack for every case (the messages themselves are covered by tests/unit/test_workflow_spec.py).
    for steps, inputs, fragment in INVALID_SPECS:
        response = start(api, caller, steps, inputs=inputs)

        assert response.status == 400, response.content
        assert response.json()["error"]["type"] == "invalid_request"
        assert fragment in response.json()["error"]["message"]
    unknown_template = api("POST", RUNS, body={"template": "nope"}, headers=caller.headers)
    assert unknown_template.status == 400
    assert "unknown template 'nope' (available: " in unknown_template.json()["error"]["message"]
    both = api("POST", RUNS, body={"template": "x", "spec": {}}, headers=caller.headers)
    assert both.status == 400
    assert api("GET", RUNS, headers=caller.headers).json()["data"] == []
    assert api("GET", "/v1/jobs", headers=caller.headers).json()["data"] == []


def test_runs_are_listed_newest_first_and_page_with_after(api, caller):
    ids = [started(api, caller, [gate("g", [])])["id"] for _ in range(3)]

    first = api("GET", RUNS, headers=caller.headers, query={"limit": "2"}).json()
    rest = api("GET", RUNS, headers=caller.headers, query={"limit": "2", "after": first["last_id"]}).json()

    assert [r["id"] for r in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    assert [r["id"] for r in rest["data"]] == ids[:1]
    assert rest["has_more"] is False
    assert first["data"][0]["object"] == "workflow.run" and first["data"][0]["status"] == "RUNNING"


def test_an_idempotency_key_starts_one_run(api, caller):
    headers = {"idempotency-key": "wf-1"}
    first = start(api, caller, [gate("g", [])], headers=headers)
    again = start(api, caller, [gate("g", [])], headers=headers)
    other = start(api, caller, [gate("h", [])], headers=headers)

    assert first.status == again.status == 202
    assert again.json()["id"] == first.json()["id"]
    assert other.status == 409
    assert len(api("GET", RUNS, headers=caller.headers).json()["data"]) == 1


def test_workflow_endpoints_answer_503_when_async_is_disabled(api, caller, monkeypatch):
    monkeypatch.setenv("ASYNC_ENABLED", "false")
    reset_switchyard_caches()

    for method, path in [
        ("GET", "/v1/workflows/templates"),
        ("POST", RUNS),
        ("GET", RUNS),
        ("GET", f"{RUNS}/run_x"),
        ("POST", f"{RUNS}/run_x/steps/g/approve"),
        ("POST", f"{RUNS}/run_x/cancel"),
    ]:
        body = {"spec": {"steps": [gate("g", [])]}} if method == "POST" and path == RUNS else None
        response = api(method, path, body=body, headers=caller.headers)
        assert response.status == 503, (path, response.content)
        assert response.json()["error"]["type"] == "async_disabled"


# ---------------------------------------------------------------- templates


def test_templates_are_listed_with_inputs_and_their_dag(api, caller):
    response = api("GET", "/v1/workflows/templates", headers=caller.headers)

    assert response.status == 200
    templates = {t["id"]: t for t in response.json()["data"]}
    assert {"illustrated-narration", "perspectives-digest", "song-and-video"} <= set(templates)
    narration = templates["illustrated-narration"]
    assert narration["description"]
    assert {"name": "topic", "description": "What the illustration is about.", "required": True} in narration[
        "inputs"
    ]
    assert {"write_prompt", "image", "review", "caption", "narration"} == {
        s["id"] for s in narration["steps"]
    }
    assert {"from": "image", "to": "review"} in narration["edges"]
    endpoints = {s.get("endpoint") for t in templates.values() for s in t["steps"]}
    assert {"/v1/chat/completions", "/v1/images/generations", "/v1/audio/speech"} <= endpoints
    assert {"/v1/music/generations", "/v1/videos/generations"} <= endpoints


FAKE_MODELS = {
    "text_model": "fake-llm",
    "image_model": "fake-image",
    "speech_model": "fake-tts",
}


def test_a_template_runs_end_to_end_with_media_and_an_approval(api, caller, dispatcher, online_provider):
    run = started(
        api, caller, template="illustrated-narration", inputs={"topic": "a lighthouse", **FAKE_MODELS}
    )
    assert run["template"] == "illustrated-narration"
    assert run["inputs"]["style"] == "watercolor"  # defaults are applied and shown

    waiting = wait_for(api, caller, run["id"], step_is("review", "waiting"))
    image = steps_of(waiting)["image"]
    assert image["status"] == "succeeded"
    assert image["result_url"] == f"https://gateway.test/api/inference/assets/{image['job_id']}/"
    asset = api("GET", image["result_url"].removeprefix("https://gateway.test"), headers=caller.headers)
    assert asset.status == 200 and asset.content.startswith(b"\x89PNG")
    prompt = steps_of(waiting)["write_prompt"]["output"]["text"]
    assert "a lighthouse" in prompt and "watercolor" in prompt
    assert approve(api, caller, run["id"], "review").status == 200

    done = wait_for(api, caller, run["id"], finished)

    assert done["status"] == "SUCCEEDED", done
    narration = steps_of(done)["narration"]
    assert narration["result_url"].endswith(f"/api/inference/assets/{narration['job_id']}/")
    assert (
        online_provider.last_request("/v1/audio/speech")["json"]["input"]
        == steps_of(done)["caption"]["output"]["text"]
    )
    jobs = api("GET", "/v1/jobs", headers=caller.headers).json()["data"]
    assert len(jobs) == 4  # every inference step is an ordinary job


# ---------------------------------------------------------------- webhooks


@contextmanager
def delivering(environment: dict[str, str], harness: JobsHarness) -> Iterator[None]:
    """The webhook delivery function's event source, polling in the background."""
    from tests.functional.webhooks_harness import WebhooksHarness

    webhooks = WebhooksHarness(environment, harness)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            if webhooks.deliver_once() == 0:
                time.sleep(0.1)

    worker = threading.Thread(target=loop, name="webhook-poller", daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(10)


def test_a_run_naming_a_webhook_announces_its_gate_and_its_end(
    api, caller, aws_stack, dispatcher, online_provider
):
    from standardwebhooks.webhooks import Webhook

    from tests.webhook_receiver import running_receiver

    with running_receiver() as receiver, delivering(aws_stack.environment, dispatcher):
        hook = api("POST", "/v1/webhooks", body={"url": receiver.url}, headers=caller.headers).json()
        body = {
            "spec": {"steps": REVIEWED},
            "metadata": {"webhook_id": hook["id"]},
        }
        response = api("POST", RUNS, body=body, headers=caller.headers)
        assert response.status == 202, response.content
        run_id = response.json()["id"]
        (waiting,) = receiver.wait_for(1, event="workflow.gate.waiting")
        gate_event = Webhook(hook["secret"]).verify(waiting.body, waiting.headers)
        data = gate_event["data"]
        assert (data["run_id"], data["step_id"], data["prompt"]) == (run_id, "review", "Is the draft good?")
        assert data["expires_at"] > data["waiting_since"]
        assert data["approve_url"] == f"https://gateway.test{RUNS}/{run_id}/steps/review/approve"
        # The event comes once the gate can be decided.
        assert approve(api, caller, run_id, "review", comment="ship it").status == 200
        (ended,) = receiver.wait_for(1, event="workflow.run.completed")
        end_event = Webhook(hook["secret"]).verify(ended.body, ended.headers)
        assert end_event["data"]["id"] == run_id and end_event["data"]["status"] == "SUCCEEDED"
        assert end_event["data"]["error"] is None
        assert len(receiver.received) == 2  # the steps' bodies named no webhook: no generation events


def test_a_canceled_run_announces_its_end(api, caller, aws_stack, harness):
    from tests.webhook_receiver import running_receiver

    with running_receiver() as receiver, delivering(aws_stack.environment, harness):
        hook = api("POST", "/v1/webhooks", body={"url": receiver.url}, headers=caller.headers).json()
        body = {"spec": {"steps": [gate("review", [])]}, "metadata": {"webhook_id": hook["id"]}}
        run_id = api("POST", RUNS, body=body, headers=caller.headers).json()["id"]
        receiver.wait_for(1, event="workflow.gate.waiting")
        assert api("POST", f"{RUNS}/{run_id}/cancel", headers=caller.headers).status == 200
        (ended,) = receiver.wait_for(1, event="workflow.run.completed")
        assert ended.json()["data"]["status"] == "CANCELED"
        assert ended.json()["data"]["error"]["type"] == "canceled"


def test_a_run_naming_someone_elses_webhook_is_refused_before_it_starts(api, caller, new_caller):
    theirs = api(
        "POST", "/v1/webhooks", body={"url": "http://127.0.0.1:9/x"}, headers=new_caller("other").headers
    ).json()["id"]
    for body in (
        {"spec": {"steps": [gate("review", [])]}, "metadata": {"webhook_id": theirs}},
        {"spec": {"steps": [llm("a", "x")]}, "metadata": "not an object"},
        {
            "spec": {
                "steps": [{**llm("a", "x"), "body": {**chat("x"), "metadata": {"webhook_id": "wh_nope"}}}]
            }
        },
    ):
        response = api("POST", RUNS, body=body, headers=caller.headers)
        assert response.status == 400, response.content
        assert response.json()["error"]["type"] == "invalid_request"
    assert api("GET", RUNS, headers=caller.headers).json()["data"] == []
