"""Registering with the gateway: one heartbeat every interval, carrying the freshly discovered models.

A heartbeat is the only way the gateway learns about a provider, and a provider that stops sending them goes
offline after `offline_after_seconds`. So the loop never dies on errors: it logs them and tries again, sooner
than the full interval while the gateway or the upstream is unreachable (typical right after start-up).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from switchyard_agent.discovery import ModelDescriptor, ModelDiscovery

log = logging.getLogger(__name__)

HEARTBEAT_PATH = "/api/inference/agent/heartbeat/"
_FIRST_RETRY_SECONDS = 0.5


@dataclass(frozen=True)
class ProviderIdentity:
    """What the gateway needs to reach this agent."""

    provider_id: str
    endpoint_url: str
    secret: str
    max_concurrency: int


class HeartbeatError(Exception):
    """The gateway did not accept a heartbeat (unreachable, or answered an error)."""


def build_heartbeat_payload(identity: ProviderIdentity, models: Sequence[ModelDescriptor]) -> dict[str, Any]:
    return {
        "provider_id": identity.provider_id,
        "endpoint_url": identity.endpoint_url,
        "secret": identity.secret,
        "max_concurrency": identity.max_concurrency,
        "models": [model.as_heartbeat_entry() for model in models],
    }


def _error_message(response: httpx.Response) -> str:
    """The gateway's own words, from either error shape of the API (OpenAI envelope or `detail`)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if body.get("detail"):
            return str(body["detail"])
    return str(body)[:300]


class HeartbeatSender:
    def __init__(
        self, client: httpx.AsyncClient, gateway_url: str, api_key: str, timeout_seconds: float = 10.0
    ):
        self._client = client
        self.url = gateway_url.rstrip("/") + HEARTBEAT_PATH
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout_seconds

    async def send(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST one heartbeat; the gateway's answer, or HeartbeatError."""
        try:
            response = await self._client.post(
                self.url, json=payload, headers=self._headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise HeartbeatError(
                f"gateway unreachable at {self.url}: {str(exc) or type(exc).__name__}"
            ) from exc
        if response.status_code != 200:
            hint = " (check --api-key)" if response.status_code in (401, 403) else ""
            if response.status_code == 400:
                hint = " (is the advertised endpoint reachable by the gateway? see --public-url)"
            raise HeartbeatError(
                f"gateway refused the heartbeat ({response.status_code}): {_error_message(response)}{hint}"
            )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        return answer if isinstance(answer, dict) else {}


def describe_registration(
    identity: ProviderIdentity, gateway_url: str, models: Sequence[ModelDescriptor]
) -> str:
    listed = ", ".join(f"{m.id} ({m.service_type})" for m in models) or "no models"
    return (
        f"switchyard-agent: registered provider '{identity.provider_id}' with {gateway_url} "
        f"as {identity.endpoint_url}: {len(models)} model(s): {listed}"
    )


def _next_interval(configured: float, answer: dict[str, Any]) -> float:
    # Beating slower than half the gateway's offline window would make the provider flap offline.
    offline_after = answer.get("offline_after_seconds")
    if isinstance(offline_after, int | float) and offline_after > 0 and configured > offline_after / 2:
        return offline_after / 2
    return configured


async def heartbeat_forever(
    sender: HeartbeatSender,
    discovery: ModelDiscovery,
    identity: ProviderIdentity,
    interval_seconds: float,
    announce: Callable[[str], None] = lambda line: print(line, flush=True),
    capacity: Callable[[], int] | None = None,
) -> None:
    """Beat until cancelled. The first beat goes out immediately.

    `capacity`, asked after every discovery, gives the `max_concurrency` to declare when it can change
    (the model server reports it); without it the identity's own figure is declared.
    """
    registered = False
    retry_delay = _FIRST_RETRY_SECONDS
    while True:
        delay = interval_seconds
        models = await discovery.refresh()
        if capacity is not None:
            identity = replace(identity, max_concurrency=capacity())
        if models is None:
            log.warning("not registering yet: the upstream has not listed its models")
            registered = False
        else:
            try:
                answer = await sender.send(build_heartbeat_payload(identity, models))
            except HeartbeatError as exc:
                log.error("%s", exc)
                if registered:
                    log.error(
                        "provider '%s' will go offline if heartbeats keep failing", identity.provider_id
                    )
                registered = False
            else:
                if not registered:
                    announce(describe_registration(identity, sender.url.removesuffix(HEARTBEAT_PATH), models))
                    registered = True
                retry_delay = _FIRST_RETRY_SECONDS
                delay = _next_interval(interval_seconds, answer)
        if not registered:
            # Retry quickly at first, backing off to the normal interval.
            delay = min(retry_delay, interval_seconds)
            retry_delay = min(retry_delay * 2, interval_seconds)
        await asyncio.sleep(delay)
