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
    jobs_table: str = "switchyard-jobs"
    idempotency_table: str = "switchyard-idempotency"
    jobs_queue_url: str = ""
    runs_table: str = "switchyard-runs"
    workflow_state_machine_arn: str = ""
    batches_table: str = "switchyard-batches"

    # Which provider endpoint addresses are acceptable (SSRF guard): "public" refuses private,
    # loopback, link-local, metadata and reserved addresses; "loopback" also allows 127.0.0.0/8 and ::1.
    provider_endpoint_policy: Literal["public", "loopback", "any"] = "public"
    provider_offline_after_seconds: int = 60
    heartbeat_interval_seconds: int = 15
    upstream_timeout_seconds: float = 120.0
    upstream_connect_timeout_seconds: float = 5.0
    async_enabled: bool = True

    # Async jobs. Attempts count provider failures (5xx, timeouts, dropped connections, lost leases).
    job_max_attempts: int = 3
    job_upstream_timeout_seconds: float = 240.0
    # How long a job waits for any provider of its model to come online before it fails with no_provider.
    no_provider_grace_seconds: float = 120.0
    # Re-check delay while every provider slot is busy, and the cap of every re-queue delay (so a queue
    # with waiting jobs keeps the dispatcher ticking, which the stalled-worker check relies on).
    capacity_wait_seconds: int = 1
    max_requeue_delay_seconds: int = 20
    retry_backoff_base_seconds: int = 2
    # A QUEUED job the dispatcher has not looked at for this long lost its message: the sweeper re-sends it.
    lost_message_after_seconds: float = 90.0
    dispatcher_stalled_after_seconds: float = 60.0
    # A batch still being created after this long was left by a crashed request: the sweeper deletes it
    # and its jobs. Longer than any function that creates batches may run (StreamFunction: up to 900 s),
    # though a creator that outlives it only loses its own batch (its commit is conditional).
    batch_abandon_after_seconds: float = 960.0
    # Results larger than this live in S3 instead of the job item (DynamoDB items stop at 400 KB).
    inline_result_limit_bytes: int = 300_000
    # Assets larger than this are served by a short-lived presigned S3 redirect (Lambda answers stop at 6 MB).
    asset_inline_limit_bytes: int = 4_000_000

    # Workflows: a step's or gate's timeout when its spec sets none, and how long a step may wait for its
    # dependencies (gates upstream can take days) before it times out.
    workflow_step_timeout_seconds: int = 24 * 3600
    workflow_gate_timeout_seconds: int = 7 * 24 * 3600
    workflow_max_wait_seconds: int = 30 * 24 * 3600

    # Warm-path caches. A revoked key stops working within auth_cache_seconds; a provider that goes
    # offline stops being chosen within provider_cache_seconds.
    auth_cache_seconds: float = 10.0
    provider_cache_seconds: float = 2.0
    # How long after its last use a cached key or provider list is still reloaded before it expires,
    # with no request to ask for it (0: never). For a process that keeps running, like the local stack;
    # a frozen Lambda sandbox runs no timers. See ttl_cache.
    cache_keep_warm_seconds: float = 0.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
