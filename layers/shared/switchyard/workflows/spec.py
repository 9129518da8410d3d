"""Parse and validate a workflow spec and its inputs before anything starts.

Every problem is an `InvalidRequest` (400 invalid_request) that names the step and says why.
"""

from __future__ import annotations

import json
from typing import Any

from switchyard.catalog import ENDPOINTS, endpoint_for
from switchyard.errors import InvalidRequest
from switchyard.schemas import BODY_MODELS
from switchyard.validation import validate_inference_body
from switchyard.workflows import references as refs
from switchyard.workflows.model import (
    MAX_INPUTS,
    MAX_PROMPT_CHARS,
    MAX_SPEC_BYTES,
    MAX_STEPS,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    InputSpec,
    StepKind,
    StepSpec,
    WorkflowSpec,
)

QUEUEABLE_ENDPOINTS = tuple(path for path, e in ENDPOINTS.items() if e.can_queue and path in BODY_MODELS)
_SPEC_KEYS = {"inputs", "steps", "description"}
_STEP_KEYS = {
    StepKind.INFERENCE: {"id", "type", "endpoint", "body", "depends_on", "timeout_seconds", "description"},
    StepKind.GATE: {"id", "type", "depends_on", "timeout_seconds", "prompt", "description"},
}
_INPUT_KEYS = {"name", "description", "required", "default"}
GATE_OUTPUT_FIELDS = ("decision", "comment", "by", "at")
LLM_OUTPUT_FIELDS = ("text", "response")
# What a step reference resolves to while bodies are checked (the real value exists only at run time).
_STAND_IN = "x"


def _fail(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param)


# ---------------------------------------------------------------- the spec


def parse_spec(raw: Any) -> WorkflowSpec:
    """A validated spec, steps in topological order. Inputs are checked separately (`bind_inputs`)."""
    if not isinstance(raw, dict):
        raise _fail("spec must be a JSON object with a 'steps' list.", "spec")
    if len(json.dumps(raw, separators=(",", ":"))) > MAX_SPEC_BYTES:
        raise _fail(f"spec is larger than {MAX_SPEC_BYTES} bytes.", "spec")
    unknown = sorted(set(raw) - _SPEC_KEYS)
    if unknown:
        raise _fail(
            f"spec: unknown field(s) {', '.join(unknown)} (allowed: inputs, steps, description).", "spec"
        )
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise _fail("spec.steps must be a non-empty list of steps.", "spec.steps")
    if len(steps_raw) > MAX_STEPS:
        raise _fail(
            f"spec has {len(steps_raw)} steps; a run has at most {MAX_STEPS} (every step of a run runs "
            "inside one Step Functions inline Map, whose concurrency is capped at 40).",
            "spec.steps",
        )
    inputs = _parse_inputs(raw.get("inputs"))
    steps: list[StepSpec] = []
    seen: dict[str, int] = {}
    for index, step_raw in enumerate(steps_raw):
        step = _parse_step(index, step_raw)
        if step.id in seen:
            raise _fail(
                f"duplicate step id '{step.id}' (steps[{seen[step.id]}] and steps[{index}]).",
                f"spec.steps[{index}].id",
            )
        seen[step.id] = index
        steps.append(step)
    by_id = {s.id: s for s in steps}
    for step in steps:
        for dep in step.depends_on:
            if dep == step.id:
                raise _fail(
                    f"step '{step.id}': depends on itself.", f"spec.steps[{seen[step.id]}].depends_on"
                )
            if dep not in by_id:
                raise _fail(
                    f"step '{step.id}': depends_on names unknown step '{dep}'.",
                    f"spec.steps[{seen[step.id]}].depends_on",
                )
    ordered = _topological_order(steps)
    ancestors = _ancestors(ordered)
    for step in ordered:
        _check_references(step, by_id, ancestors[step.id], seen[step.id])
    dependents = {s.id: tuple(o.id for o in ordered if s.id in o.depends_on) for s in ordered}
    return WorkflowSpec(steps=tuple(ordered), inputs=inputs, dependents=dependents)


