"""Finding out which models the local server serves, and describing them the way the heartbeat wants.

Works with any server exposing OpenAI's `GET /v1/models` (vLLM, Ollama, llama.cpp's llama-server and
llama-cpp-python, LM Studio, our fake server; agent/README.md shows what each reports). Servers that
describe their models (service_type, modalities, features) are believed; for the others the service type
is guessed from the model's name, and `--model-type` overrides beat both. Embedding models, which some
servers list beside their chat models, are declared as such (service type `embedding`: /v1/embeddings).

llama-server says more than its listing: when the listing is its (`owned_by: llamacpp`), `GET /props`
gives the number of requests it runs at once (`total_slots`, its `--parallel`), which becomes the
agent's capacity unless `--max-concurrency` is given, and whether the model takes images or audio.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import httpx

from switchyard_agent.capabilities import (
    DEFAULT_CAPABILITIES,
    SERVICE_TYPES,
    infer_service_type,
)

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
    override = _override_for(model_id, overrides)
    service_type = override or reported or infer_service_type(model_id, default_service_type)
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
    listing: Any,
    overrides: Mapping[str, str],
    default_service_type: str = "llm",
    server_props: Mapping[str, Any] | None = None,
) -> list[ModelDescriptor]:
    """The heartbeat's models for a `/v1/models` answer (and, from llama-server, its `/props`)."""
    seen: set[str] = set()
    models = []
    for entry in _model_entries(listing):
        if entry["id"] in seen:
            continue
        seen.add(entry["id"])
        models.append(describe_model(entry, overrides, default_service_type))
    extra_inputs = _llama_server_inputs(listing, server_props)
    if extra_inputs:
        models = [
            replace(m, input_modalities=(*m.input_modalities, *extra_inputs))
            if m.service_type == "llm"
            else m
            for m in models
        ]
    if len(models) > MAX_MODELS:
        log.warning("upstream lists %d models; advertising only the first %d", len(models), MAX_MODELS)
        models = models[:MAX_MODELS]
    return models


def is_llama_server(listing: Any) -> bool:
    """llama.cpp's own server marks every model of its listing `owned_by: llamacpp`."""
    data = listing.get("data") if isinstance(listing, dict) else None
    return isinstance(data, list) and any(
        isinstance(entry, dict) and entry.get("owned_by") == "llamacpp" for entry in data
    )


def llama_server_slots(props: Mapping[str, Any] | None) -> int | None:
    """How many requests llama-server decodes at once (`--parallel`), from its `/props`."""
    slots = (props or {}).get("total_slots")
    return slots if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0 else None


def _llama_server_inputs(listing: Any, props: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Inputs beyond text a llama-server model takes: `/props` modalities, else its listing's capabilities."""
    if not is_llama_server(listing):
        return ()
    modalities = (props or {}).get("modalities")
    if isinstance(modalities, dict):
        return tuple(
            kind for flag, kind in (("vision", "image"), ("audio", "audio")) if modalities.get(flag) is True
        )
    # Without /props (older servers, or an API key it refused), "multimodal" in the Ollama-style listing.
    for entry in listing.get("models") or []:
        if isinstance(entry, dict) and "multimodal" in (entry.get("capabilities") or []):
            return ("image",)
    return ()


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
        self._props_url = upstream_url.rstrip("/") + "/props"
        self._headers = {"Authorization": f"Bearer {upstream_api_key}"} if upstream_api_key else {}
        self._overrides = dict(overrides or {})
        self._default_service_type = default_service_type
        self._timeout = timeout_seconds
        self.models: list[ModelDescriptor] | None = None  # None until the upstream has answered once
        # Requests the upstream runs at once, where it says so (llama-server); None: it does not say.
        self.slots: int | None = None

    async def fetch(self) -> list[ModelDescriptor]:
        response = await self._client.get(self._url, headers=self._headers, timeout=self._timeout)
        response.raise_for_status()
        listing = response.json()
        props = None
        if not is_llama_server(listing):
            self.slots = None
        else:
            props = await self._llama_server_props()
            if props is not None:  # unanswered: keep what it said last time
                self.slots = llama_server_slots(props)
        return describe_models(listing, self._overrides, self._default_service_type, props)

    async def _llama_server_props(self) -> dict[str, Any] | None:
        try:
            response = await self._client.get(self._props_url, headers=self._headers, timeout=self._timeout)
            response.raise_for_status()
            props = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.info(
                "llama-server's /props did not answer (%s): capacity and modalities stay as configured", exc
            )
            return None
        return props if isinstance(props, dict) else None

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
