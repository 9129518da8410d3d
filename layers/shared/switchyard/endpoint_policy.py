"""Which user-supplied URLs the gateway may call (SSRF), checked when a URL is registered and again, by
`adapters/pinned_http.py`, on every connection it opens to one.

A URL is accepted when:
- it is an absolute http(s) URL with a host, and nothing a parser could read two ways: no credentials,
  fragment, whitespace or control characters, no percent-encoded or ambiguous numeric host
  (`http://2130706433/`, `0x7f.1`: an IPv4 address to a browser, a name to a resolver), a port from 1 to
  65535, and a host name that is valid IDNA (stored as its ASCII form); no query either, unless the
  caller allows one (a webhook URL may carry a receiver's token there; a provider endpoint is a base URL
  that paths are appended to);
- its host is not the gateway itself: none of the deployment's own host names (`GATEWAY_HOSTS`) and no
  API Gateway or Lambda Function URL host (`*.execute-api.*`, `*.lambda-url.*`), which could only lead
  back into some gateway's own Lambda functions;
- under the "public" policy, its host is not a special-use name (`localhost`, `*.internal`, `*.local`, ...)
  and every address it resolves to is globally routable unicast. Refused: private, shared (CGNAT, where
  100.100.100.200 is a metadata service), loopback, link-local (169.254.169.254, the metadata service),
  benchmarking, documentation, reserved, multicast and broadcast IPv4; every IPv6 address outside global
  unicast 2000::/3 (loopback, unique-local fd00:ec2::254, link-local, multicast, and the forms that carry
  an IPv4 address: mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, translated ::ffff:0:a.b.c.d, NAT64
  64:ff9b::/96 and 64:ff9b:1::/48) and, inside it, 6to4 (2002::/16), Teredo and the rest of 2001::/23,
  documentation prefixes and ISATAP interface ids. Refused forms that embed an IPv4 address are refused
  whatever that address is, and the answer names it;
- "loopback" (the local stack) also allows 127.0.0.0/8, ::1 and localhost; "any" allows every address.

Provider endpoints (the dispatcher, the streaming front) and webhook URLs (the webhook delivery function)
go through the same policy. Refusals are `InvalidRequest` (a 400 naming the URL's field, `endpoint_url`
or `url`) when a URL is registered, and `EndpointRefused` when a connection is about to be opened.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import idna

from switchyard.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PolicyName = Literal["public", "loopback", "any"]
# (host, port) -> the addresses a connection would try, in order; raises OSError when it cannot resolve.
Resolver = Callable[[str, int], list[IPAddress]]

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# IANA's IPv4 special-purpose registry, less the few globally reachable anycast entries.
_IPV4_REFUSED: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "a 'this network' address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("169.254.0.0/16"), "a link-local address (the cloud metadata service lives there)"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.0.0.0/24"), "an IETF protocol assignment"),
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("192.88.99.0/24"), "a 6to4 relay address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
)
_IPV4_LOOPBACK = _V4("127.0.0.0/8")
_GLOBAL_UNICAST = _V6("2000::/3")
# Inside 2000::/3, what is not an ordinary global address.
_IPV6_REFUSED: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("2001::/32"), "a Teredo address"),
    (_V6("2001::/23"), "an IETF protocol assignment"),
    (_V6("2001:db8::/32"), "a documentation address"),
    (_V6("2002::/16"), "a 6to4 address"),
    (_V6("3fff::/20"), "a documentation address"),
)
# Outside 2000::/3, the forms that carry an IPv4 address in their last 32 bits, and what else is there.
_IPV6_EMBEDDING: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::ffff:0:0/96"), "an IPv4-mapped address"),
    (_V6("::ffff:0:0:0/96"), "an IPv4-translated address"),
    (_V6("64:ff9b::/96"), "a NAT64 address"),
    (_V6("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_V6("::/96"), "an IPv4-compatible address"),
)
_IPV6_OTHER: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("fc00::/7"), "a unique-local address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a site-local address"),
    (_V6("ff00::/8"), "a multicast address"),
    (_V6("100::/64"), "a discard-only address"),
)
_ISATAP_IDS = (b"\x00\x00\x5e\xfe", b"\x02\x00\x5e\xfe")

# Names that never lead to the public internet (RFC 6761, RFC 8375 and common private suffixes).
_SPECIAL_NAMES = (
    "localhost",
    "local",
    "internal",
    "intranet",
    "lan",
    "home.arpa",
    "localdomain",
    "corp",
    "invalid",
    "test",
    "example",
    "onion",
)
_LOCALHOST_NAMES = ("localhost",)
# API Gateway and Lambda Function URL hosts (of any account or region): calling one could only start
# another gateway's Lambda function, possibly this one's.
_AWS_INVOKE_HOSTS = re.compile(r"(^|\.)(execute-api|lambda-url)\.")
# A host whose last label is a number is an IPv4 address to the URL standard (WHATWG), whatever a resolver
# makes of it; only the canonical dotted-quad spelling is accepted.
_NUMERIC_LABEL = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")
_CANONICAL_IPV4 = re.compile(
    r"^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$"
)
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\\]")


# What a user-supplied URL's schema documents (OpenAPI): an http(s) URL without whitespace or control
# characters. Documented only: the checks above word each refusal themselves.
URL_SCHEMA_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x20\x7f]+$"


class EndpointRefused(Exception):
    """A connection the policy does not allow (the message says why)."""


@dataclass(frozen=True)
class EndpointUrl:
    """A checked URL's parts: `host` is the ASCII (IDNA) form, lower case, without brackets."""

    scheme: str
    host: str
    port: int
    path: str
    query: str = ""  # only where the caller allows one (webhook URLs)

    @property
    def url(self) -> str:
        """The normalised URL that is stored and called (no default port; no trailing slash, unless a
        query follows the path: a receiver may route on either)."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == default else f":{self.port}"
        if self.query:
            return f"{self.scheme}://{host}{port}{self.path}?{self.query}"
        return f"{self.scheme}://{host}{port}{self.path.rstrip('/')}"


@dataclass(frozen=True)
class EndpointPolicy:
    name: PolicyName = "public"
    gateway_hosts: tuple[str, ...] = ()  # exact names, or "*.suffix"

    @classmethod
    def of(cls, name: PolicyName, gateway_hosts: Iterable[str] = ()) -> EndpointPolicy:
        hosts = tuple(h.strip().lower().rstrip(".") for h in gateway_hosts if h.strip())
        return cls(name, hosts)

    # -- hosts
    def host_refusal(self, host: str) -> str | None:
        """Why a host name may not be called at all (None: it may, depending on its addresses)."""
        host = host.lower().rstrip(".")
        for pattern in self.gateway_hosts:
            if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
                return f"'{host}' is this gateway's own host; a URL it calls must not point back at it"
        if _AWS_INVOKE_HOSTS.search(host):
            return f"'{host}' is an API Gateway or Lambda Function URL host, which leads back into a gateway"
        if self.name == "any" or is_ip_literal(host):
            return None
        allowed = _LOCALHOST_NAMES if self.name == "loopback" else ()
        for suffix in _SPECIAL_NAMES:
            if (host == suffix or host.endswith("." + suffix)) and suffix not in allowed:
                return f"'{host}' is a special-use name that does not lead to the public internet"
        return None

    # -- addresses
    def address_refusal(self, ip: IPAddress) -> str | None:
        """Why an address may not be connected to (None: it may)."""
        if self.name == "any":
            return None
        if isinstance(ip, ipaddress.IPv4Address):
            if ip in _IPV4_LOOPBACK and self.name == "loopback":
                return None
            for v4_network, what in _IPV4_REFUSED:
                if ip in v4_network:
                    return f"{ip} is {what}"
            return None
        if ip == ipaddress.IPv6Address("::1"):
            return None if self.name == "loopback" else f"{ip} is a loopback address"
        if ip not in _GLOBAL_UNICAST:
            for network, what in _IPV6_EMBEDDING:
                if ip in network:
                    return _embedded(ip, what, ipaddress.IPv4Address(ip.packed[-4:]), self)
            for network, what in _IPV6_OTHER:
                if ip in network:
                    return f"{ip} is {what}"
            return f"{ip} is not a global unicast address"
        for network, what in _IPV6_REFUSED:
            if ip in network:
                embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
                return _embedded(ip, what, embedded, self) if embedded else f"{ip} is {what}"
        if ip.packed[8:12] in _ISATAP_IDS:
            return _embedded(ip, "an ISATAP address", ipaddress.IPv4Address(ip.packed[-4:]), self)
        return None

    def refusal_of(self, addresses: list[IPAddress]) -> str | None:
        """Why a connection to a host with these addresses is refused: any one refused address is enough,
        since which of them a connection would reach is not ours to choose."""
        if not addresses:
            return "it resolves to no address"
        for ip in addresses:
            reason = self.address_refusal(ip)
            if reason:
                return reason
        return None


def _embedded(ip: ipaddress.IPv6Address, what: str, v4: ipaddress.IPv4Address, policy: EndpointPolicy) -> str:
    inner = policy.address_refusal(v4) if policy.name != "any" else None
    detail = f"; that address is itself refused ({inner.split(' is ', 1)[1]})" if inner else ""
    return f"{ip} is {what}, carrying the IPv4 address {v4}{detail}"


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------ parsing


def _refuse(reason: str, field: str = "endpoint_url") -> InvalidRequest:
    return InvalidRequest(f"{field} {reason}.", param=field)


class _Unparsable(ValueError):
    """What is wrong with a URL, worded to follow its field's name."""


