"""Which route group (a metric dimension: a handful of values, never a raw path) a request belongs to."""

from __future__ import annotations

from switchyard.catalog import endpoint_for
from switchyard.metrics import RouteGroup

# First match wins; paths are as the routes see them (the stage prefix already stripped).
_PREFIXES: tuple[tuple[str, RouteGroup], ...] = (
    ("/v1/jobs", RouteGroup.JOBS),
    ("/v1/generation/", RouteGroup.JOBS),  # the background path's read of a job
    ("/v1/slow/", RouteGroup.ASYNC_SUBMIT),  # the background path's submissions
    ("/api/inference/queue/", RouteGroup.JOBS),
    ("/api/inference/queue", RouteGroup.JOBS),
    ("/api/inference/assets/", RouteGroup.JOBS),
    ("/v1/batches", RouteGroup.BATCHES),
    ("/v1/workflows/", RouteGroup.WORKFLOWS),
    ("/api/inference/agent/heartbeat", RouteGroup.HEARTBEATS),
    ("/v1/webhooks", RouteGroup.WEBHOOKS),
    ("/v1/models", RouteGroup.MODELS),
    ("/dashboard", RouteGroup.DASHBOARD),
    ("/api/account/", RouteGroup.DASHBOARD),
    ("/api/inference/providers", RouteGroup.DASHBOARD),
)


def route_group(path: str) -> RouteGroup:
    """The group of a path. An inference path is sync until its route says it was queued
    (`metrics.note_route_group(RouteGroup.ASYNC_SUBMIT)`), since only the body tells."""
    if endpoint_for(path) is not None:
        return RouteGroup.SYNC_INFERENCE
    for prefix, group in _PREFIXES:
        if path.startswith(prefix):
            return group
    return RouteGroup.OTHER
