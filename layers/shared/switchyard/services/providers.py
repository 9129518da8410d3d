"""Provider agents: registration by heartbeat, liveness, and choosing one for a request."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from switchyard.adapters import aws
from switchyard.catalog import ServiceType
from switchyard.endpoint_policy import check_endpoint_url
from switchyard.errors import NoProvider
from switchyard.settings import Settings, get_settings
from switchyard.ttl_cache import TtlCache

ShortStr = Annotated[str, Field(min_length=1, max_length=256)]


class ModelDeclaration(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: ShortStr
    service_type: ServiceType
    input_modalities: list[ShortStr] = Field(default_factory=lambda: ["text"], max_length=16)
    output_modalities: list[ShortStr] = Field(default_factory=lambda: ["text"], max_length=16)
    supported_features: list[ShortStr] = Field(default_factory=list, max_length=64)


class Heartbeat(BaseModel):
    """What a provider agent reports every few seconds."""

    model_config = ConfigDict(extra="ignore")

    provider_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
    endpoint_url: Annotated[str, Field(min_length=1, max_length=2048)]
    secret: Annotated[str, Field(min_length=16, max_length=512)]
    max_concurrency: int = Field(default=1, ge=1, le=1024)
    models: list[ModelDeclaration] = Field(max_length=512)


@dataclass(frozen=True)
class Provider:
    account_id: str
    provider_id: str
    endpoint_url: str
    secret: str
    max_concurrency: int
    models: tuple[ModelDeclaration, ...]
    last_seen: float

    def serves(self, model: str, service_type: ServiceType) -> bool:
        return any(m.id == model and m.service_type == service_type for m in self.models)


class ProvidersService:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._table = aws.table(settings.providers_table)
        # Reloaded in the background in the last quarter of its life: under steady traffic (or, kept warm,
        # under any traffic) no request waits for the query.
        self._online_cache: TtlCache[tuple[Provider, ...]] = TtlCache(
            settings.provider_cache_seconds,
            refresh_ahead_seconds=settings.provider_cache_seconds / 4,
            keep_warm_seconds=settings.cache_keep_warm_seconds,
        )

    def record_heartbeat(self, account_id: str, beat: Heartbeat) -> Provider:
        endpoint = check_endpoint_url(beat.endpoint_url, self._settings.provider_endpoint_policy)
        now = time.time()
        # UpdateItem, not PutItem: counters the dispatcher keeps on the same item must survive heartbeats.
        self._table.update_item(
            Key={"account_id": account_id, "provider_id": beat.provider_id},
            UpdateExpression=(
                "SET endpoint_url = :u, secret = :s, max_concurrency = :c, models = :m, last_seen = :t, "
                "first_seen = if_not_exists(first_seen, :t), leases = if_not_exists(leases, :empty)"
            ),
            ExpressionAttributeValues={
                ":u": endpoint,
                ":s": beat.secret,
                ":c": beat.max_concurrency,
                ":m": [m.model_dump() for m in beat.models],
                ":t": int(now * 1000),
                ":empty": {},
            },
        )
        provider = self._from_item(
            {
                "account_id": account_id,
                "provider_id": beat.provider_id,
                "endpoint_url": endpoint,
                "secret": beat.secret,
                "max_concurrency": beat.max_concurrency,
                "models": [m.model_dump() for m in beat.models],
                "last_seen": int(now * 1000),
            }
        )
        # Written through rather than dropped: a new model or endpoint is served at once here, and the
        # next request does not pay the query (heartbeats come every 15 s from every provider).
        self._online_cache.update(account_id, lambda cached: _with_provider(cached, provider))
        return provider

    def online_providers(self, account_id: str) -> tuple[Provider, ...]:
        """The account's providers that heartbeated recently (cached for provider_cache_seconds)."""
        providers = self._online_cache.get_or_load(account_id, lambda: self._load(account_id))
        cutoff = time.time() - self._settings.provider_offline_after_seconds
        return tuple(p for p in providers if p.last_seen >= cutoff)

    def candidates(self, account_id: str, model: str, service_type: ServiceType) -> list[Provider]:
        return [p for p in self.online_providers(account_id) if p.serves(model, service_type)]

    def choose(self, account_id: str, model: str, service_type: ServiceType) -> Provider:
        found = self.candidates(account_id, model, service_type)
        if not found:
            raise NoProvider(model)
        return random.choice(found)

    # -- capacity: a provider runs at most max_concurrency async jobs; each running job holds a lease
    # (lease key -> expiry) on the provider's item. Leases are counted atomically by DynamoDB, released when
    # the job ends, and expire (swept) if a dispatcher dies holding one.
    def acquire_slot(self, provider: Provider, lease_key: str, until_ms: int) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._table.update_item(
                Key={"account_id": provider.account_id, "provider_id": provider.provider_id},
                UpdateExpression="SET leases.#job = :until",
                ConditionExpression="attribute_exists(leases) AND size(leases) < max_concurrency",
                ExpressionAttributeNames={"#job": lease_key},
                ExpressionAttributeValues={":until": until_ms},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_slot(self, account_id: str, provider_id: str, lease_key: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._table.update_item(
                Key={"account_id": account_id, "provider_id": provider_id},
                UpdateExpression="REMOVE leases.#job",
                ConditionExpression="attribute_exists(leases)",
                ExpressionAttributeNames={"#job": lease_key},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def expire_leases(self, now_ms: int) -> int:
        """Drop leases past their expiry (their holder died); returns how many were dropped."""
        from botocore.exceptions import ClientError

        dropped = 0
        pages = aws.item_pages(self._table.scan, ProjectionExpression="account_id, provider_id, leases")
        for item in (item for page in pages for item in page):
            for job_id, until in (item.get("leases") or {}).items():
                if int(until) >= now_ms:
                    continue
                try:
                    self._table.update_item(
                        Key={"account_id": item["account_id"], "provider_id": item["provider_id"]},
                        UpdateExpression="REMOVE leases.#job",
                        ConditionExpression="leases.#job = :until",
                        ExpressionAttributeNames={"#job": job_id},
                        ExpressionAttributeValues={":until": until},
                    )
                    dropped += 1
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                        raise
        return dropped

    def _load(self, account_id: str) -> tuple[Provider, ...]:
        # Plain expressions: boto3's Key()/Attr() builder is shared by every thread using a resource and is
        # reset on each call, so concurrent queries (the dispatcher's threads, the front's) can mix them up.
        pages = aws.item_pages(
            self._table.query,
            KeyConditionExpression="account_id = :a",
            ExpressionAttributeValues={":a": account_id},
        )
        return tuple(self._from_item(item) for page in pages for item in page)

    @staticmethod
    def _from_item(item: dict) -> Provider:
        return Provider(
            account_id=item["account_id"],
            provider_id=item["provider_id"],
            endpoint_url=item["endpoint_url"],
            secret=item["secret"],
            max_concurrency=int(item.get("max_concurrency", 1)),
            models=tuple(ModelDeclaration.model_validate(m) for m in item.get("models", [])),
            last_seen=int(item.get("last_seen", 0)) / 1000,
        )


def _with_provider(providers: tuple[Provider, ...], provider: Provider) -> tuple[Provider, ...]:
    return (*(p for p in providers if p.provider_id != provider.provider_id), provider)


@lru_cache(maxsize=1)
def get_providers_service() -> ProvidersService:
    return ProvidersService(get_settings())


def reachable_models(providers: tuple[Provider, ...]) -> list[dict]:
    """OpenAI model objects for what these providers serve, merged across providers."""
    merged: dict[tuple[str, str], dict] = {}
    for provider in providers:
        for m in provider.models:
            entry = merged.setdefault(
                (m.id, m.service_type.value),
                {
                    "id": m.id,
                    "object": "model",
                    "created": int(provider.last_seen),
                    "owned_by": provider.account_id,
                    "service_type": m.service_type.value,
                    "input_modalities": [],
                    "output_modalities": [],
                    "supported_features": [],
                },
            )
            for field in ("input_modalities", "output_modalities", "supported_features"):
                for value in getattr(m, field):
                    if value not in entry[field]:
                        entry[field].append(value)
    return sorted(merged.values(), key=lambda e: (e["id"], e["service_type"]))
