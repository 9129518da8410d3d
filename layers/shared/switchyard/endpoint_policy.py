"""Refuse user-supplied URLs that would turn the gateway into a way into private networks (SSRF).

Provider endpoints and webhook URLs are user-supplied URLs that the gateway (the dispatcher, the webhook
delivery function) later call. Both go through the same policy. Under the
default "public" policy only globally routable addresses are allowed: private ranges, loopback,
link-local (which holds the cloud metadata service at 169.254.169.254), carrier-grade NAT, multicast,
reserved and unspecified addresses are refused, including IPv4 addresses mapped into IPv6.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from switchyard.errors import InvalidRequest

# Metadata endpoints that are not otherwise non-global everywhere (belt and braces).
_METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}


def _address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: str) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if policy == "any":
        return True
    if ip in _METADATA_ADDRESSES:
        return False
    if ip.is_loopback:
        return policy == "loopback"
    return ip.is_global and not ip.is_multicast


def resolve_host(
    host: str, port: int, field: str = "endpoint_url"
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise InvalidRequest(f"{field} host '{host}' does not resolve: {exc}", param=field) from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_endpoint_url(
    url: str, policy: str, *, field: str = "endpoint_url", allow_query: bool = False
) -> str:
    """Return the normalised URL (no trailing slash) or raise InvalidRequest saying why it is refused.

    `field` names the URL in error messages; `allow_query` lets a query string through (webhook
    receivers often carry a token there; a provider endpoint is a base URL that paths are appended to).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"{field} must be an absolute http(s) URL.", param=field)
    if parts.username or parts.password:
        raise InvalidRequest(f"{field} must not carry credentials.", param=field)
    if parts.fragment or (parts.query and not allow_query):
        what = "a fragment" if allow_query else "a query or fragment"
        raise InvalidRequest(f"{field} must not have {what}.", param=field)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # a port out of range or not a number
        raise InvalidRequest(f"{field} has an invalid port.", param=field) from exc
    for ip in resolve_host(parts.hostname, port, field):
        if not _address_allowed(ip, policy):
            raise InvalidRequest(
                f"{field} resolves to {ip}, a private, loopback, link-local or metadata address, "
                f"which this deployment does not allow (endpoint policy '{policy}').",
                param=field,
            )
    return url if parts.query else url.rstrip("/")
