"""Metrics, logs and traces of real work on moto: a job's path (API -> SQS -> dispatcher -> provider ->
end) read back from the EMF documents, the log lines and the trace segments it produced."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import lambda_context, reset_switchyard_caches
from tests.functional.jobs_harness import JobsHarness

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hello"}]}
JOB_SETTINGS = {"NO_PROVIDER_GRACE_SECONDS": "30"}
TRACE_ROOT = "1-6790a1b2-0123456789abcdef01234567"
TRACE_HEADER = f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture
def emf(jobs_env, monkeypatch, capsys):
    """Metrics on; returns a reader of the EMF documents printed since the last read."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()

    def documents() -> list[dict]:
        out = capsys.readouterr().out.splitlines()
        return [json.loads(line) for line in out if line.startswith("{") and '"_aws"' in line]

    return documents


def directives(documents: list[dict]) -> list[tuple[dict[str, str], dict[str, float], dict]]:
    """(dimensions, metric values, document) per metric directive of each document."""
    found = []
    for document in documents:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            (names,) = directive["Dimensions"]
            values = {}
            for metric in directive["Metrics"]:
                (values[metric["Name"]],) = document[metric["Name"]]
            found.append(({name: document[name] for name in names}, values, document))
    return found


def metrics_by_name(documents: list[dict]) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for dimensions, values, _ in directives(documents):
        for name, value in values.items():
            found.setdefault(name, []).append((dimensions, value))
    return found


def submit(api, caller, body=None):
    response = api(
        "POST", "/v1/chat/completions", body={**(body or CHAT), "async": True}, headers=caller.headers
    )
    assert response.status == 202, response.content
    return response.json()["id"]


def status(api, caller, job_id):
    return api("GET", f"/v1/jobs/{job_id}", headers=caller.headers).json()["status"]


