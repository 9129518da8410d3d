"""switchyard/metrics.py: each record_* function emits exactly the metrics it declares (names, units,
dimensions), every declaring function is called by the code, and a metric never fails its caller."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "shared" / "switchyard"
METRICS_MODULE = LAYER / "metrics.py"


@pytest.fixture
def emf(monkeypatch, capsys):
    """Metrics on, in a test namespace; returns a function reading what was printed since the last read:
    one entry per metric directive (a document may hold several): {dimension: value, metric: value}."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Switchyard/test")
    capsys.readouterr()

    def directives() -> list[dict]:
        found = []
        for line in capsys.readouterr().out.splitlines():
            if line.startswith("{") and '"_aws"' in line:
                found += split_document(json.loads(line))
        return found

    return directives


def split_document(document: dict) -> list[dict]:
    """An EMF document's directives as flat records; the "_directive" key keeps the directive itself."""
    records = []
    for directive in document["_aws"]["CloudWatchMetrics"]:
        assert directive["Namespace"] == "Switchyard/test"
        (dimensions,) = directive["Dimensions"]
        record = {name: document[name] for name in dimensions}
        for metric in directive["Metrics"]:
            (record[metric["Name"]],) = document[metric["Name"]]  # one value per metric and document
        records.append({**record, "_directive": directive})
    return records


