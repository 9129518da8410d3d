"""How a provider's answer becomes a job's stored result (pure: no I/O).

LLM answers are kept as JSON text: a JSON answer as sent, any other text as `{"text": ...}` (encoded
once, without ASCII escaping, and measured after encoding). Media answers are stored as assets, one S3
object per output: a binary answer is its one asset; a JSON answer carrying media as base64 (every item
of OpenAI's `data` list, and fields such as `audio` or `video`) has each payload decoded and stored,
and the JSON minus the payloads is kept as metadata. A JSON answer without inline media is itself the
asset (its URLs point at the provider's files) and its metadata.

One size rule decides where the JSON text lives: the job's item as the finishing write will leave it
(the body, if it is inline, included) is measured as DynamoDB counts it (`item_size`); if it is over
the limit, the text goes to S3 and the item keeps its key. Every S3 key carries the claim of the run
that wrote it, so a run that lost its claim (its lease ran out while the provider worked) can never
overwrite the stored result of the run that holds it: its objects are orphans the lifecycle rule expires.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field, replace
from typing import Any

from switchyard.item_size import item_size
from switchyard.job_model import Job, JobStatus, StoredAsset

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
JSON = "application/json"


@dataclass(frozen=True)
class Blob:
    """An object to put in S3 before the finishing write names it."""

    key: str
    content: bytes
    content_type: str


@dataclass(frozen=True)
class JobResult:
    """What a PROCESSED job keeps (see Job's fields), and the objects to store first (`blobs`)."""

    result: str | None = None
    result_key: str | None = None
    result_content_type: str | None = None
    result_bytes: int | None = None
    metadata_key: str | None = None
    assets: tuple[StoredAsset, ...] = ()
    blobs: tuple[Blob, ...] = field(default=(), repr=False)

    def stored_values(self) -> dict[str, Any]:
        """The attributes the finishing write sets."""
        values: dict[str, Any] = {
            "result": self.result,
            "result_key": self.result_key,
            "result_content_type": self.result_content_type,
            "result_bytes": self.result_bytes,
            "metadata_key": self.metadata_key,
            "assets": [asset.to_item() for asset in self.assets] or None,
        }
        return {name: value for name, value in values.items() if value is not None}


def result_of(job: Job, content: bytes, content_type: str, *, item_limit_bytes: int) -> JobResult:
    """The stored result of `job` (claimed, as its claim left the item) for the provider's answer."""
    content_type = content_type.split(";")[0].strip()
    run = f"{job.account_id}/{job.job_id}/{job.claim_id or f'gen{job.gen}'}"
    if job.is_media:
        return _media_result(job, run, content, content_type, item_limit_bytes)
    text = content.decode("utf-8", errors="replace")
    if not _is_json(text):
        text = json.dumps({"text": text}, ensure_ascii=False, separators=(",", ":"))
    inline = JobResult(result=text, result_content_type=JSON)
    if _fits(job, inline, item_limit_bytes):
        return inline
    encoded = text.encode()
    key = f"results/{run}.json"
    return JobResult(
        result_key=key,
        result_content_type=JSON,
        result_bytes=len(encoded),
        blobs=(Blob(key, encoded, JSON),),
    )


def _media_result(job: Job, run: str, content: bytes, content_type: str, limit: int) -> JobResult:
    outputs, metadata = extract_assets(content, content_type)
    blobs = tuple(Blob(f"assets/{run}/{index}", data, kind) for index, (data, kind) in enumerate(outputs))
    assets = tuple(StoredAsset(blob.key, blob.content_type, len(blob.content)) for blob in blobs)
    stored = JobResult(
        result_key=assets[0].key, result_content_type=assets[0].content_type, assets=assets, blobs=blobs
    )
    if metadata is None:
        return stored
    text = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
    inline = replace(stored, result=text)
    if _fits(job, inline, limit):
        return inline
    key = f"results/{run}.metadata.json"
    return replace(stored, metadata_key=key, blobs=(*blobs, Blob(key, text.encode(), JSON)))


def _fits(job: Job, result: JobResult, limit: int) -> bool:
    """The one size rule: the whole item as the finishing write leaves it, as DynamoDB counts it."""
    finished = {**job.to_item(), **result.stored_values(), "status": JobStatus.PROCESSED.value}
    finished["finished_ms"] = 0
    return item_size(finished) <= limit


def body_fits(job: Job, limit: int) -> bool:
    """The same rule for a new job whose body is inline."""
    return item_size(job.to_item()) <= limit


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


def extract_assets(content: bytes, content_type: str) -> tuple[list[tuple[bytes, str]], Any]:
    """The media outputs of a provider answer (bytes, type), and its JSON metadata without the payloads
    (None for a binary answer). Each payload is replaced by `<stored asset N, SIZE bytes>`."""
    if not content_type.startswith(JSON):
        return [(content, content_type or "application/octet-stream")], None
    try:
        document = json.loads(content)
    except ValueError:
        return [(content, content_type)], None
    outputs: list[tuple[bytes, str]] = []
    for holder, name in _payloads(document):
        raw = base64.b64decode(holder[name])
        holder[name] = f"<stored asset {len(outputs)}, {len(raw)} bytes>"
        outputs.append((raw, sniff(raw, "application/octet-stream")))
    if not outputs:
        return [(content, JSON)], document
    return outputs, document


def _payloads(document: Any) -> list[tuple[dict[str, Any], str]]:
    """(holder, field) of every base64 payload: each item of a `data` list, then the document itself."""
    holders: list[dict[str, Any]] = []
    if isinstance(document, dict):
        data = document.get("data")
        if isinstance(data, list):
            holders.extend(item for item in data if isinstance(item, dict))
        holders.append(document)
    found = []
    for holder in holders:
        for name in _BASE64_FIELDS:
            value = holder.get(name)
            if isinstance(value, str) and len(value) > 16:
                try:
                    base64.b64decode(value, validate=True)
                except (ValueError, binascii.Error):
                    continue
                found.append((holder, name))
    return found


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