def test_given_a_job_run_end_to_end_then_its_metrics_come_with_the_expected_dimensions(
    api, caller, harness, online_provider, emf, jobs_env
):
    job_id = submit(api, caller)
    harness.drain(lambda: status(api, caller, job_id) == "PROCESSED")

    documents = emf()
    found = metrics_by_name(documents)
    namespaces = {d["Namespace"] for doc in documents for d in doc["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {jobs_env.environment["POWERTOOLS_METRICS_NAMESPACE"]}
    assert namespaces == {"Switchyard/switchyard-local"}
    assert ({"InferenceType": "LLM"}, 1) in found["JobsSubmitted"]
    assert ({"Outcome": "processed"}, 1) in found["DispatchOutcomes"]
    assert ({"CallPath": "async"}, 1) in found["ProviderCalls"]
    assert ({"CallPath": "async"}, 0) in found["ProviderErrors"]
    assert ({"InferenceType": "LLM"}, 1) in found["JobsProcessed"]
    assert [dims for dims, _ in found["DispatchLatency"]] == [{}]
    assert [dims for dims, _ in found["JobDuration"]] == [{}]
    assert ({"RouteGroup": "async_submit"}, 1) in found["Requests"]
    assert ({"RouteGroup": "jobs"}, 1) in found["Requests"]
    assert ({"RouteGroup": "heartbeats"}, 1) not in found["Requests"], "the heartbeat came before"


def test_given_any_work_then_no_dimension_ever_carries_an_account_a_model_or_a_job(
    api, caller, harness, online_provider, emf
):
    from switchyard.metrics import METRICS, dimension_values

    job_id = submit(api, caller)
    harness.drain(lambda: status(api, caller, job_id) == "PROCESSED")
    api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    api("GET", "/v1/models", headers=caller.headers)
    harness.sweep()

    found = directives(emf())
    assert len(found) > 10
    for dimensions, values, document in found:
        everything = json.dumps({k: v for k, v in document.items() if k != "_aws"})
        assert caller.account_id not in everything
        assert job_id not in everything and "fake-llm" not in everything
        for name in values:
            spec = METRICS[name]
            allowed = {d.value: allowed for d, allowed in dimension_values(spec).items()}
            assert set(dimensions) == set(allowed), name
            for dimension, value in dimensions.items():
                assert value in allowed[dimension], (name, dimension, value)


def test_given_a_sync_inference_then_its_latency_and_the_gateway_share_are_measured(
    api, caller, online_provider, emf
):
    response = api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    assert response.status == 200

    found = metrics_by_name(emf())
    ((_, total),) = found["SyncLatency"]
    ((_, gateway),) = found["SyncGatewayLatency"]
    ((_, provider),) = found["ProviderLatency"]
    assert 0 < gateway < total
    assert gateway + provider == pytest.approx(total, abs=0.01)
    assert ({"RouteGroup": "sync_inference"}, 1) in found["Requests"]
    assert ({"CallPath": "sync"}, 1) in found["ProviderCalls"]


def test_given_errors_then_4xx_and_5xx_are_counted_by_route_group(api, caller, emf):
    assert api("GET", "/v1/jobs/job_missing", headers=caller.headers).status == 404
    assert api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers).status == 404  # no provider
    assert api("GET", "/v1/jobs", headers={"authorization": "Bearer nope"}).status == 401

    found = metrics_by_name(emf())
    assert ({"RouteGroup": "jobs"}, 1) in found["ClientErrors"]
    assert ({"RouteGroup": "sync_inference"}, 1) in found["ClientErrors"]
    assert all(value == 0 for _, value in found["ServerErrors"])
    assert "SyncLatency" not in found, "no provider was called"


def test_given_a_job_whose_model_has_no_provider_then_the_dispatcher_counts_a_wait_for_a_provider(
    api, caller, harness, emf
):
    submit(api, caller)
    harness.dispatch_once()

    found = metrics_by_name(emf())
    assert found["DispatchOutcomes"] == [({"Outcome": "waiting_for_provider"}, 1)]


def test_given_a_sweep_then_the_census_reports_queue_providers_and_liveness(
    api, caller, harness, online_provider, emf
):
    submit(api, caller)
    emf()

    harness.sweep()

    ((dimensions, census, _),) = [d for d in directives(emf()) if "SweepsCompleted" in d[1]]
    assert dimensions == {}
    assert census["JobsQueued"] == 1 and census["JobsRunning"] == 0
    assert census["ProvidersOnline"] == 1
    assert 0 <= census["OldestQueuedJobAge"] < 30
    assert census["WorkerStalled"] == 0, "queued just now: it has not had its chance yet"
    assert "DispatcherTickAge" not in census, "the dispatcher never ran"


def test_given_queued_work_and_a_silent_dispatcher_then_the_census_reports_the_worker_stalled(
    api, caller, jobs_env, harness, online_provider, emf, monkeypatch
):
    from switchyard.services.jobs import DISPATCHER_TICK_ID, get_jobs_service

    get_jobs_service().record_tick(DISPATCHER_TICK_ID)
    submit(api, caller)
    monkeypatch.setenv("WORKER_STALLED_AFTER_SECONDS", "0")  # any silence is too long
    reset_switchyard_caches()
    emf()

    harness.sweep()

    ((_, census, _),) = [d for d in directives(emf()) if "SweepsCompleted" in d[1]]
    assert census["WorkerStalled"] == 1
    assert census["DispatcherTickAge"] >= 0


# ------------------------------------------------------------------ logs


@contextmanager
def captured_log_lines() -> Iterator[list[dict]]:
    """Every line the package logs in the block, formatted as it is emitted (in the emitting thread, by
    the Powertools formatter the handlers' logger installed), parsed when the block ends."""
    from switchyard.logs import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    package = logging.getLogger("switchyard")
    level = package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        package.removeHandler(handler)
        package.setLevel(level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{"))


def test_given_a_job_then_every_line_of_its_life_carries_its_id_and_the_right_function(
    api, caller, jobs_env, online_provider
):
    harness = JobsHarness(jobs_env.environment)
    with captured_log_lines() as lines:
        job_id = submit(api, caller)
        harness.drain(lambda: status(api, caller, job_id) == "PROCESSED")
        harness.sweep()

    mine = [line for line in lines if line.get("job_id") == job_id]
    messages = [(line["function_name"], line["message"]) for line in mine]
    assert ("ApiFunction", "job submitted") in messages
    assert ("DispatcherFunction", "dispatched") in messages
    assert ("DispatcherFunction", "job ended") in messages
    assert {line["correlation_id"] for line in mine} == {job_id}
    submitted = next(line for line in mine if line["message"] == "job submitted")
    ended = next(line for line in mine if line["message"] == "job ended")
    assert submitted["account_id"] == ended["account_id"] == caller.account_id
    assert ended["status"] == "PROCESSED" and ended["failed"] == 0 and ended["model"] == "fake-llm"
    assert submitted["request_id"]
    api_lines = [
        line for line in lines if line.get("function_name") == "ApiFunction" and "job_id" not in line
    ]
    assert all(line.get("correlation_id") != job_id for line in api_lines)
    sweeps = [line for line in lines if line["message"] == "swept"]
    assert sweeps and all(line["function_name"] == "SweeperFunction" for line in sweeps)
    assert all("correlation_id" not in line for line in sweeps), "a sweep is nobody's request"


# ------------------------------------------------------------------ traces


class RecordingEmitter:
    def __init__(self) -> None:
        self.documents: list[dict] = []

    def send_entity(self, entity) -> None:
        self.documents.append(json.loads(entity.serialize()))


@pytest.fixture
def segments() -> Iterator[list[dict]]:
    from switchyard import tracing

    emitter = RecordingEmitter()
    tracing.install_emitter(emitter)
    try:
        yield emitter.documents
    finally:
        tracing.install_emitter(None)


def test_given_a_traced_request_then_each_dispatch_of_its_job_joins_the_request_trace(
    api, caller, harness, online_provider, segments, monkeypatch
):
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE_HEADER)  # what Lambda hands the API function
    job_id = submit(api, caller)
    monkeypatch.delenv("_X_AMZN_TRACE_ID")
    messages = harness.sqs.receive_message(
        QueueUrl=harness.queue_url, VisibilityTimeout=60, MessageSystemAttributeNames=["All"]
    )["Messages"]
    event = harness.poller.event_for(messages)  # as the event source mapping builds it
    (record,) = event["Records"]
    assert record["attributes"]["AWSTraceHeader"] == TRACE_HEADER  # X-Ray links the dispatcher's own trace
    harness.dispatcher(event, lambda_context("DispatcherFunction"))

    assert status(api, caller, job_id) == "PROCESSED"
    (segment,) = segments
    assert segment["trace_id"] == TRACE_ROOT
    assert segment["parent_id"] == "53995c3f42cd8ad8"
    assert segment["annotations"]["job_id"] == job_id
    assert segment["annotations"]["request_id"]
    assert segment["annotations"]["outcome"] == "processed"
    (provider,) = segment["subsegments"]
    assert provider["name"] == "provider" and provider["namespace"] == "remote"
    assert provider["http"]["response"]["status"] == 200
    assert provider["http"]["request"]["url"].endswith("/v1/chat/completions")
    assert segment["start_time"] <= provider["start_time"] <= provider["end_time"] <= segment["end_time"]


def test_given_an_unsampled_or_untraced_request_then_no_segment_is_sent(
    api, caller, harness, online_provider, segments, monkeypatch
):
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=0")
    first = submit(api, caller)
    monkeypatch.delenv("_X_AMZN_TRACE_ID")
    second = submit(api, caller)
    harness.drain(lambda: status(api, caller, first) == status(api, caller, second) == "PROCESSED")

    assert segments == []


def test_given_a_message_the_dispatcher_cannot_read_then_it_counts_a_dispatch_error(harness, emf):
    harness.sqs.send_message(QueueUrl=harness.queue_url, MessageBody='{"not": "a job"}')

    harness.dispatch_once()

    found = metrics_by_name(emf())
    assert found["DispatchErrors"] == [({}, 1)]
    assert "DispatchOutcomes" not in found
    harness.purge()