def parse_endpoint_url(url: str, *, field: str = "endpoint_url", allow_query: bool = False) -> EndpointUrl:
    """The URL's parts if it is one the gateway can call unambiguously; InvalidRequest (naming `field`)
    saying why not. `allow_query` lets a query string through (never a fragment)."""
    try:
        return _parse(url, allow_query)
    except _Unparsable as problem:
        raise _refuse(str(problem), field) from None


def _parse(url: str, allow_query: bool) -> EndpointUrl:
    if _FORBIDDEN_CHARS.search(url):
        raise _Unparsable("must not contain whitespace, control characters or backslashes")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _Unparsable("must be an absolute http(s) URL")
    if "@" in parts.netloc:
        raise _Unparsable("must not carry credentials")
    if parts.fragment or "#" in url:
        raise _Unparsable("must not have a fragment" if allow_query else "must not have a query or fragment")
    if not allow_query and (parts.query or "?" in url):
        raise _Unparsable("must not have a query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise _Unparsable("has a port that is not a number from 1 to 65535") from None
    if port == 0:
        raise _Unparsable("has a port that is not a number from 1 to 65535")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise _Unparsable("must name a host")
    host = _ipv6_literal(raw_host) if parts.netloc.startswith("[") else _host_name(raw_host)
    default_port = 443 if parts.scheme == "https" else 80
    return EndpointUrl(parts.scheme, host, port or default_port, parts.path, parts.query)


def _ipv6_literal(text: str) -> str:
    if "%" in text:
        raise _Unparsable("must not name an IPv6 zone")
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        raise _Unparsable(f"has an invalid IPv6 address [{text}]") from None


def _host_name(text: str) -> str:
    if "%" in text:
        raise _Unparsable("must not percent-encode its host")
    try:
        # UTS 46 maps what a browser would (full-width dots, upper case) before IDNA 2008's rules apply.
        host = idna.encode(text.rstrip("."), uts46=True).decode("ascii") if not text.isascii() else text
    except (idna.IDNAError, UnicodeError, ValueError) as error:
        raise _Unparsable(f"has a host name that is not valid IDNA ({error})") from None
    host = host.lower().rstrip(".")
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        if not _CANONICAL_IPV4.match(host):
            raise _Unparsable(f"has an ambiguous numeric host '{text}' (write an IPv4 address as a.b.c.d)")
        return host
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise _Unparsable(f"has an invalid host name '{text}'")
    for label in labels:
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError, ValueError) as error:
                raise _Unparsable(f"has a host name that is not valid IDNA ({error})") from None
    return host


