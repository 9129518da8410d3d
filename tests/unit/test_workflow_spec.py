"""Workflow specs: validation messages, topological order, inputs, references (no I/O)."""

from __future__ import annotations

import pytest
from switchyard.errors import InvalidRequest
from switchyard.workflows import references as refs
from switchyard.workflows.outputs import inference_output, llm_text
from switchyard.workflows.spec import bind_inputs, parse_spec, prepare
from switchyard.workflows.templates import all_templates


def llm(step_id: str, text: str = "hi", depends_on: list[str] | None = None, **extra) -> dict:
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    return {
        "id": step_id,
        "endpoint": "/v1/chat/completions",
        "body": body,
        "depends_on": depends_on or [],
        **extra,
    }


def image(step_id: str, prompt: str, depends_on: list[str]) -> dict:
    return {
        "id": step_id,
        "endpoint": "/v1/images/generations",
        "body": {"model": "i", "prompt": prompt},
        "depends_on": depends_on,
    }


def refused(spec: dict, inputs: dict | None = None) -> str:
    with pytest.raises(InvalidRequest) as caught:
        prepare(spec, inputs)
    return caught.value.message


# ------------------------------------------------------------------ shape and order


def test_given_a_diamond_in_any_order_when_parsed_then_steps_come_in_topological_order():
    spec = parse_spec(
        {
            "steps": [
                llm("d", depends_on=["b", "c"]),
                llm("b", depends_on=["a"]),
                llm("c", depends_on=["a"]),
                llm("a"),
            ]
        }
    )

    assert [s.id for s in spec.steps] == ["a", "b", "c", "d"]
    assert spec.dependents == {"a": ("b", "c"), "b": ("d",), "c": ("d",), "d": ()}
    assert spec.edges == [
        {"from": "a", "to": "b"},
        {"from": "a", "to": "c"},
        {"from": "b", "to": "d"},
        {"from": "c", "to": "d"},
    ]


def test_given_a_cycle_then_the_message_names_it():
    message = refused(
        {"steps": [llm("a", depends_on=["c"]), llm("b", depends_on=["a"]), llm("c", depends_on=["b"])]}
    )

    assert message.startswith("steps form a cycle: ")
    cycle = message.removeprefix("steps form a cycle: ").rstrip(".").split(" -> ")
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"steps": []}, "spec.steps must be a non-empty list of steps."),
        (
            {"steps": [llm("a")], "extra": 1},
            "spec: unknown field(s) extra (allowed: inputs, steps, description).",
        ),
        ({"steps": [llm("a"), llm("a")]}, "duplicate step id 'a' (steps[0] and steps[1])."),
        ({"steps": [llm("a", depends_on=["a"])]}, "step 'a': depends on itself."),
        ({"steps": [llm("a", depends_on=["x"])]}, "step 'a': depends_on names unknown step 'x'."),
        ({"steps": [llm("a", depends_on="b")]}, "step 'a': depends_on must be a list of step ids."),
        (
            {"steps": [{"id": "1a", "type": "gate"}]},
            "spec.steps[0].id must be 1-64 letters, digits, '_' or '-', starting with a letter.",
        ),
        (
            {"steps": [{"id": "a", "type": "loop"}]},
            "step 'a': unknown type 'loop' (use 'inference' or 'gate').",
        ),
        (
            {"steps": [{"id": "a", "type": "gate", "body": {}}]},
            "step 'a': unknown field(s) body (gate steps take: ",
        ),
        (
            {"steps": [{"id": "a", "type": "gate", "timeout_seconds": 0}]},
            "step 'a': timeout_seconds must be a whole number",
        ),
        ({"steps": [llm("a", stream=None)]}, "step 'a': unknown field(s) stream (inference steps take: "),
        ({"steps": [llm(f"s{i}") for i in range(41)]}, "spec has 41 steps; a run has at most 40"),
    ],
)
def test_given_a_malformed_spec_then_the_message_names_the_step_and_why(spec, expected):
    assert refused(spec).startswith(expected)


