"""What a finished step exposes to its dependents' references and to the run view (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def llm_text(result: Any) -> str | None:
    """The answer text of an OpenAI-style chat or completion response (or a plain {"text"} answer)."""
    if not isinstance(result, dict):
        return None
    choices = result.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]
        message = first.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return message["content"]
        if isinstance(first.get("text"), str):
            return first["text"]
    text = result.get("text")
    return text if isinstance(text, str) else None


def inference_output(result: Any, is_llm: bool) -> Any:
    """LLM: {"text", "response"}; media: the provider's JSON metadata (None when it sent only bytes)."""
    if is_llm:
        return {"text": llm_text(result), "response": result}
    return result


def iso_ms(ms: int | None) -> str | None:
    if not ms:
        return None
    return (
        datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{int(ms) % 1000:03d}Z"
    )


def ms_from_iso(text: str | None) -> int | None:
    """Step Functions' `$$.State.EnteredTime` (ISO 8601, UTC) as epoch milliseconds."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def gate_output(resolution: dict[str, Any] | None) -> dict[str, Any] | None:
    if not resolution:
        return None
    return {
        "decision": resolution.get("decision"),
        "comment": resolution.get("comment"),
        "by": resolution.get("by"),
        "at": iso_ms(resolution.get("at_ms")),
    }
