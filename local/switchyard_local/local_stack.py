"""Bring the whole local stack up and down: moto, resources, in-process Lambda, event sources, account.

moto runs in a child process (`aws_process`); everything else, handlers included, runs in this one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchyard.ttl_cache import stop_keeping_warm, wait_for_refreshes

from switchyard_local.aws_process import EmbeddedAwsProcess
from switchyard_local.bootstrap import BootstrapCredentials, bootstrap_account
from switchyard_local.embedded_aws import LOCAL_REGION, point_process_at
from switchyard_local.event_sources import EventSources, start_event_sources
from switchyard_local.lambda_runtime import LocalFunctionRuntime
from switchyard_local.provision import LOCAL_CREDENTIALS, provision
from switchyard_local.stack import ProvisionedStack

log = logging.getLogger(__name__)

# Parameter values that differ locally: providers run on this machine, and there is no 30 s API Gateway
# limit in front of the local API, nor a Lambda timeout behind the front, so streams may run as long as a
# slow local model needs (a CPU model at 5 tokens/s takes 10 min for 3,000 tokens): up to the template's
# maximum stream deadline, still not for ever.
LOCAL_PARAMETER_DEFAULTS = {
    "ProviderEndpointPolicy": "loopback",
    "StreamUpstreamTimeoutSeconds": "120",
    "StreamDeadlineSeconds": "895",
}
# This process keeps running between requests (a Lambda sandbox freezes), so its key and provider caches
# can stay warm through the pauses of real traffic: a chat client's next message, 30 s after the last,
# must not wait for two DynamoDB lookups (they were the ~20 ms a streamed first token spent here).
LOCAL_CACHE_KEEP_WARM_SECONDS = 300


def local_parameter_overrides(template_parameters: Mapping[str, Any], overrides: Mapping[str, str]) -> dict:
    defaults = {
        name: value for name, value in LOCAL_PARAMETER_DEFAULTS.items() if name in template_parameters
    }
    return {**defaults, **overrides}


@dataclass
class RunningStack:
    aws: EmbeddedAwsProcess
    stack: ProvisionedStack
    runtime: LocalFunctionRuntime
    sources: EventSources
    credentials: BootstrapCredentials

    def stop(self) -> None:
        # Consumers first (they call moto), then moto itself.
        self.sources.stop(timeout=5)
        self.runtime.wait_for_background(timeout=5)
        stop_keeping_warm()
        wait_for_refreshes(timeout=5)
        self.aws.stop()


def start_local_stack(
    template_path: Path,
    parameter_overrides: Mapping[str, str],
    *,
    schedule_seconds: float | None = None,
    log_level: str = "WARNING",
    polled_elsewhere: frozenset[str] = frozenset(),
) -> RunningStack:
    aws = EmbeddedAwsProcess(log_level=log_level)
    endpoint_url = aws.start()
    try:
        point_process_at(endpoint_url, aws.port)
        stack = provision_locally(template_path, parameter_overrides, endpoint_url)
        os.environ.update(stack.environment)
        os.environ.setdefault("CACHE_KEEP_WARM_SECONDS", str(LOCAL_CACHE_KEEP_WARM_SECONDS))
        runtime = LocalFunctionRuntime(stack.functions.values())
        aws.serve_lambda(runtime)
        unknown = sorted(polled_elsewhere - set(stack.functions))
        if unknown:
            raise ValueError(f"--poll-elsewhere: the template has no function {', '.join(unknown)}")
        sources = start_event_sources(
            stack,
            runtime,
            sqs_client=sqs_client(endpoint_url),
            schedule_seconds=schedule_seconds,
            polled_elsewhere=polled_elsewhere,
        )
        try:
            credentials = bootstrap_account()
        except BaseException:
            sources.stop(timeout=5)
            raise
    except BaseException:
        aws.stop()
        raise
    return RunningStack(
        aws=aws,
        stack=stack,
        runtime=runtime,
        sources=sources,
        credentials=credentials,
    )


def provision_locally(
    template_path: Path, parameter_overrides: Mapping[str, str], endpoint_url: str
) -> ProvisionedStack:
    """The template's resources on the embedded AWS, with the local stack's parameter defaults."""
    from switchyard_local.template import load_template

    declared = load_template(template_path).get("Parameters") or {}
    return provision(
        template_path, local_parameter_overrides(declared, parameter_overrides), endpoint_url=endpoint_url
    )


def sqs_client(endpoint_url: str) -> Any:
    import boto3

    # The pollers' own client: a long poll holds a connection, so they must not share the handlers' pool.
    session = boto3.session.Session(region_name=LOCAL_REGION, **LOCAL_CREDENTIALS)
    return session.client("sqs", endpoint_url=endpoint_url)
