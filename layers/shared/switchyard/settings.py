"""Deployment settings, read once from the environment (SAM sets them from template.yaml).

The stack's resources have no defaults: a function deployed without one of them fails on its first use
of settings, naming the variable, instead of talking to a table of a made-up name or sending to an empty
queue URL and swallowing the error somewhere far away. Every other field has the template's default.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import StringConstraints, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from switchyard.caches import cached

# A table or bucket name, queue URL or state machine ARN: set, and not to an empty string.
ResourceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

# Standard Webhooks' schedule: the first attempt at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
# 20 h and 24 h after each failure (about 3 days in all).
STANDARD_RETRY_SCHEDULE = "0,5,300,1800,7200,18000,36000,50400,72000,86400"


class SettingsError(RuntimeError):
    """The environment does not configure this function; the message names each variable at fault."""


class Settings(BaseSettings):
    # Each field reads the environment variable of its name in capitals (ACCOUNTS_TABLE, ...).
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    # The stack's resources (template.yaml's Globals.Function.Environment).
    accounts_table: ResourceName
    api_keys_table: ResourceName
    providers_table: ResourceName
    media_bucket: ResourceName
    jobs_table: ResourceName
    idempotency_table: ResourceName
    jobs_queue_url: ResourceName
    runs_table: ResourceName
    workflow_state_machine_arn: ResourceName
    batches_table: ResourceName
    limits_table: ResourceName
    webhooks_table: ResourceName
    webhook_queue_url: ResourceName

    # Which addresses user-supplied URLs (provider endpoints) may lead to, checked when registered and on
    # every connection (endpoint_policy.py): "public" refuses private, loopback, link-local, metadata,
    # reserved and IPv4-embedding IPv6 addresses; "loopback" also allows 127.0.0.0/8 and ::1; "any" allows all.
    provider_endpoint_policy: Literal["public", "loopback", "any"] = "public"
    # The gateway's own host names (its custom domains; "*.example.com" for a whole zone), comma-separated:
    # never a provider endpoint. API Gateway and Function URL hosts are refused whatever this says.
    gateway_hosts: str = ""
    # The most a provider answer may hold, read as it arrives (larger: the call fails, upstream_error). A
    # stream relayed by the streaming front too: cut with a last error event once it outgrows this.
    provider_response_max_bytes: int = 64 * 1024 * 1024
    provider_offline_after_seconds: int = 60
    heartbeat_interval_seconds: int = 15
    upstream_timeout_seconds: float = 120.0
    upstream_connect_timeout_seconds: float = 5.0
    # The longest a stream relayed by the streaming front may last, from the request to the provider to
    # its last byte (upstream_timeout_seconds is the longest silence in it); the template keeps it below
    # the StreamFunction's Lambda timeout, and the front also ends a stream before its invocation does.
    stream_deadline_seconds: float = 290.0
    async_enabled: bool = True

    # Async jobs. Attempts count provider failures (5xx, timeouts, dropped connections, lost leases).
    job_max_attempts: int = 3
    # The deadline of one provider call for an async job, and how long a claim holds the job. The template
    # derives both from JobUpstreamTimeoutSeconds, with the dispatcher's Lambda timeout between them, so
    # the lease outlives any invocation that could still be running the call (tests/infra checks it).
    job_upstream_timeout_seconds: float = 240.0
    job_lease_seconds: float = 330.0
    # What the dispatcher keeps of its invocation's time after a provider call, to store the result: a
    # call is cut short to leave it, and a record that finds less left is put back in the queue.
    job_store_reserve_seconds: float = 15.0
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
    # What a failed call left undone (a job's end not every job-end subscriber heard, a workflow decision's
    # token answer or follow-ups) is done again by the sweeper once it is this old (the process that
    # decided had its chance), every sweep; a job's end until JOB_END_REDRIVE_MAX_AGE_SECONDS, when the
    # sweeper gives up on it and logs so.
    redrive_after_seconds: float = 60.0
    job_end_redrive_max_age_seconds: float = 24 * 3600.0
    # The most items of each kind one sweep re-drives (the rest wait for the next sweep).
    sweep_redrive_limit: int = 500
    # The operators' alarm (the sweeper's WorkerStalled metric): jobs queued and no dispatcher tick for
    # this long. Longer than the seed's 60 s UI warning, so one slow batch does not page anyone.
    worker_stalled_after_seconds: float = 120.0
    # A batch still being created after this long was left by a crashed request: the sweeper deletes it
    # and its jobs. Longer than any function that creates batches may run (StreamFunction: up to 900 s),
    # though a creator that outlives it only loses its own batch (its commit is conditional).
    batch_abandon_after_seconds: float = 960.0
    # The one size rule of a job's item (job_results.py): a body, result or media metadata that would make
    # the item, as DynamoDB counts it, larger than this lives in S3 instead. Far under DynamoDB's 400 KB
    # item limit because of what an item costs: each of a job's ~4 writes is billed per KB of the whole
    # item (S3 bills per request), and a list of 100 jobs inlines what their items hold (Lambda answers
    # stop at 6 MB).
    job_item_limit_bytes: int = 32_768
    # One job's read (GET /v1/jobs/<id>) inlines a result kept in S3 up to this size; a larger one is
    # given by its result_url only. Lists never read S3.
    read_inline_result_limit_bytes: int = 1_000_000
    # Assets larger than this are served by a short-lived presigned S3 redirect (Lambda answers stop at 6 MB).
    asset_inline_limit_bytes: int = 4_000_000

    # How long jobs, batches, runs and providers are kept (retention.py); the template's RetentionDays, also
    # the media bucket's lifecycle rule.
    retention_days: int = 30

    # Workflows: a step's or gate's timeout when its spec sets none, and how long a step may wait for its
    # dependencies (gates upstream can take days) before it times out.
    workflow_step_timeout_seconds: int = 24 * 3600
    workflow_gate_timeout_seconds: int = 7 * 24 * 3600
    workflow_max_wait_seconds: int = 30 * 24 * 3600

    # Per-account limits (services/rate_limits.py); `switchyard-admin set-limits` overrides one account's.
    account_requests_per_minute: int = 600
    account_max_active_jobs: int = 1000
    # Jobs of one account a dispatcher may run at once (0: as many as its providers take); keep it below
    # DispatcherMaxConcurrency so that one account cannot hold every dispatcher.
    account_max_running_jobs: int = 0

    # Webhook delivery. The schedule is the delay before each attempt (the first is normally 0); the local
    # stack's tests compress it (template parameter WebhookRetrySchedule).
    webhook_retry_schedule_seconds: str = STANDARD_RETRY_SCHEDULE
    webhook_timeout_seconds: float = 15.0
    # After a rotation the previous secret keeps signing (alongside the new one) this long.
    webhook_secret_overlap_seconds: int = 24 * 3600
    # Waits up to this long ride on an SQS message delay (SQS's own limit is 900 s); longer ones are
    # parked in the wake index and the sweeper sends their message when they come close.
    webhook_max_queue_delay_seconds: int = 900
    webhook_wake_ahead_seconds: int = 300
    # A pending delivery still not attempted this long after its due time lost its message: the sweeper
    # sends another (a duplicate is harmless: attempts are recorded conditionally).
    webhook_lost_message_seconds: int = 900
    webhook_delivery_retention_days: int = 30
    webhook_max_endpoints_per_account: int = 20
    webhook_endpoint_cache_seconds: float = 2.0

    # Warm-path caches. A revoked key stops working within auth_cache_seconds; a provider that goes
    # offline stops being chosen within provider_cache_seconds.
    auth_cache_seconds: float = 10.0
    provider_cache_seconds: float = 2.0
    # How long after its last use a cached key or provider list is still reloaded before it expires,
    # with no request to ask for it (0: never). For a process that keeps running, like the local stack;
    # a frozen Lambda sandbox runs no timers. See ttl_cache.
    cache_keep_warm_seconds: float = 0.0

    # Set by the Lambda runtime, absent elsewhere: the streaming front builds its handler's context from them.
    aws_lambda_function_name: str | None = None
    aws_lambda_function_memory_size: int | None = None

    @property
    def gateway_host_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.gateway_hosts.split(",") if name.strip())

    @model_validator(mode="after")
    def _lease_outlives_the_call(self) -> Settings:
        if self.job_lease_seconds <= self.job_upstream_timeout_seconds:
            raise ValueError(
                f"job_lease_seconds ({self.job_lease_seconds:g}) must be longer than "
                f"job_upstream_timeout_seconds ({self.job_upstream_timeout_seconds:g}): a claim must outlive its call"
            )
        return self

    @field_validator("webhook_retry_schedule_seconds")
    @classmethod
    def _schedule_is_a_list_of_delays(cls, value: str) -> str:
        try:
            delays = [int(part) for part in value.split(",")]
        except ValueError:
            delays = []
        if not delays or any(delay < 0 for delay in delays):
            raise ValueError("a comma-separated list of delays in seconds (>= 0), e.g. 0,5,300")
        return value

    @property
    def webhook_retry_schedule(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.webhook_retry_schedule_seconds.split(","))

    @classmethod
    def required_variables(cls) -> list[str]:
        """The environment variables every function that reads settings must be given."""
        return [environment_variable(name) for name, field in cls.model_fields.items() if field.is_required()]


def environment_variable(field_name: str) -> str:
    return field_name.upper()


@cached
def get_settings() -> Settings:
    """The settings, validated on first use; a SettingsError names every variable that is missing or wrong."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for problem in error.errors():
        variable = environment_variable(str(problem["loc"][0])) if problem["loc"] else "(settings)"
        if problem["type"] == "missing":
            problems.append(f"{variable} is not set")
        elif problem["type"] == "string_too_short":
            problems.append(f"{variable} is empty")
        else:
            problems.append(f"{variable}: {problem['msg']}")
    return "Invalid environment: " + "; ".join(problems) + " (template.yaml's function Environment sets them)"