@pytest.mark.parametrize(
    "endpoint, reason",
    [
        ("/v1/audio/transcriptions", "is synchronous only (multipart)"),
        ("/v1/images/edits", "is synchronous only (multipart)"),
        ("/v1/models", "is not an inference endpoint"),
        ("/v1/moderations", "is not an inference endpoint"),
    ],
)
def test_given_an_endpoint_that_cannot_queue_then_it_is_refused(endpoint, reason):
    message = refused({"steps": [{"id": "a", "endpoint": endpoint, "body": {"model": "m"}}]})

    assert message.startswith(
        f"step 'a': endpoint '{endpoint}' {reason}; a workflow step can use /v1/chat/completions"
    )


def test_given_bad_bodies_then_the_endpoint_validation_names_the_step_and_field():
    assert refused({"steps": [image("img", "", [])]}).startswith("step 'img': body.prompt:")
    assert refused(
        {"steps": [{"id": "a", "endpoint": "/v1/chat/completions", "body": {"model": "m"}}]}
    ).startswith("step 'a': body.messages: Field required")
    assert refused({"steps": [{"id": "a", "endpoint": "/v1/chat/completions", "body": []}]}).startswith(
        "step 'a': body must be a JSON object"
    )
    stream = llm("a")
    stream["body"]["stream"] = True
    assert "stream is not supported" in refused({"steps": [stream]})


# ------------------------------------------------------------------ references


def test_given_references_to_upstream_steps_then_they_are_accepted_transitively():
    spec = {
        "steps": [
            llm("a"),
            image("img", "{{steps.a.output.text}}", ["a"]),
            {"id": "ok", "type": "gate", "depends_on": ["img"]},
            llm(
                "c",
                "{{steps.a.output.text}} {{steps.img.result_url}} {{steps.ok.output.comment}} {{steps.img.job_id}}",
                ["ok"],
            ),
        ]
    }

    parsed, _ = prepare(spec, None)

    assert [s.id for s in parsed.steps] == ["a", "img", "ok", "c"]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "{{steps.b.output.text}}",
            "{{steps.b.output.text}} references step 'b', which is not upstream of it",
        ),
        ("{{steps.zz.output}}", "{{steps.zz.output}} references unknown step 'zz'."),
        ("{{steps.c.output}}", "{{steps.c.output}} references the step itself."),
        ("{{steps.a.result_url}}", "'a' is an LLM step and has no media; use {{steps.a.output.text}}"),
        ("{{steps.a.output.choices}}", "an LLM step's output has text and response"),
        ("{{steps.a.text}}", "{{steps.a.text}}: unknown field 'text'"),
        ("{{steps.a.job_id.x}}", "{{steps.a.job_id.x}}: job_id has no fields inside it"),
        ("{{steps.a}}", "{{steps.a}} is not a valid step reference"),
        ("{{inputs.a.b}}", "{{inputs.a.b}} is not a valid input reference"),
        ("{{steps.g.result_url}}", "'g' is a gate; it has only output (decision, comment, by, at)"),
        ("{{steps.g.output.verdict}}", "a gate's output has decision, comment, by, at"),
    ],
)
def test_given_a_bad_reference_then_the_message_names_the_step_and_reference(text, expected):
    spec = {
        "steps": [
            llm("a"),
            {"id": "g", "type": "gate", "depends_on": ["a"]},
            llm("b"),
            llm("c", text, ["a", "g"]),
        ]
    }

    message = refused(spec)

    assert message.startswith("step 'c': ")
    assert expected in message


def test_given_text_in_braces_that_is_no_reference_then_it_is_left_alone():
    spec, _ = prepare({"steps": [llm("a", "format as {{json}} please")]}, None)

    assert spec.steps[0].body["messages"][0]["content"] == "format as {{json}} please"


