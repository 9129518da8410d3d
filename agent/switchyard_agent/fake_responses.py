"""Deterministic OpenAI-shaped answers for the fake model server's text endpoints.

The reply echoes the prompt, so a test can tell which request produced which answer, and is split into one
streaming chunk per word, so streams always have several chunks.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

SYSTEM_FINGERPRINT = "fp_switchyard_fake"


def count_tokens(text: str) -> int:
    return len(text.split())  # words stand in for tokens: deterministic and good enough for usage numbers


def content_text(content: Any) -> str:
    """The text of a chat message's content, which may be a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [
        part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
    ]
    others = sum(1 for part in content if isinstance(part, dict) and part.get("type") != "text")
    return " ".join(texts) + (f" [+{others} attachment(s)]" if others else "")


def last_user_text(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def prompt_text(prompt: Any) -> str:
    if isinstance(prompt, list):
        prompt = prompt[0] if prompt else ""
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


def limit_words(text: str, payload: dict[str, Any]) -> tuple[str, str]:
    """Apply max_tokens (in words); returns the text and the finish reason."""
    limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
    words = re.findall(r"\S+\s*", text)
    if isinstance(limit, int) and 0 < limit < len(words):
        return "".join(words[:limit]).rstrip(), "length"
    return text, "stop"


def word_pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text) or [text]


def _usage(prompt_tokens: int, completion: str) -> dict[str, int]:
    completion_tokens = count_tokens(completion)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _choice_count(payload: dict[str, Any]) -> int:
    n = payload.get("n")
    return min(n, 8) if isinstance(n, int) and n > 0 else 1


def chat_reply(model: str, payload: dict[str, Any]) -> tuple[str, str]:
    asked = last_user_text(payload.get("messages"))
    answer = f"Fake reply from {model}: {asked}" if asked else f"Fake reply from {model}."
    return limit_words(answer, payload)


def chat_prompt_tokens(payload: dict[str, Any]) -> int:
    messages = payload.get("messages") if isinstance(payload.get("messages"), list) else []
    return sum(count_tokens(content_text(m.get("content"))) for m in messages if isinstance(m, dict))


def chat_completion(request_id: str, model: str, payload: dict[str, Any]) -> dict[str, Any]:
    answer, finish = chat_reply(model, payload)
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": answer, "refusal": None},
            "logprobs": None,
            "finish_reason": finish,
        }
        for i in range(_choice_count(payload))
    ]
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
        "usage": _usage(chat_prompt_tokens(payload), answer),
    }


def _wants_usage(payload: dict[str, Any]) -> bool:
    options = payload.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def chat_completion_chunks(request_id: str, model: str, payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    answer, finish = chat_reply(model, payload)
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": request_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    yield chunk({"role": "assistant", "content": ""})
    for piece in word_pieces(answer):
        yield chunk({"content": piece})
    yield chunk({}, finish)
    if _wants_usage(payload):
        yield {**chunk({}), "choices": [], "usage": _usage(chat_prompt_tokens(payload), answer)}


def completion_reply(model: str, payload: dict[str, Any]) -> tuple[str, str]:
    return limit_words(f"Fake completion from {model}: {prompt_text(payload.get('prompt'))}", payload)


def text_completion(request_id: str, model: str, payload: dict[str, Any]) -> dict[str, Any]:
    answer, finish = completion_reply(model, payload)
    choices = [
        {"index": i, "text": answer, "logprobs": None, "finish_reason": finish}
        for i in range(_choice_count(payload))
    ]
    return {
        "id": request_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
        "usage": _usage(count_tokens(prompt_text(payload.get("prompt"))), answer),
    }


def text_completion_chunks(request_id: str, model: str, payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    answer, finish = completion_reply(model, payload)
    created = int(time.time())
    pieces = word_pieces(answer)
    for position, piece in enumerate(pieces):
        last = position == len(pieces) - 1
        yield {
            "id": request_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {"index": 0, "text": piece, "logprobs": None, "finish_reason": finish if last else None}
            ],
        }
    if _wants_usage(payload):
        prompt_tokens = count_tokens(prompt_text(payload.get("prompt")))
        yield {
            "id": request_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [],
            "usage": _usage(prompt_tokens, answer),
        }


DEFAULT_EMBEDDING_DIMENSIONS = 8
MAX_EMBEDDING_DIMENSIONS = 256


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector that depends only on the text: the same input always embeds the same way."""
    import hashlib
    import math

    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((byte - 127.5) / 127.5 for byte in digest)
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def embedding_inputs(value: Any) -> list[str]:
    """OpenAI's `input`: a string, a list of strings, a token array or a list of token arrays."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, int) for item in value):
        return [json.dumps(value)]
    if isinstance(value, list):
        return [item if isinstance(item, str) else json.dumps(item) for item in value]
    return [json.dumps(value)]


def embeddings(model: str, payload: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's embeddings answer; `encoding_format: base64` packs each vector as little-endian float32."""
    import base64
    import struct

    texts = embedding_inputs(payload.get("input"))
    requested = payload.get("dimensions")
    dimensions = (
        min(requested, MAX_EMBEDDING_DIMENSIONS)
        if isinstance(requested, int) and requested > 0
        else DEFAULT_EMBEDDING_DIMENSIONS
    )
    data = []
    for index, text in enumerate(texts):
        vector = embedding_vector(text, dimensions)
        encoded: Any = vector
        if payload.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(count_tokens(text) for text in texts)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