# ------------------------------------------------------------------ resolving


def resolve_with_system_dns(host: str, port: int) -> list[IPAddress]:
    """The addresses of `host` in the order a connection would try them (an IP literal: itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


@dataclass(frozen=True)
class EndpointGuard:
    """The policy, applied with a resolver: at registration (`check_url`) and before every connection
    (`addresses_for`, the addresses a connection may use, each of them checked)."""

    policy: EndpointPolicy
    resolver: Resolver | None = None  # None: the system's DNS, looked up when called (tests replace it)

    def _resolve(self, host: str, port: int) -> list[IPAddress]:
        if is_ip_literal(host):
            return [ipaddress.ip_address(host)]
        resolver = self.resolver or resolve_with_system_dns
        return resolver(host, port)

    def check_url(self, url: str, *, field: str = "endpoint_url", allow_query: bool = False) -> str:
        """The normalised URL to store, or InvalidRequest naming the problem (and `field`)."""
        endpoint = parse_endpoint_url(url, field=field, allow_query=allow_query)
        reason = self.policy.host_refusal(endpoint.host)
        if reason:
            raise _refuse(f"is refused: {reason}", field)
        try:
            addresses = self._resolve(endpoint.host, endpoint.port)
        except OSError as error:
            raise _refuse(f"host '{endpoint.host}' does not resolve ({error})", field) from None
        reason = self.policy.refusal_of(addresses)
        if reason:
            raise _refuse(
                f"is refused: {reason}, which this deployment does not allow "
                f"(provider endpoint policy '{self.policy.name}')",
                field,
            )
        return endpoint.url

    def addresses_for(self, host: str, port: int) -> list[IPAddress]:
        """The addresses a connection to host:port may use now; EndpointRefused when there is none."""
        reason = self.policy.host_refusal(host)
        if reason:
            raise EndpointRefused(f"refused to connect: {reason}")
        try:
            addresses = self._resolve(host, port)
        except OSError as error:
            raise EndpointRefused(f"'{host}' does not resolve ({error})") from None
        reason = self.policy.refusal_of(addresses)
        if reason:
            raise EndpointRefused(
                f"refused to connect to '{host}': {reason} (provider endpoint policy '{self.policy.name}')"
            )
        return addresses


def check_endpoint_url(
    url: str,
    policy: PolicyName,
    gateway_hosts: Iterable[str] = (),
    *,
    field: str = "endpoint_url",
    allow_query: bool = False,
) -> str:
    """`EndpointGuard.check_url` with the system's DNS."""
    guard = EndpointGuard(EndpointPolicy.of(policy, gateway_hosts))
    return guard.check_url(url, field=field, allow_query=allow_query)