def test_given_a_whole_string_reference_then_it_takes_the_json_value_and_embedded_ones_become_text():
    body = {"duration": "{{inputs.seconds}}", "prompt": "x {{inputs.seconds}} {{inputs.tags}}", "n": 2}
    values = {"seconds": 30, "tags": ["a", "b"]}

    result = refs.substitute(body, lambda ref: values[ref.name])

    assert result == {"duration": 30, "prompt": 'x 30 ["a","b"]', "n": 2}


def test_given_an_input_that_looks_like_a_reference_then_it_is_not_substituted_again():
    result = refs.substitute({"p": "say {{inputs.x}}"}, lambda ref: "{{steps.secret.output}}")

    assert result == {"p": "say {{steps.secret.output}}"}


def test_given_a_path_then_follow_walks_dicts_and_lists_and_names_what_is_missing():
    output = {"text": "t", "response": {"choices": [{"message": {"content": "c"}}]}}

    assert refs.follow(output, ("response", "choices", "0", "message", "content"), "steps.a.output") == "c"
    with pytest.raises(refs.BadReference, match=r"steps.a.output.response.choices has no '3'"):
        refs.follow(output, ("response", "choices", "3"), "steps.a.output")


# ------------------------------------------------------------------ inputs


def test_given_declared_inputs_then_defaults_apply_and_missing_or_unknown_ones_are_refused():
    spec = parse_spec(
        {
            "inputs": [{"name": "topic", "required": True}, {"name": "style", "default": "ink"}],
            "steps": [llm("a", "{{inputs.topic}} in {{inputs.style}}")],
        }
    )

    assert bind_inputs(spec, {"topic": "owls"}) == {"style": "ink", "topic": "owls"}
    with pytest.raises(InvalidRequest, match="missing required input 'topic'"):
        bind_inputs(spec, {})
    with pytest.raises(
        InvalidRequest, match=r"unknown input\(s\) 'colour' \(this workflow takes: topic, style\)"
    ):
        bind_inputs(spec, {"topic": "owls", "colour": "red"})


def test_given_an_undeclared_input_that_a_body_uses_then_it_must_be_given():
    assert (
        refused({"steps": [llm("a", "{{inputs.topic}}")]}, {})
        == "missing input 'topic' (step 'a' uses {{inputs.topic}})."
    )
    spec, inputs = prepare({"steps": [llm("a", "{{inputs.topic}}")]}, {"topic": "owls"})
    assert inputs == {"topic": "owls"}


def test_given_inputs_then_bodies_are_validated_with_their_real_values():
    spec = {
        "steps": [
            {
                "id": "m",
                "endpoint": "/v1/music/generations",
                "body": {"model": "x", "prompt": "p", "duration": "{{inputs.d}}"},
            }
        ]
    }

    assert prepare(spec, {"d": 30})[1] == {"d": 30}
    assert refused(spec, {"d": -1}).startswith("step 'm': body.duration:")


# ------------------------------------------------------------------ outputs and templates


def test_llm_text_reads_chat_completion_and_plain_answers():
    assert llm_text({"choices": [{"message": {"content": "hi"}}]}) == "hi"
    assert llm_text({"choices": [{"text": "done"}]}) == "done"
    assert llm_text({"text": "plain"}) == "plain"
    assert llm_text("nope") is None
    assert inference_output({"choices": [{"text": "x"}]}, is_llm=True) == {
        "text": "x",
        "response": {"choices": [{"text": "x"}]},
    }
    assert inference_output({"seconds": 3}, is_llm=False) == {"seconds": 3}


def test_every_shipped_template_is_valid_and_runs_with_its_required_inputs_only():
    templates = all_templates()

    assert len(templates) >= 3
    for template in templates:
        required = {i.name: "x" for i in template.spec.inputs if i.required}
        spec, inputs = prepare(template.raw_spec, required)
        assert set(inputs) == {i.name for i in template.spec.inputs}
        assert template.public()["edges"], template.id