def emitted(records: list[dict]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """metric name -> (unit, dimension names) over the records."""
    found = {}
    for record in records:
        directive = record["_directive"]
        (dimensions,) = directive["Dimensions"]
        for metric in directive["Metrics"]:
            found[metric["Name"]] = (metric["Unit"], tuple(dimensions))
            assert isinstance(record[metric["Name"]], float)
    return found


def record_everything_once() -> None:
    from switchyard import metrics

    with metrics.measured_request(metrics.RouteGroup.SYNC_INFERENCE):
        with metrics.provider_call(metrics.CallPath.SYNC) as call:
            call.answered(200)
        metrics.record_request(200, 12.5)
    metrics.record_provider_call(metrics.CallPath.ASYNC, metrics.ProviderOutcome.TIMEOUT, 5.0)
    metrics.record_jobs_submitted(["LLM", "IMAGE", "LLM"])
    for status in ("PROCESSED", "FAILED", "CANCELED"):
        metrics.record_job_ended(status, "LLM", 1500)
    metrics.record_dispatch_latency(40)
    metrics.record_dispatch("processed")
    metrics.record_dispatch_error()
    metrics.record_sweep(
        metrics.Census(
            jobs_queued=2,
            jobs_running=1,
            oldest_queued_age_seconds=3.5,
            dispatcher_tick_age_seconds=4.0,
            worker_stalled=False,
            providers_online=1,
            jobs_recovered=0,
            workflow_gates_waiting=0,
        )
    )
    metrics.record_workflow_run_started()
    metrics.record_workflow_run_finished("SUCCEEDED")
    metrics.record_workflow_gate_decision(approved=True)
    metrics.record_webhook_delivery("succeeded")
    metrics.record_webhook_backlog(3)


def test_given_every_record_function_then_it_emits_exactly_the_declared_metrics_units_and_dimensions(emf):
    from switchyard.metrics import METRICS

    record_everything_once()

    assert emitted(emf()) == {
        name: (spec.unit.value, tuple(d.value for d in spec.dimensions)) for name, spec in METRICS.items()
    }


def test_given_one_request_then_each_metric_is_emitted_by_the_function_that_declares_it(emf):
    from switchyard import metrics
    from switchyard.metrics import METRICS

    with metrics.measured_request(metrics.RouteGroup.JOBS):
        metrics.record_request(404, 3.0)

    declared = {name for name, spec in METRICS.items() if spec.recorded_by == "record_request"}
    found = emitted(emf())
    assert set(found) <= declared
    assert {"Requests", "ClientErrors", "ServerErrors"} == set(found), "no sync latency for a jobs route"


def test_given_a_request_then_its_route_group_and_status_class_are_counted(emf):
    from switchyard import metrics

    with metrics.measured_request(metrics.RouteGroup.SYNC_INFERENCE):
        metrics.note_route_group(metrics.RouteGroup.ASYNC_SUBMIT)
        metrics.record_request(503, 3.0)

    (record,) = emf()
    assert record["RouteGroup"] == "async_submit"
    assert (record["Requests"], record["ClientErrors"], record["ServerErrors"]) == (1, 0, 1)


def test_given_a_sync_call_then_its_request_latency_and_provider_call_are_one_document(emf, capsys):
    import time

    from switchyard import metrics

    with metrics.measured_request(metrics.RouteGroup.SYNC_INFERENCE):
        with metrics.provider_call(metrics.CallPath.SYNC) as call:
            time.sleep(0.05)
            call.answered(200)
        metrics.record_request(200, 80.0)

    records = emf()
    latency = next(r for r in records if "SyncLatency" in r)
    provider = next(r for r in records if "ProviderLatency" in r)
    requests = next(r for r in records if "Requests" in r)
    assert len(records) == 3
    assert len({id(r["_directive"]) for r in records}) == 3, "one directive per dimension set"
    assert latency["SyncLatency"] == 80.0
    assert latency["SyncGatewayLatency"] == pytest.approx(80.0 - provider["ProviderLatency"])
    assert 45 <= provider["ProviderLatency"] < 80
    assert provider["CallPath"] == "sync" and requests["RouteGroup"] == "sync_inference"
    assert "CallPath" not in latency and "RouteGroup" not in provider


def test_given_groups_that_would_collide_then_they_go_to_documents_of_their_own(emf, monkeypatch, capsys):
    from switchyard import metrics

    with metrics.measured_request(metrics.RouteGroup.SYNC_INFERENCE):
        for _ in range(2):  # two calls in one request: the same metrics twice
            with metrics.provider_call(metrics.CallPath.SYNC) as call:
                call.answered(200)
        metrics.record_request(200, 10.0)

    records = emf()
    assert sum(1 for r in records if "ProviderCalls" in r) == 2
    assert sum(1 for r in records if "Requests" in r) == 1


@pytest.mark.parametrize(
    "failure, counted",
    [("timeout", "ProviderTimeouts"), ("refused", "ProviderErrors"), ("4xx", "ProviderRejections")],
)
def test_given_a_provider_call_that_fails_then_its_kind_is_counted(emf, failure, counted):
    import httpx
    from switchyard import metrics
    from switchyard.errors import UpstreamError

    def call() -> None:
        with metrics.provider_call(metrics.CallPath.ASYNC) as measured:
            if failure == "4xx":
                measured.answered(422)
                return
            cause = httpx.ReadTimeout("slow") if failure == "timeout" else httpx.ConnectError("refused")
            raise UpstreamError("The provider failed.") from cause

    if failure == "4xx":
        call()
    else:
        with pytest.raises(UpstreamError):
            call()

    (record,) = emf()
    assert record[counted] == 1
    kinds = ("ProviderTimeouts", "ProviderErrors", "ProviderRejections")
    assert sum(record[k] for k in kinds) == 1
    assert record["CallPath"] == "async"


def test_given_a_batch_then_submissions_are_counted_per_inference_type(emf):
    from switchyard import metrics

    metrics.record_jobs_submitted(["LLM", "IMAGE", "LLM"])

    assert sorted((d["InferenceType"], d["JobsSubmitted"]) for d in emf()) == [("IMAGE", 1), ("LLM", 2)]


def test_given_metrics_cannot_be_emitted_then_the_caller_never_sees_an_error(emf, monkeypatch, caplog):
    from switchyard import metrics

    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE")  # EMF without a namespace is refused

    metrics.record_dispatch_error()
    metrics.record_dispatch("not-an-outcome")

    assert emf() == []
    assert "could not emit metrics" in caplog.text
    assert "unknown dispatch outcome" in caplog.text


def test_given_metrics_disabled_then_nothing_is_printed(emf, monkeypatch):

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    record_everything_once()

    assert emf() == []


def test_given_the_declarations_then_dimensions_are_bounded_and_outcomes_are_listed():
    from switchyard.metrics import METRICS, Dimension, dimension_values

    for spec in METRICS.values():
        assert set(spec.dimensions) <= set(Dimension), spec.name
        assert (Dimension.OUTCOME in spec.dimensions) == bool(spec.outcomes), spec.name
        for dimension, values in dimension_values(spec).items():
            assert 0 < len(values) <= 16, (spec.name, dimension)


# ------------------------------------------------------------------ every declaring function is called


def _called_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
            elif isinstance(node.func, ast.Name):
                names.add(node.func.id)
    return names


def called_from_the_code() -> set[str]:
    """Functions of metrics.py called by the code: directly from another module, or from inside
    metrics.py by a function that is (e.g. `provider_call` -> `record_provider_call`)."""
    sources = [*LAYER.rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    outside = set()
    for source in sources:
        if source != METRICS_MODULE:
            outside |= _called_names(ast.parse(source.read_text()))
    module = ast.parse(METRICS_MODULE.read_text())
    calls = {node.name: _called_names(node) for node in module.body if isinstance(node, ast.FunctionDef)}
    reached = {name for name in calls if name in outside}
    while True:
        more = {callee for name in reached for callee in calls[name] if callee in calls} - reached
        if not more:
            return reached
        reached |= more


def test_given_the_declarations_then_every_declaring_function_is_called_by_the_code():
    from switchyard.metrics import METRICS

    declaring = {spec.recorded_by for spec in METRICS.values()}
    uncalled = declaring - called_from_the_code()

    assert uncalled == set()
