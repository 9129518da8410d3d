"""Request bodies of the inference endpoints.

Only what the gateway must know is checked (the model to route on, the fields without which no provider
can answer, the values OpenAI's API fixes); everything else passes through to the provider untouched
(`extra="allow"`). What is checked is checked strictly (no "true" for true, no "2" for 2): these models are
also the OpenAPI document's request schemas, and a fuzzer holds the API to accepting exactly what they say.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NonEmptyStr = Annotated[str, Field(min_length=1)]
# As long as a provider may declare a model id (provider_model.ShortStr).
MAX_MODEL_LENGTH = 256


class InferenceBody(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: Annotated[str, Field(min_length=1, max_length=MAX_MODEL_LENGTH)] = Field(
        description="The model to route to; a provider of yours must serve it."
    )
    async_: bool = Field(
        default=False,
        alias="async",
        description="Queue the request as a job and answer 202 with a job envelope. Stripped before the provider.",
    )


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    role: NonEmptyStr
    content: Any = None


class ChatCompletionRequest(InferenceBody):
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


class CompletionRequest(InferenceBody):
    prompt: str | list[Any] = Field(description="Text (or list of texts/token arrays) to complete.")
    stream: bool = False


class ImageGenerationRequest(InferenceBody):
    prompt: NonEmptyStr
    n: int | None = Field(default=None, ge=1, le=10)
    size: str | None = None
    response_format: Literal["url", "b64_json"] | None = None


class SpeechRequest(InferenceBody):
    input: NonEmptyStr = Field(description="The text to speak.")
    voice: Any = None
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None


class MusicGenerationRequest(InferenceBody):
    prompt: NonEmptyStr
    lyrics: str | None = None
    duration: float | None = Field(default=None, gt=0)


class VideoGenerationRequest(InferenceBody):
    prompt: NonEmptyStr
    image: str | None = Field(default=None, description="Optional first frame (URL or data URI).")


class MeshGenerationRequest(InferenceBody):
    # The rule the validator below enforces, stated for the OpenAPI document.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["prompt"], "properties": {"prompt": {"type": "string", "minLength": 1}}},
                {"required": ["image"], "properties": {"image": {"type": "string", "minLength": 1}}},
            ]
        }
    )

    prompt: str | None = None
    image: str | None = Field(default=None, description="Optional input image (URL or data URI).")

    @model_validator(mode="after")
    def _prompt_or_image(self) -> MeshGenerationRequest:
        if not self.prompt and not self.image:
            raise ValueError("either 'prompt' or 'image' is required")
        return self


class EmbeddingRequest(InferenceBody):
    input: Annotated[str, Field(min_length=1)] | Annotated[list[Any], Field(min_length=1)] = Field(
        description="Text to embed, or a list of texts (or token arrays) to embed in one call."
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some_input(self) -> EmbeddingRequest:
        if self.input == "" or self.input == []:
            raise ValueError("input must not be empty")
        return self


BODY_MODELS: dict[str, type[InferenceBody]] = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/v1/completions": CompletionRequest,
    "/v1/images/generations": ImageGenerationRequest,
    "/v1/audio/speech": SpeechRequest,
    "/v1/music/generations": MusicGenerationRequest,
    "/v1/videos/generations": VideoGenerationRequest,
    "/v1/3d/generations": MeshGenerationRequest,
    "/v1/embeddings": EmbeddingRequest,
}

# Multipart endpoints: form fields a request must carry (files included).
MULTIPART_REQUIRED: dict[str, tuple[str, ...]] = {
    "/v1/audio/transcriptions": ("model", "file"),
    "/v1/images/edits": ("model", "image", "prompt"),
    "/v1/voice/generations": ("model", "text"),
}
