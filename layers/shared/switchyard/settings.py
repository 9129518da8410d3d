"""Deployment settings, read once from the environment (SAM sets them from template.yaml)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    accounts_table: str = "switchyard-accounts"
    api_keys_table: str = "switchyard-api-keys"
    providers_table: str = "switchyard-providers"
    media_bucket: str = "switchyard-media"

    # Which provider endpoint addresses are acceptable (SSRF guard): "public" refuses private,
    # loopback, link-local, metadata and reserved addresses; "loopback" also allows 127.0.0.0/8 and ::1.
    provider_endpoint_policy: Literal["public", "loopback", "any"] = "public"
    provider_offline_after_seconds: int = 60
    heartbeat_interval_seconds: int = 15
    upstream_timeout_seconds: float = 120.0
    upstream_connect_timeout_seconds: float = 5.0
    async_enabled: bool = True

    # Warm-path caches. A revoked key stops working within auth_cache_seconds; a provider that goes
    # offline stops being chosen within provider_cache_seconds.
    auth_cache_seconds: float = 10.0
    provider_cache_seconds: float = 2.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
