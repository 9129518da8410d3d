"""The agent's settings, from the command line with environment variables as fallbacks."""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

from switchyard_agent.capabilities import SERVICE_TYPES
from switchyard_agent.serving import url_host

MIN_SECRET_LENGTH = 16  # the gateway refuses shorter secrets
DEFAULT_MAX_CONCURRENCY = 4
_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}  # noqa: S104 - recognised in the --host option, not bound here


@dataclass(frozen=True)
class AgentConfig:
    gateway_url: str
    api_key: str
    upstream_url: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 9100
    public_url: str | None = None
    provider_id: str | None = None
    # None: what the model server reports (llama-server's slots), else DEFAULT_MAX_CONCURRENCY.
    max_concurrency: int | None = None
    heartbeat_interval: float = 15.0
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    upstream_api_key: str | None = None
    model_types: dict[str, str] = field(default_factory=dict)
    default_service_type: str = "llm"
    upstream_timeout: float = 900.0
    log_level: str = "info"


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, `:port` or `port`; the host defaults to loopback, never to all interfaces."""
    match = re.fullmatch(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:]*)):(?P<port>\d+)|(?P<bare>\d+)", value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    host = match["v6"] or match["host"] or "127.0.0.1"
    port = int(match["port"] or match["bare"])
    if port > 65535:
        raise argparse.ArgumentTypeError(f"port out of range in {value!r}")
    return host, port


def _model_type(value: str) -> tuple[str, str]:
    model, sep, service_type = value.rpartition("=")
    if not sep or not model or service_type not in SERVICE_TYPES:
        raise argparse.ArgumentTypeError(
            f"expected MODEL=SERVICE_TYPE with a type among {', '.join(SERVICE_TYPES)}"
        )
    return model, service_type


def normalize_upstream(url: str) -> str:
    # People paste the OpenAI base URL ("http://host:8000/v1"); we add /v1/... ourselves.
    return url.rstrip("/").removesuffix("/v1").rstrip("/")


def default_provider_id(listen_host: str, listen_port: int) -> str:
    """Stable across restarts on one host and listen address: a restart replaces its own registration."""
    raw = f"{socket.gethostname()}-{listen_host}-{listen_port}"
    return re.sub(r"[^A-Za-z0-9._:-]+", "-", raw).strip("-")[:128] or f"agent-{listen_port}"


def advertised_url(config: AgentConfig, bound_host: str, bound_port: int) -> str:
    if config.public_url:
        return config.public_url.rstrip("/")
    return f"http://{url_host(bound_host)}:{bound_port}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchyard-agent",
        description="Serve a local OpenAI-compatible model server through a Switchyard gateway.",
    )
    env = os.environ.get
    parser.add_argument(
        "--gateway", default=env("SWITCHYARD_GATEWAY_URL"), help="gateway base URL [SWITCHYARD_GATEWAY_URL]"
    )
    parser.add_argument(
        "--api-key", default=env("SWITCHYARD_API_KEY"), help="your account API key [SWITCHYARD_API_KEY]"
    )
    parser.add_argument(
        "--upstream",
        default=env("SWITCHYARD_UPSTREAM_URL"),
        help="model server base URL [SWITCHYARD_UPSTREAM_URL]",
    )
    parser.add_argument(
        "--listen", type=parse_listen, default=("127.0.0.1", 9100), help="HOST:PORT to serve on (port 0: any)"
    )
    parser.add_argument("--public-url", help="URL the gateway should call (default: http://<listen address>)")
    parser.add_argument(
        "--provider-id", help="provider name (default: derived from hostname and listen address)"
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        help="requests relayed at once; the rest wait (default: the model server's own figure where it "
        f"reports one, llama-server's slots; else {DEFAULT_MAX_CONCURRENCY})",
    )
    parser.add_argument("--heartbeat-interval", type=float, default=15.0, help="seconds between heartbeats")
    parser.add_argument(
        "--secret",
        default=env("SWITCHYARD_AGENT_SECRET"),
        help="shared secret (default: random) [SWITCHYARD_AGENT_SECRET]",
    )
    parser.add_argument(
        "--upstream-api-key",
        default=env("SWITCHYARD_UPSTREAM_API_KEY"),
        help="bearer key for the model server",
    )
    parser.add_argument(
        "--model-type",
        type=_model_type,
        action="append",
        default=[],
        metavar="MODEL=SERVICE_TYPE",
        help="declare a model's service type (MODEL may be a glob pattern); repeatable",
    )
    parser.add_argument("--default-service-type", choices=SERVICE_TYPES, default="llm")
    parser.add_argument(
        "--upstream-timeout", type=float, default=900.0, help="seconds to wait on the model server"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> AgentConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, value in (
        ("--gateway", args.gateway),
        ("--api-key", args.api_key),
        ("--upstream", args.upstream),
    ):
        if not value:
            parser.error(f"{flag} is required (or its environment variable)")
    if args.secret is not None and len(args.secret) < MIN_SECRET_LENGTH:
        parser.error(f"--secret must be at least {MIN_SECRET_LENGTH} characters")
    if args.max_concurrency is not None and args.max_concurrency < 1:
        parser.error("--max-concurrency must be at least 1")
    if args.heartbeat_interval <= 0:
        parser.error("--heartbeat-interval must be positive")
    if args.provider_id is not None and not re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", args.provider_id):
        parser.error("--provider-id may only use letters, digits and . _ : - (at most 128)")
    host, port = args.listen
    if host in _WILDCARD_HOSTS and not args.public_url:
        parser.error(f"--public-url is required when listening on {host or 'all interfaces'}")
    optional = {"secret": args.secret} if args.secret else {}
    return AgentConfig(
        gateway_url=args.gateway.rstrip("/"),
        api_key=args.api_key,
        upstream_url=normalize_upstream(args.upstream),
        listen_host=host,
        listen_port=port,
        public_url=args.public_url,
        provider_id=args.provider_id,
        max_concurrency=args.max_concurrency,
        heartbeat_interval=args.heartbeat_interval,
        upstream_api_key=args.upstream_api_key or None,
        model_types=dict(args.model_type),
        default_service_type=args.default_service_type,
        upstream_timeout=args.upstream_timeout,
        log_level=args.log_level,
        **optional,
    )
