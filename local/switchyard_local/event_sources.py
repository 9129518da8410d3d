"""Start the event sources a template declares on its functions: SQS pollers and schedule timers."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from switchyard_local.lambda_runtime import LocalFunctionRuntime
from switchyard_local.scheduler import ScheduleTimer, timer_for_event
from switchyard_local.sqs_poller import SqsPoller
from switchyard_local.stack import FunctionSpec, ProvisionedStack

log = logging.getLogger(__name__)

# AWS scales SQS pollers up to ScalingConfig.MaximumConcurrency; locally a couple of threads per source
# keep one slow job from holding up the next without flooding moto, which answers in one Python process.
DEFAULT_SQS_CONCURRENCY = 2
# Each poller holds a connection to moto; a handler's batch already runs its records concurrently.
MAX_SQS_CONCURRENCY = 4


@dataclass
class EventSources:
    pollers: list[SqsPoller] = field(default_factory=list)
    timers: list[ScheduleTimer] = field(default_factory=list)

    def stop(self, timeout: float = 10) -> None:
        for source in [*self.pollers, *self.timers]:
            source.stop(timeout)


def start_event_sources(
    stack: ProvisionedStack,
    runtime: LocalFunctionRuntime,
    *,
    sqs_client: Any,
    schedule_seconds: float | None = None,
    polled_elsewhere: frozenset[str] = frozenset(),
) -> EventSources:
    """`polled_elsewhere`: functions (logical ids) whose queues `switchyard-local poll` serves instead."""
    if schedule_seconds is None and os.environ.get("SWITCHYARD_LOCAL_SCHEDULE_SECONDS"):
        schedule_seconds = float(os.environ["SWITCHYARD_LOCAL_SCHEDULE_SECONDS"])
    sources = EventSources()
    for function in stack.functions.values():
        if function.logical_id in polled_elsewhere:
            continue
        sources.pollers.extend(sqs_pollers(stack.region, runtime, function, sqs_client))
        for event in function.events_of_type("Schedule", "ScheduleV2"):
            timer = timer_for_event(
                name=f"{function.logical_id}-{event.name}",
                event_type=event.event_type,
                properties=event.properties,
                invoke=_invoker(runtime, function),
                region=stack.region,
                account_id=stack.account_id,
                interval_override=schedule_seconds,
            )
            if timer is not None:
                sources.timers.append(timer)
    for source in [*sources.pollers, *sources.timers]:
        source.start()
    return sources


def sqs_pollers(
    region: str,
    runtime: LocalFunctionRuntime,
    function: FunctionSpec,
    sqs_client: Any,
    invoke: Callable[[dict], Any] | None = None,
) -> list[SqsPoller]:
    """The (not yet started) pollers of a function's SQS event sources; `invoke` replaces the plain
    call of its handler (a poll worker reports each batch around it)."""
    pollers = []
    for event in function.events_of_type("SQS"):
        poller = _poller(region, runtime, function, event, sqs_client, invoke)
        if poller is not None:
            pollers.append(poller)
    return pollers


def _poller(
    region: str,
    runtime: LocalFunctionRuntime,
    function: FunctionSpec,
    event: Any,
    sqs_client: Any,
    invoke: Callable[[dict], Any] | None,
) -> SqsPoller | None:
    properties = event.properties
    if str(properties.get("Enabled", True)).lower() == "false":
        return None
    if event.queue_url is None:
        log.warning(
            "%s.%s: queue %s is not provisioned locally",
            function.logical_id,
            event.name,
            properties.get("Queue"),
        )
        return None
    scaling = properties.get("ScalingConfig") or {}
    concurrency = int(
        os.environ.get("SWITCHYARD_LOCAL_SQS_CONCURRENCY")
        or scaling.get("MaximumConcurrency")
        or DEFAULT_SQS_CONCURRENCY
    )
    return SqsPoller(
        sqs_client=sqs_client,
        queue_url=event.queue_url,
        queue_arn=str(properties["Queue"]),
        invoke=invoke or _invoker(runtime, function),
        batch_size=int(properties.get("BatchSize", 10)),
        report_batch_item_failures="ReportBatchItemFailures"
        in (properties.get("FunctionResponseTypes") or []),
        region=region,
        concurrency=max(1, min(concurrency, MAX_SQS_CONCURRENCY)),
        name=f"sqs-{function.logical_id}-{event.name}",
        fair=True,  # AWS standard queues are fair queues for messages with a MessageGroupId
    )


def _invoker(runtime: LocalFunctionRuntime, function: FunctionSpec):
    def invoke(event: dict) -> Any:
        return runtime.invoke(function, event)

    return invoke
