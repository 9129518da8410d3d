"""The inference endpoints of the contract: what each serves, how it is called, and whether it can queue."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ServiceType(StrEnum):
    LLM = "llm"
    STT = "stt"
    TTS = "tts"
    IMAGE = "image"
    MUSIC = "music"
    VIDEO = "video"
    MESH = "mesh"
    EMBEDDING = "embedding"


@dataclass(frozen=True)
class Endpoint:
    path: str
    service_type: ServiceType
    inference_type: str  # the job envelope's `inference_type`
    multipart: bool = False
    streams: bool = False  # honours `stream: true`

    @property
    def can_queue(self) -> bool:
        return not self.multipart


# Inference types whose result is the provider's JSON answer, kept as is (the others are media assets).
JSON_RESULT_TYPES = frozenset({"LLM", "EMBEDDING"})


ENDPOINTS: dict[str, Endpoint] = {
    e.path: e
    for e in (
        Endpoint("/v1/chat/completions", ServiceType.LLM, "LLM", streams=True),
        Endpoint("/v1/completions", ServiceType.LLM, "LLM", streams=True),
        Endpoint("/v1/images/generations", ServiceType.IMAGE, "IMAGE"),
        Endpoint("/v1/audio/speech", ServiceType.TTS, "TTS"),
        Endpoint("/v1/music/generations", ServiceType.MUSIC, "MUSIC"),
        Endpoint("/v1/videos/generations", ServiceType.VIDEO, "VIDEO"),
        Endpoint("/v1/3d/generations", ServiceType.MESH, "MESH"),
        Endpoint("/v1/embeddings", ServiceType.EMBEDDING, "EMBEDDING"),
        Endpoint("/v1/audio/transcriptions", ServiceType.STT, "STT", multipart=True),
        Endpoint("/v1/images/edits", ServiceType.IMAGE, "IMAGE", multipart=True),
        Endpoint("/v1/voice/generations", ServiceType.TTS, "VOICE", multipart=True),
    )
}


def endpoint_for(path: str) -> Endpoint | None:
    return ENDPOINTS.get(path.rstrip("/") or path)