def _parse_inputs(raw: Any) -> tuple[InputSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_INPUTS:
        raise _fail(f"spec.inputs must be a list of at most {MAX_INPUTS} input declarations.", "spec.inputs")
    declared: list[InputSpec] = []
    for index, item in enumerate(raw):
        where = f"spec.inputs[{index}]"
        if not isinstance(item, dict):
            raise _fail(f"{where} must be an object with a 'name'.", where)
        unknown = sorted(set(item) - _INPUT_KEYS)
        if unknown:
            raise _fail(f"{where}: unknown field(s) {', '.join(unknown)}.", where)
        name = item.get("name")
        if not isinstance(name, str) or not refs.INPUT_NAME.match(name):
            raise _fail(
                f"{where}.name must be letters, digits, '_' or '-' (starting with a letter or '_').", where
            )
        if any(d.name == name for d in declared):
            raise _fail(f"duplicate input '{name}'.", where)
        description = item.get("description", "")
        if not isinstance(description, str):
            raise _fail(f"input '{name}': description must be a string.", where)
        has_default = "default" in item
        required = item.get("required", not has_default)
        if not isinstance(required, bool):
            raise _fail(f"input '{name}': required must be true or false.", where)
        if required and has_default:
            raise _fail(f"input '{name}': a required input cannot have a default.", where)
        declared.append(InputSpec(name, description, required, item.get("default")))
    return tuple(declared)


def _parse_step(index: int, raw: Any) -> StepSpec:
    where = f"spec.steps[{index}]"
    if not isinstance(raw, dict):
        raise _fail(f"{where} must be an object.", where)
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not refs.STEP_ID.match(step_id):
        raise _fail(
            f"{where}.id must be 1-64 letters, digits, '_' or '-', starting with a letter.", f"{where}.id"
        )
    name = f"step '{step_id}'"
    kind_raw = raw.get("type", StepKind.INFERENCE.value)
    try:
        kind = StepKind(kind_raw)
    except ValueError:
        raise _fail(
            f"{name}: unknown type {kind_raw!r} (use 'inference' or 'gate').", f"{where}.type"
        ) from None
    unknown = sorted(set(raw) - _STEP_KEYS[kind])
    if unknown:
        raise _fail(
            f"{name}: unknown field(s) {', '.join(unknown)} "
            f"({kind.value} steps take: {', '.join(sorted(_STEP_KEYS[kind]))}).",
            where,
        )
    depends_on = raw.get("depends_on", [])
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        raise _fail(f"{name}: depends_on must be a list of step ids.", f"{where}.depends_on")
    if len(set(depends_on)) != len(depends_on):
        raise _fail(f"{name}: depends_on lists a step twice.", f"{where}.depends_on")
    timeout = raw.get("timeout_seconds")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int)
        or not MIN_TIMEOUT_SECONDS <= timeout <= MAX_TIMEOUT_SECONDS
    ):
        raise _fail(
            f"{name}: timeout_seconds must be a whole number from {MIN_TIMEOUT_SECONDS} to {MAX_TIMEOUT_SECONDS}.",
            f"{where}.timeout_seconds",
        )
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise _fail(f"{name}: description must be a string.", f"{where}.description")
    if kind == StepKind.GATE:
        prompt = raw.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS):
            raise _fail(f"{name}: prompt must be a string of at most {MAX_PROMPT_CHARS} characters.", where)
        return StepSpec(step_id, kind, tuple(depends_on), None, None, timeout, prompt, description)
    endpoint = raw.get("endpoint")
    found = endpoint_for(endpoint) if isinstance(endpoint, str) else None
    if found is None or found.path not in QUEUEABLE_ENDPOINTS:
        reason = "is synchronous only (multipart)" if found is not None else "is not an inference endpoint"
        raise _fail(
            f"{name}: endpoint {endpoint!r} {reason}; a workflow step can use "
            f"{', '.join(QUEUEABLE_ENDPOINTS)}.",
            f"{where}.endpoint",
        )
    body = raw.get("body")
    if not isinstance(body, dict):
        raise _fail(
            f"{name}: body must be a JSON object (the request body of {found.path}).", f"{where}.body"
        )
    if body.get("stream") is True:
        raise _fail(f"{name}: stream is not supported in a workflow step (steps run as async jobs).", where)
    body = {k: v for k, v in body.items() if k != "async"}  # every step is queued anyway
    return StepSpec(step_id, kind, tuple(depends_on), found.path, body, timeout, None, description)


def _topological_order(steps: list[StepSpec]) -> list[StepSpec]:
    """Kahn's algorithm, keeping the spec's order among ready steps; names a cycle if there is one."""
    remaining = {s.id: set(s.depends_on) for s in steps}
    ordered: list[StepSpec] = []
    while remaining:
        ready = [s for s in steps if s.id in remaining and not remaining[s.id]]
        if not ready:
            raise _fail(f"steps form a cycle: {_a_cycle(steps, set(remaining))}.", "spec.steps")
        for step in ready:
            ordered.append(step)
            del remaining[step.id]
        for deps in remaining.values():
            deps.difference_update(s.id for s in ready)
    return ordered


def _a_cycle(steps: list[StepSpec], among: set[str]) -> str:
    deps = {s.id: [d for d in s.depends_on if d in among] for s in steps if s.id in among}
    start = next(s.id for s in steps if s.id in among)
    path, seen = [start], {start: 0}
    while True:
        nxt = deps[path[-1]][0]  # every step left over has a dependency left over
        if nxt in seen:
            # Shown in the direction the work flows: each step before the one that depends on it.
            return " -> ".join(reversed([*path[seen[nxt] :], nxt]))
        seen[nxt] = len(path)
        path.append(nxt)


