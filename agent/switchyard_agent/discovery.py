"""Finding out which models the local server serves, and describing them the way the heartbeat wants.

Works with any server exposing OpenAI's `GET /v1/models` (vLLM, Ollama, llama.cpp server, our fake server).
Servers that describe their models (service_type, modalities, features) are believed; for the others the
service type is guessed from the model's name, and `--model-type` overrides beat both.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from switchyard_agent.capabilities import DEFAULT_CAPABILITIES, SERVICE_TYPES, infer_service_type

log = logging.getLogger(__name__)

# The gateway accepts at most this many models per heartbeat.
MAX_MODELS = 512


@dataclass(frozen=True)
class ModelDescriptor:
    id: str
    service_type: str
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    supported_features: tuple[str, ...]

    def as_heartbeat_entry(self) -> dict[str, Any]:
        entry = asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in entry.items()}


def _string_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and value and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    return None


def _override_for(model_id: str, overrides: Mapping[str, str]) -> str | None:
    if model_id in overrides:
        return overrides[model_id]
    # Patterns let one override cover the tags Ollama appends ("flux*=image" for "flux:latest").
    for pattern, service_type in overrides.items():
        if fnmatch.fnmatchcase(model_id, pattern):
            return service_type
    return None


def describe_model(
    entry: Mapping[str, Any], overrides: Mapping[str, str], default_service_type: str
) -> ModelDescriptor:
    """One `/v1/models` entry as a heartbeat model declaration."""
    model_id = str(entry["id"])
    reported = entry.get("service_type")
    reported = reported if reported in SERVICE_TYPES else None
    service_type = (
        _override_for(model_id, overrides) or reported or infer_service_type(model_id, default_service_type)
    )
    defaults = DEFAULT_CAPABILITIES[service_type]
    if service_type != reported:
        # What the server said about modalities belongs to the type it reported, not the one we chose.
        return ModelDescriptor(
            model_id,
            service_type,
            defaults.input_modalities,
            defaults.output_modalities,
            defaults.supported_features,
        )
    return ModelDescriptor(
        model_id,
        service_type,
        _string_list(entry.get("input_modalities")) or defaults.input_modalities,
        _string_list(entry.get("output_modalities")) or defaults.output_modalities,
        _string_list(entry.get("supported_features")) or defaults.supported_features,
    )


def _model_entries(listing: Any) -> list[dict[str, Any]]:
    """The model entries of a `/v1/models` answer, tolerating the shapes real servers send."""
    if isinstance(listing, dict):
        # OpenAI shape is {"data": [...]}; llama.cpp also sends {"models": [{"name"|"model": ...}]}.
        raw = listing.get("data")
        if not isinstance(raw, list):
            raw = listing.get("models")
    else:
        raw = listing
    if not isinstance(raw, list):
        raise ValueError("the models listing has no 'data' list")
    entries = []
    for item in raw:
        if isinstance(item, str):
            item = {"id": item}
        if not isinstance(item, dict):
            continue
        model_id = item.get("id") or item.get("model") or item.get("name")
        if isinstance(model_id, str) and model_id:
            entries.append({**item, "id": model_id})
    return entries


def describe_models(
    listing: Any, overrides: Mapping[str, str], default_service_type: str = "llm"
) -> list[ModelDescriptor]:
    seen: set[str] = set()
    models = []
    for entry in _model_entries(listing):
        if entry["id"] in seen:
            continue
        seen.add(entry["id"])
        models.append(describe_model(entry, overrides, default_service_type))
    if len(models) > MAX_MODELS:
        log.warning("upstream lists %d models; advertising only the first %d", len(models), MAX_MODELS)
        models = models[:MAX_MODELS]
    return models


class ModelDiscovery:
    """Asks the upstream for its models, remembering the last good answer for when it is briefly down."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        upstream_url: str,
        *,
        upstream_api_key: str | None = None,
        overrides: Mapping[str, str] | None = None,
        default_service_type: str = "llm",
        timeout_seconds: float = 10.0,
    ) -> None:
        self._client = client
        self._url = upstream_url.rstrip("/") + "/v1/models"
        self._headers = {"Authorization": f"Bearer {upstream_api_key}"} if upstream_api_key else {}
        self._overrides = dict(overrides or {})
        self._default_service_type = default_service_type
        self._timeout = timeout_seconds
        self.models: list[ModelDescriptor] | None = None  # None until the upstream has answered once

    async def fetch(self) -> list[ModelDescriptor]:
        response = await self._client.get(self._url, headers=self._headers, timeout=self._timeout)
        response.raise_for_status()
        return describe_models(response.json(), self._overrides, self._default_service_type)

    async def refresh(self) -> list[ModelDescriptor] | None:
        """The current models, or the last good list (None if there never was one) if the upstream fails."""
        try:
            models = await self.fetch()
        except (httpx.HTTPError, ValueError) as exc:
            kept = (
                f"keeping the last {len(self.models)} known model(s)"
                if self.models is not None
                else "no models yet"
            )
            log.warning(
                "model discovery at %s failed (%s); %s", self._url, str(exc) or type(exc).__name__, kept
            )
            return self.models
        if self.models is not None and models != self.models:
            log.info("upstream models changed: %s", ", ".join(m.id for m in models) or "(none)")
        self.models = models
        return models
