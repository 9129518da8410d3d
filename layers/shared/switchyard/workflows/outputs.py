"""What a finished step exposes to its dependents' references and to the run view (pure)."""

from __future__ import annotations

from typing import Any

from switchyard.catalog import ENDPOINTS
from switchyard.clock import iso
from switchyard.workflows.records import Step


def llm_text(result: Any) -> str | None:
    """The answer text of an OpenAI-style chat or completion response (or a plain {"text"} answer)."""
    if not isinstance(result, dict):
        return None
    choices = result.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]
        message = first.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            return content
        choice_text = first.get("text")
        if isinstance(choice_text, str):
            return choice_text
    text = result.get("text")
    return text if isinstance(text, str) else None


def inference_output(result: Any, is_llm: bool) -> Any:
    """LLM: {"text", "response"}; media: the provider's JSON metadata (None when it sent only bytes)."""
    if is_llm:
        return {"text": llm_text(result), "response": result}
    return result


def gate_output(resolution: dict[str, Any] | None) -> dict[str, Any] | None:
    if not resolution:
        return None
    return {
        "decision": resolution.get("decision"),
        "comment": resolution.get("comment"),
        "by": resolution.get("by"),
        "at": iso(resolution.get("at_ms")),
    }


def is_llm_endpoint(endpoint: str | None) -> bool:
    found = ENDPOINTS.get(endpoint or "")
    return found is not None and found.inference_type == "LLM"


def step_values(step: Step, job_envelope: dict[str, Any] | None) -> dict[str, Any]:
    """What a step exposes: `output`, `result_url`, `job_id` (the roots of `{{steps.ID...}}`).

    `job_envelope` is the public envelope of the step's job once it is PROCESSED (None before).
    """
    if step.is_gate:
        return {"output": gate_output(step.resolution), "result_url": None, "job_id": None}
    values: dict[str, Any] = {"output": None, "result_url": None, "job_id": step.job_id}
    if job_envelope is not None:
        values["output"] = inference_output(job_envelope.get("result"), is_llm_endpoint(step.endpoint))
        values["result_url"] = job_envelope.get("result_url")
    return values
