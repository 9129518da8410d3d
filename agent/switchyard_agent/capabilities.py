"""Service types and what each one takes in, gives out and supports.

Shared by discovery (to describe models a server does not describe itself) and by the fake model server (to
describe its own models the same way), so both agree on one vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The gateway routes a request only to a provider that declared the endpoint's service type (CONTRACTS.md).
SERVICE_TYPES = ("llm", "stt", "tts", "image", "music", "video", "mesh", "embedding")


@dataclass(frozen=True)
class Capabilities:
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    supported_features: tuple[str, ...]


DEFAULT_CAPABILITIES: dict[str, Capabilities] = {
    "llm": Capabilities(("text",), ("text",), ("chat", "completions", "streaming")),
    "stt": Capabilities(("audio",), ("text",), ("transcriptions",)),
    "tts": Capabilities(("text",), ("audio",), ("speech",)),
    "image": Capabilities(("text", "image"), ("image",), ("image_generations", "image_edits")),
    "music": Capabilities(("text",), ("audio",), ("music_generations",)),
    "video": Capabilities(("text", "image"), ("video",), ("video_generations",)),
    "mesh": Capabilities(("text", "image"), ("mesh",), ("mesh_generations",)),
    "embedding": Capabilities(("text",), ("embedding",), ("embeddings",)),
}


@dataclass(frozen=True)
class _NameHint:
    service_type: str
    # Distinctive fragments, safe to match anywhere in the name ("distil-whisper", "xtts-v2").
    fragments: tuple[str, ...]
    # Short words that would match by accident inside other words ("wan" in "swan"), so they must be a whole
    # token of the name, optionally followed by a version ("wan2", "sd3", "ltxv").
    words: tuple[str, ...]


# Checked in order: the first match wins. Order matters where names mix hints: "trellis-image-large" is a
# mesh model and "image-to-video" a video model, so mesh and video come before image; embedding models
# ("bge-large", "text-embedding-3-small") come first of all.
_NAME_HINTS = (
    # First: "text-embedding-3-small" or "nomic-embed-text" must not fall through to the text default.
    _NameHint(
        "embedding",
        ("embed", "minilm", "mpnet", "sentence-t5", "sentence-transformers"),
        ("bge", "e5", "gte", "retriever"),
    ),
    _NameHint("stt", ("whisper", "speech-to-text"), ("asr", "stt", "parakeet", "canary", "transcribe")),
    _NameHint("mesh", ("hunyuan3d", "trellis", "triposr", "-to-3d", "text-to-mesh"), ("3d", "mesh", "sf3d")),
    _NameHint(
        "video", ("ltx-video", "-to-video", "hunyuanvideo", "cogvideo"), ("video", "wan", "ltx", "mochi")
    ),
    _NameHint("music", ("musicgen", "stable-audio", "ace-step", "audiocraft"), ("music", "song")),
    _NameHint(
        "tts", ("tts", "kokoro", "text-to-speech", "speech"), ("bark", "piper", "voice", "dia", "orpheus")
    ),
    _NameHint("image", ("flux", "sdxl", "stable-diffusion", "dall-e", "dalle"), ("image", "sd", "img")),
)

_VERSION_SUFFIX = r"[0-9.v]*"


def _matches(hint: _NameHint, name: str, tokens: list[str]) -> bool:
    if any(fragment in name for fragment in hint.fragments):
        return True
    return any(
        re.fullmatch(re.escape(word) + _VERSION_SUFFIX, token) for word in hint.words for token in tokens
    )


def infer_service_type(model_id: str, default: str = "llm") -> str:
    """Guess a model's service type from its name; `default` when nothing hints otherwise."""
    name = model_id.lower()
    tokens = [t for t in re.split(r"[^a-z0-9]+", name) if t]
    for hint in _NAME_HINTS:
        if _matches(hint, name, tokens):
            return hint.service_type
    # Image-to-3D models tend to end their name in "3d" ("sf3d", "instant3d").
    if any(token.endswith("3d") for token in tokens):
        return "mesh"
    return default