def _ancestors(ordered: list[StepSpec]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for step in ordered:
        found[step.id] = set(step.depends_on).union(*(found[d] for d in step.depends_on))
    return found


def _check_references(step: StepSpec, by_id: dict[str, StepSpec], upstream: set[str], index: int) -> None:
    if step.body is None:
        return
    where = f"spec.steps[{index}].body"
    try:
        found = refs.references_in(step.body)
    except refs.BadReference as exc:
        raise _fail(f"step '{step.id}': {exc}.", where) from None
    for ref in found:
        if ref.namespace != "steps":
            continue
        target = by_id.get(ref.name)
        if target is None:
            raise _fail(f"step '{step.id}': {ref.text} references unknown step '{ref.name}'.", where)
        if ref.name == step.id:
            raise _fail(f"step '{step.id}': {ref.text} references the step itself.", where)
        if ref.name not in upstream:
            raise _fail(
                f"step '{step.id}': {ref.text} references step '{ref.name}', which is not upstream of it "
                f"(add '{ref.name}' to depends_on, directly or through a step that depends on it).",
                where,
            )
        problem = _field_problem(ref, target)
        if problem:
            raise _fail(f"step '{step.id}': {ref.text}: {problem}.", where)


def _field_problem(ref: refs.Reference, target: StepSpec) -> str | None:
    if target.kind == StepKind.GATE:
        if ref.field != "output":
            return f"'{target.id}' is a gate; it has only output ({', '.join(GATE_OUTPUT_FIELDS)})"
        if ref.path and ref.path[0] not in GATE_OUTPUT_FIELDS:
            return f"a gate's output has {', '.join(GATE_OUTPUT_FIELDS)}"
        return None
    is_llm = ENDPOINTS[target.endpoint or ""].inference_type == "LLM"
    if ref.field == "result_url" and is_llm:
        return f"'{target.id}' is an LLM step and has no media; use {{{{steps.{target.id}.output.text}}}}"
    if ref.field == "output" and is_llm and ref.path and ref.path[0] not in LLM_OUTPUT_FIELDS:
        return (
            f"an LLM step's output has text and response (the provider's JSON), e.g. "
            f"{{{{steps.{target.id}.output.text}}}} or {{{{steps.{target.id}.output.response.{'.'.join(ref.path)}}}}}"
        )
    return None


# ---------------------------------------------------------------- inputs and bodies


def bind_inputs(spec: WorkflowSpec, given: Any) -> dict[str, Any]:
    """The run's input values (declared defaults applied); every input a body uses must have a value."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise _fail("inputs must be a JSON object of name -> value.", "inputs")
    declared = {i.name: i for i in spec.inputs}
    if declared:
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise _fail(
                f"unknown input(s) {', '.join(repr(u) for u in unknown)} (this workflow takes: {', '.join(declared)}).",
                "inputs",
            )
    values = {i.name: i.default for i in spec.inputs if not i.required}
    values.update(given)
    for declaration in spec.inputs:
        if declaration.required and declaration.name not in given:
            about = f": {declaration.description}" if declaration.description else ""
            raise _fail(f"missing required input '{declaration.name}'{about}.", f"inputs.{declaration.name}")
    for step in spec.steps:
        for ref in refs.references_in(step.body or {}):
            if ref.namespace == "inputs" and ref.name not in values:
                raise _fail(
                    f"missing input '{ref.name}' (step '{step.id}' uses {ref.text}).", f"inputs.{ref.name}"
                )
    return values


def check_bodies(spec: WorkflowSpec, inputs: dict[str, Any]) -> None:
    """Each body as its endpoint would see it: inputs substituted, step references as stand-in strings."""

    def lookup(ref: refs.Reference) -> Any:
        return inputs[ref.name] if ref.namespace == "inputs" else _STAND_IN

    for step in spec.steps:
        if step.kind != StepKind.INFERENCE or step.body is None or step.endpoint is None:
            continue
        body = refs.substitute(step.body, lookup)
        try:
            validate_inference_body(step.endpoint, body, prefix=f"step '{step.id}': body.")
        except InvalidRequest as exc:
            raise _fail(exc.message, f"spec.steps.{step.id}.body") from None


def prepare(raw_spec: Any, given_inputs: Any) -> tuple[WorkflowSpec, dict[str, Any]]:
    spec = parse_spec(raw_spec)
    inputs = bind_inputs(spec, given_inputs)
    check_bodies(spec, inputs)
    return spec, inputs
