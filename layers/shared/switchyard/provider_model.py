"""A provider agent as stored: where it listens, its shared secret, its capacity and its models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from switchyard.catalog import ServiceType

ShortStr = Annotated[str, Field(min_length=1, max_length=256)]


class ModelDeclaration(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: ShortStr
    service_type: ServiceType
    input_modalities: list[ShortStr] = Field(default_factory=lambda: ["text"], max_length=16)
    output_modalities: list[ShortStr] = Field(default_factory=lambda: ["text"], max_length=16)
    supported_features: list[ShortStr] = Field(default_factory=list, max_length=64)


@dataclass(frozen=True)
class Provider:
    account_id: str
    provider_id: str
    endpoint_url: str
    secret: str
    max_concurrency: int
    models: tuple[ModelDeclaration, ...]
    last_seen: float  # epoch seconds of its last heartbeat

    def serves(self, model: str, service_type: ServiceType) -> bool:
        return any(m.id == model and m.service_type == service_type for m in self.models)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Provider:
        return cls(
            account_id=item["account_id"],
            provider_id=item["provider_id"],
            endpoint_url=item["endpoint_url"],
            secret=item["secret"],
            max_concurrency=int(item.get("max_concurrency", 1)),
            models=tuple(ModelDeclaration.model_validate(m) for m in item.get("models", [])),
            last_seen=int(item.get("last_seen", 0)) / 1000,
        )


@dataclass(frozen=True)
class Registration:
    """A provider with what only its owner's overview needs: the capacity leases its running jobs hold
    and when it first heartbeated."""

    provider: Provider
    leases: dict[str, int]  # lease key -> expiry, epoch ms
    first_seen: float | None  # epoch seconds
