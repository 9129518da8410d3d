"""Provider agents: registration by heartbeat, liveness, and choosing one for a request."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from switchyard.adapters.pinned_http import get_endpoint_guard
from switchyard.adapters.providers_table import ProvidersTable, get_providers_table
from switchyard.caches import cached
from switchyard.catalog import ServiceType
from switchyard.endpoint_policy import URL_SCHEMA_PATTERN, EndpointGuard
from switchyard.errors import InvalidRequest, NoProvider
from switchyard.provider_model import ModelDeclaration, Provider
from switchyard.retention import expires_at
from switchyard.services.accounts import KEY_PREFIX, get_accounts_service
from switchyard.settings import Settings, get_settings
from switchyard.ttl_cache import TtlCache

# What a schema can say of an acceptable endpoint (the rest depends on DNS and the policy): an http(s) URL
# without whitespace or control characters, which the endpoint policy refuses too.
ENDPOINT_URL_PATTERN = URL_SCHEMA_PATTERN
LOCAL_AGENT_URL = "http://127.0.0.1:9100"  # an agent on the same machine (the local stack allows loopback)


# Slots one provider may declare: a box that runs more requests at once than this batches them anyway
# (vLLM's default max_num_seqs), and each slot is an SQS record a dispatcher holds while it runs.
MAX_PROVIDER_CONCURRENCY = 256


class Heartbeat(BaseModel):
    """What a provider agent reports every few seconds."""

    model_config = ConfigDict(extra="ignore", strict=True)

    provider_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
    endpoint_url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2048,
            description="Where the gateway reaches the agent. Refused: credentials, a query or fragment, "
            "and hosts that are (or resolve to) addresses the deployment's endpoint policy does not allow "
            "(private, loopback, link-local, metadata, reserved, and the gateway's own hosts).",
            json_schema_extra={
                "format": "uri",
                "pattern": ENDPOINT_URL_PATTERN,
                "examples": [LOCAL_AGENT_URL],
            },
        ),
    ]
    secret: Annotated[str, Field(min_length=16, max_length=512)]
    max_concurrency: int = Field(default=1, ge=1, le=MAX_PROVIDER_CONCURRENCY)
    models: list[ModelDeclaration] = Field(max_length=512)


@dataclass(frozen=True)
class ProviderStatus:
    """A provider as its owner sees it on the dashboard (never its secret)."""

    provider_id: str
    endpoint_url: str
    max_concurrency: int
    models: tuple[ModelDeclaration, ...]
    last_seen: float
    first_seen: float | None
    slots_in_use: int
    online: bool


class ProvidersService:
    def __init__(
        self,
        settings: Settings,
        table: ProvidersTable,
        guard: EndpointGuard,
        is_api_key: Callable[[str], bool],
    ):
        self._settings = settings
        self._table = table
        self._guard = guard
        self._is_api_key = is_api_key
        # Reloaded in the background in the last quarter of its life: under steady traffic (or, kept warm,
        # under any traffic) no request waits for the query.
        self._online_cache: TtlCache[tuple[Provider, ...]] = TtlCache(
            settings.provider_cache_seconds,
            refresh_ahead_seconds=settings.provider_cache_seconds / 4,
            keep_warm_seconds=settings.cache_keep_warm_seconds,
        )

    def record_heartbeat(self, account_id: str, beat: Heartbeat) -> Provider:
        """Register or refresh a provider; a refused endpoint or secret stores nothing."""
        endpoint_url = self._guard.check_url(beat.endpoint_url)
        # The gateway sends the secret to the endpoint with every call: were it an API key, an endpoint
        # leading back to a gateway would authenticate, and each call would start another.
        if beat.secret.startswith(KEY_PREFIX) or self._is_api_key(beat.secret):
            raise InvalidRequest(
                "secret must not be an API key: the gateway sends it to your provider with every call. "
                "Use a random secret of its own (the agent makes one when --secret is not given).",
                param="secret",
            )
        provider = Provider(
            account_id=account_id,
            provider_id=beat.provider_id,
            endpoint_url=endpoint_url,
            secret=beat.secret,
            max_concurrency=beat.max_concurrency,
            models=tuple(beat.models),
            last_seen=int(time.time() * 1000) / 1000,
        )
        self._table.record_heartbeat(
            provider, expires_at(int(provider.last_seen * 1000), self._settings.retention_days)
        )
        # Written through rather than dropped: a new model or endpoint is served at once here, and the
        # next request does not pay the query (heartbeats come every 15 s from every provider).
        self._online_cache.update(account_id, lambda cached: _with_provider(cached, provider))
        return provider

    def online_providers(self, account_id: str) -> tuple[Provider, ...]:
        """The account's providers that heartbeated recently (cached for provider_cache_seconds)."""
        providers = self._online_cache.get_or_load(account_id, lambda: self._table.of_account(account_id))
        cutoff = time.time() - self._settings.provider_offline_after_seconds
        return tuple(p for p in providers if p.last_seen >= cutoff)

    def candidates(self, account_id: str, model: str, service_type: ServiceType) -> list[Provider]:
        return [p for p in self.online_providers(account_id) if p.serves(model, service_type)]

    def choose(self, account_id: str, model: str, service_type: ServiceType) -> Provider:
        found = self.candidates(account_id, model, service_type)
        if not found:
            raise NoProvider(model)
        return random.choice(found)  # noqa: S311 - spreads load; nothing to guess

    def account_providers(self, account_id: str) -> list[ProviderStatus]:
        """Every provider of the account, online ones first, read afresh (not from the routing cache):
        capacity in use changes by the second."""
        now = time.time()
        cutoff = now - self._settings.provider_offline_after_seconds
        found = []
        for registration in self._table.registrations(account_id):
            provider = registration.provider
            # A lease past its expiry belongs to a dispatcher that died; the sweeper will drop it.
            in_use = sum(1 for until in registration.leases.values() if until >= now * 1000)
            found.append(
                ProviderStatus(
                    provider_id=provider.provider_id,
                    endpoint_url=provider.endpoint_url,
                    max_concurrency=provider.max_concurrency,
                    models=provider.models,
                    last_seen=provider.last_seen,
                    first_seen=registration.first_seen,
                    slots_in_use=in_use,
                    online=provider.last_seen >= cutoff,
                )
            )
        return sorted(found, key=lambda p: (not p.online, p.provider_id))

    # -- capacity (see adapters/providers_table.py): a running async job holds one of its provider's slots
    def acquire_slot(self, provider: Provider, lease_key: str, until_ms: int) -> bool:
        return self._table.acquire_slot(provider.account_id, provider.provider_id, lease_key, until_ms)

    def release_slot(self, account_id: str, provider_id: str, lease_key: str) -> None:
        self._table.release_slot(account_id, provider_id, lease_key)

    def leases(self, account_id: str, provider_id: str) -> dict[str, int]:
        return self._table.leases(account_id, provider_id)

    def count_online(self) -> int:
        """Online providers of every account (for the sweeper's census; uncached)."""
        cutoff_ms = int((time.time() - self._settings.provider_offline_after_seconds) * 1000)
        return self._table.count_online(cutoff_ms)

    def expire_leases(self, now_ms: int) -> int:
        """Drop leases past their expiry (their holder died); returns how many were dropped."""
        return self._table.expire_leases(now_ms)


def _with_provider(providers: tuple[Provider, ...], provider: Provider) -> tuple[Provider, ...]:
    return (*(p for p in providers if p.provider_id != provider.provider_id), provider)


@cached
def get_providers_service() -> ProvidersService:
    return ProvidersService(
        get_settings(), get_providers_table(), get_endpoint_guard(), get_accounts_service().is_api_key
    )


def reachable_models(providers: tuple[Provider, ...]) -> list[dict[str, Any]]:
    """OpenAI model objects for what these providers serve, merged across providers."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
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
