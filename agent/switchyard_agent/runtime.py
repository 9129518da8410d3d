"""The running agent: the relay server, the heartbeat loop, and the HTTP clients they share, started and
stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

import httpx
from switchyard.front.upstream_client import UpstreamPool

from switchyard_agent.config import DEFAULT_MAX_CONCURRENCY, AgentConfig, advertised_url, default_provider_id
from switchyard_agent.discovery import ModelDiscovery
from switchyard_agent.heartbeat import HeartbeatSender, ProviderIdentity, heartbeat_forever
from switchyard_agent.proxy import ConcurrencyLimit, ProxySettings, create_proxy_app
from switchyard_agent.serving import (
    EmbeddedServer,
    bind_socket,
    install_stop_signals,
    make_server,
    url_host,
    wait_started,
)

log = logging.getLogger(__name__)


class Agent:
    """`async with Agent(config) as agent:` serves and beats until the block ends; `run()` until a signal."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.listen_url = ""
        self.identity: ProviderIdentity | None = None
        self.discovery: ModelDiscovery | None = None
        self._server: EmbeddedServer | None = None
        self._serving: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._clients: list[httpx.AsyncClient] = []
        self._relay_pool: UpstreamPool | None = None
        # Set once the gateway has accepted a heartbeat (after the "registered provider" line is printed).
        self.registered = asyncio.Event()
        self._slots: ConcurrencyLimit | None = None

    async def start(self) -> None:
        config = self.config
        sock = bind_socket(config.listen_host, config.listen_port)
        host, port = sock.getsockname()[:2]
        self.listen_url = f"http://{url_host(host)}:{port}"
        self.identity = ProviderIdentity(
            provider_id=config.provider_id or default_provider_id(host, port),
            endpoint_url=advertised_url(config, host, port),
            secret=config.secret,
            max_concurrency=config.max_concurrency or DEFAULT_MAX_CONCURRENCY,
        )
        # The relay's client (the gateway's lean one, for latency): generation can take minutes and streams
        # may pause long between tokens, so the read timeout is the longest silence; only connecting is quick.
        # No connection cap: the relay's ConcurrencyLimit bounds requests (and follows the server's reported
        # slots). It never reads the environment's HTTP(S)_PROXY: the model server is local. No endpoint
        # guard: the gateway's SSRF policy is for URLs its users supply, and this one is the operator's own
        # model server (usually on loopback, which the policy would refuse).
        self._relay_pool = UpstreamPool(
            connect_timeout=min(10.0, config.upstream_timeout),
            read_timeout=config.upstream_timeout,
            guard=None,
        )
        # Discovery (a listing before every heartbeat) is not latency-critical: httpx, like the heartbeats.
        discovery_client = httpx.AsyncClient(
            timeout=httpx.Timeout(config.upstream_timeout, connect=10.0), trust_env=False
        )
        gateway_client = httpx.AsyncClient(timeout=10.0)
        self._clients = [discovery_client, gateway_client]
        self.discovery = ModelDiscovery(
            discovery_client,
            config.upstream_url,
            upstream_api_key=config.upstream_api_key,
            overrides=config.model_types,
            default_service_type=config.default_service_type,
        )
        app = create_proxy_app(
            ProxySettings(
                config.upstream_url, config.secret, self.identity.max_concurrency, config.upstream_api_key
            ),
            self._relay_pool,
        )
        self._slots = app.state.proxy.slots
        self._server = make_server(app, log_level=config.log_level, access_log=config.log_level == "debug")
        self._serving = asyncio.create_task(self._server.serve(sockets=[sock]))
        try:
            await wait_started(self._server, self._serving)
        except BaseException:
            await self._close_clients()
            raise
        print(
            f"switchyard-agent listening on {self.listen_url}, advertised as {self.identity.endpoint_url}, "
            f"relaying to {config.upstream_url}",
            flush=True,
        )
        sender = HeartbeatSender(gateway_client, config.gateway_url, config.api_key)
        self._heartbeat = asyncio.create_task(
            heartbeat_forever(
                sender,
                self.discovery,
                self.identity,
                config.heartbeat_interval,
                announce=self._announce_registration,
                capacity=self._capacity,
            )
        )

    def _announce_registration(self, line: str) -> None:
        print(line, flush=True)
        self.registered.set()

    def _capacity(self) -> int:
        """`--max-concurrency` if given, else what the model server reports, else the default; the relay's
        limit follows it."""
        capacity = self.config.max_concurrency or self.discovery.slots or DEFAULT_MAX_CONCURRENCY
        if capacity != self._slots.limit:
            log.info("relaying at most %d request(s) at once (the model server's slots)", capacity)
            self._slots.resize(capacity)
        return capacity

    def request_stop(self) -> None:
        """Stop heartbeating now (so the gateway stops routing here) and let in-flight requests finish."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._server is not None:
            self._server.request_stop()

    async def wait_stopped(self) -> None:
        try:
            if self._serving is not None:
                await self._serving
        finally:
            if self._heartbeat is not None:
                self._heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._heartbeat
            await self._close_clients()

    async def _close_clients(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients = []
        if self._relay_pool is not None:
            await self._relay_pool.aclose()
            self._relay_pool = None

    async def run(self) -> None:
        await self.start()
        install_stop_signals(self._on_signal)
        await self.wait_stopped()

    def _on_signal(self) -> None:
        log.info("stopping: waiting for in-flight requests (signal again to stop at once)")
        self.request_stop()

    async def __aenter__(self) -> Agent:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.request_stop()
        await self.wait_stopped()
