"""GET /v1/workflows/runs/<id>/graph.svg on the handler, moto and the real state machine."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.functional.test_workflows import (  # noqa: F401 - aws_stack is the Step Functions fixture
    RUNS,
    aws_stack,
    gate,
    llm,
    started,
    step_is,
    wait_for,
)

SVG = "{http://www.w3.org/2000/svg}"


def test_given_a_run_waiting_on_a_gate_then_its_graph_is_an_svg_of_its_steps(api, caller):
    prompt = '<b onclick="steal()">Ship it?</b> & go'
    run = started(api, caller, [gate("review", [], prompt=prompt), llm("publish", "x", ["review"])])
    wait_for(api, caller, run["id"], step_is("review", "waiting"))

    response = api("GET", f"{RUNS}/{run['id']}/graph.svg", headers=caller.headers)

    assert response.status == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["content-security-policy"] == "default-src 'none'"
    assert response.headers["cache-control"] == "no-store"
    root = ET.fromstring(response.content)  # noqa: S314 - our own API's output
    steps = {
        g.get("data-step-id"): g.get("data-status") for g in root.iter(f"{SVG}g") if g.get("class") == "step"
    }
    assert steps == {"review": "waiting", "publish": "pending"}
    assert root.get("data-run-id") == run["id"] and root.get("data-run-status") == "RUNNING"
    text = response.content.decode()
    assert "<b" not in text and '&lt;b onclick="steal()"&gt;Ship it?&lt;/b&gt; &amp; go' in text


def test_given_another_account_or_no_key_then_the_graph_is_refused(api, caller, new_caller):
    run = started(api, caller, [gate("review", [])])
    intruder = new_caller("intruder")

    assert api("GET", f"{RUNS}/{run['id']}/graph.svg", headers=intruder.headers).status == 404
    assert api("GET", f"{RUNS}/{run['id']}/graph.svg").status == 401
    assert api("GET", f"{RUNS}/run_nope/graph.svg", headers=caller.headers).status == 404


def test_given_the_openapi_document_then_the_graph_route_is_in_it_as_svg(api):
    spec = api("GET", "/openapi.json").json()

    operation = spec["paths"][f"{RUNS}/{{run_id}}/graph.svg"]["get"]
    assert "image/svg+xml" in operation["responses"]["200"]["content"]
