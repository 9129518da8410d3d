"""How a provider's answer becomes a job's stored result (pure: no I/O).

LLM answers are kept inline as JSON text, or in S3 when larger than the inline limit. Media answers
always go to S3 as the asset itself: binary answers are the asset; JSON answers carrying the media as
base64 have it decoded and stored, and the JSON minus the base64 is kept inline as metadata.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from switchyard.job_model import Job

# Leading bytes of the formats providers send, for base64 payloads that arrive without a type.
_MAGIC = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "audio/wav"),
    (b"ID3", "audio/mpeg"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
    (b"glTF", "model/gltf-binary"),
)
_BASE64_FIELDS = ("b64_json", "b64", "audio", "video", "mesh", "glb", "data")


@dataclass(frozen=True)
class JobResult:
    """What a PROCESSED job keeps: `result` inline (JSON text), and/or `blob` stored under `result_key`."""

    result: str | None = None
    result_key: str | None = None
    result_content_type: str | None = None
    blob: bytes | None = None


def result_of(job: Job, content: bytes, content_type: str, inline_limit_bytes: int) -> JobResult:
    content_type = content_type.split(";")[0].strip()
    if job.is_media:
        asset, asset_type, metadata = extract_asset(content, content_type)
        return JobResult(
            result=json.dumps(metadata, separators=(",", ":")) if metadata is not None else None,
            result_key=f"assets/{job.account_id}/{job.job_id}",
            result_content_type=asset_type,
            blob=asset,
        )
    if len(content) > inline_limit_bytes:
        return JobResult(
            result_key=f"results/{job.account_id}/{job.job_id}.json",
            result_content_type=content_type,
            blob=content,
        )
    text = content.decode("utf-8", errors="replace")
    return JobResult(result=text if _is_json(text) else json.dumps({"text": text}))


def sniff(data: bytes, default: str) -> str:
    """The media type of a payload, from its leading bytes."""
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return default


def extract_asset(content: bytes, content_type: str) -> tuple[bytes, str, dict[str, Any] | None]:
    """The media bytes of a provider answer, their type, and the JSON metadata without the payload.

    Binary answers are the asset. JSON answers (OpenAI's image shape, or similar) carry the media as base64
    (`data[0].b64_json`, `b64_json`, `audio`, `data`...); that is decoded and stored, and the JSON minus the
    base64 is kept as metadata. A JSON answer without inline media is itself the stored asset.
    """
    if not content_type.startswith("application/json"):
        return content, content_type, None
    try:
        document = json.loads(content)
    except ValueError:
        return content, content_type, None
    holder, field = _find_base64(document)
    if holder is None:
        return content, "application/json", document
    raw = base64.b64decode(holder[field])
    holder[field] = f"<stored asset, {len(raw)} bytes>"
    return raw, sniff(raw, "application/octet-stream"), document


def _find_base64(document: Any) -> tuple[dict[str, Any] | None, str]:
    candidates = [document]
    if isinstance(document, dict) and isinstance(document.get("data"), list) and document["data"]:
        candidates.insert(0, document["data"][0])
    for holder in candidates:
        if not isinstance(holder, dict):
            continue
        for field in _BASE64_FIELDS:
            value = holder.get(field)
            if isinstance(value, str) and len(value) > 16:
                try:
                    base64.b64decode(value, validate=True)
                except ValueError:
                    continue
                return holder, field
    return None, ""


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
