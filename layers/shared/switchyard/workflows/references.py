"""References inside step bodies: `{{inputs.NAME}}` and `{{steps.ID.FIELD...}}`.

Syntax (whitespace inside the braces is allowed):

- `{{inputs.NAME}}`: a run input (after defaults).
- `{{steps.ID.output}}` / `{{steps.ID.output.PATH}}`: an upstream step's output, or a value inside it.
  PATH is dot-separated; numeric segments index lists. Outputs by step kind:
    - LLM step: `{"text": <the answer text>, "response": <the provider's JSON answer>}`, so
      `{{steps.ID.output.text}}` is the text, `{{steps.ID.output.response.usage.total_tokens}}` a number.
    - media step: the provider's JSON metadata (base64 payload removed), when it answered JSON.
    - gate: `{"decision": "approved", "comment": ..., "by": ..., "at": ...}`.
- `{{steps.ID.result_url}}`: the stored media of a media step (`<base>/api/inference/assets/<job_id>/`).
- `{{steps.ID.job_id}}`: the id of an inference step's job.

A string that is exactly one reference becomes the referenced JSON value (a number stays a number);
a reference inside a longer string is replaced by its text (non-strings as compact JSON). Only string
values are scanned, never keys. `{{...}}` that starts with neither `inputs.` nor `steps.` is left alone.
A step may only reference steps upstream of it (reachable through depends_on).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

STEP_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
PLACEHOLDER = re.compile(r"\{\{\s*((?:inputs|steps)\.[^{}]*?)\s*\}\}")

STEP_FIELDS = ("output", "result_url", "job_id")
SYNTAX_HELP = (
    "use {{inputs.NAME}}, {{steps.ID.output}}, {{steps.ID.output.PATH}}, {{steps.ID.result_url}} "
    "or {{steps.ID.job_id}}"
)


class BadReference(ValueError):
    """A reference that is malformed, or that cannot be resolved at run time."""


@dataclass(frozen=True)
class Reference:
    text: str  # as written, braces included
    namespace: str  # "inputs" | "steps"
    name: str  # input name or step id
    field: str | None = None  # steps only: output | result_url | job_id
    path: tuple[str, ...] = ()  # steps.ID.output.<path>


def parse(text: str, expression: str) -> Reference:
    parts = expression.split(".")
    namespace, rest = parts[0], parts[1:]
    if namespace == "inputs":
        if len(rest) != 1 or not INPUT_NAME.match(rest[0]):
            raise BadReference(f"{text} is not a valid input reference ({SYNTAX_HELP})")
        return Reference(text, "inputs", rest[0])
    if len(rest) < 2 or not STEP_ID.match(rest[0]):
        raise BadReference(f"{text} is not a valid step reference ({SYNTAX_HELP})")
    step_id, field, path = rest[0], rest[1], tuple(rest[2:])
    if field not in STEP_FIELDS:
        raise BadReference(f"{text}: unknown field '{field}' ({SYNTAX_HELP})")
    if path and field != "output":
        raise BadReference(f"{text}: {field} has no fields inside it ({SYNTAX_HELP})")
    if any(not _SEGMENT.match(segment) for segment in path):
        raise BadReference(f"{text}: empty or invalid path segment ({SYNTAX_HELP})")
    return Reference(text, "steps", step_id, field, path)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def references_in(value: Any) -> list[Reference]:
    """Every reference in the string values of `value`, in order (raises on a malformed one)."""
    found = []
    for text in _strings(value):
        for match in PLACEHOLDER.finditer(text):
            found.append(parse(match.group(0), match.group(1)))
    return found


def substitute(value: Any, lookup: Callable[[Reference], Any]) -> Any:
    """`value` with every reference replaced by `lookup(reference)`, in one pass (substituted text is
    never scanned again, so an input that looks like a reference stays text)."""
    if isinstance(value, dict):
        return {key: substitute(inner, lookup) for key, inner in value.items()}
    if isinstance(value, list):
        return [substitute(inner, lookup) for inner in value]
    if not isinstance(value, str):
        return value
    whole = PLACEHOLDER.fullmatch(value)
    if whole:
        return lookup(parse(whole.group(0), whole.group(1)))

    def text_of(match: re.Match[str]) -> str:
        found = lookup(parse(match.group(0), match.group(1)))
        return found if isinstance(found, str) else json.dumps(found, separators=(",", ":"))

    return PLACEHOLDER.sub(text_of, value)


def follow(root: Any, path: tuple[str, ...], what: str) -> Any:
    """The value at `path` inside `root` (numeric segments index lists)."""
    current = root
    for depth, segment in enumerate(path):
        where = ".".join((what, *path[:depth]))
        if isinstance(current, dict) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            raise BadReference(f"{where} has no '{segment}'")
    return current
