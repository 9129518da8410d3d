"""Hostile provider endpoint URLs and the resolver answers behind them, each with what the policy does with
it (a fake resolver: nothing here touches DNS), plus DNS rebinding at connect time."""

from __future__ import annotations

import ipaddress

import pytest
from switchyard.endpoint_policy import EndpointGuard, EndpointPolicy, EndpointRefused
from switchyard.errors import InvalidRequest

PUBLIC = "93.184.216.34"
GATEWAY_HOSTS = ("api.gateway.example.com", "*.eu.gateway.example.com")


class FakeResolver:
    """host -> answers; a list of lists is one answer per call (the last one repeats)."""

    def __init__(self, answers: dict[str, list] | None = None):
        self.answers = answers or {}
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list:
        self.calls.append(host)
        if host not in self.answers:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        answer = self.answers[host]
        if answer and isinstance(answer[0], list):
            answer = answer[min(len(self.calls_of(host)), len(answer)) - 1]
        return [ipaddress.ip_address(a) for a in answer]

    def calls_of(self, host: str) -> list[str]:
        return [call for call in self.calls if call == host]


def guard(policy: str = "public", answers: dict | None = None) -> EndpointGuard:
    return EndpointGuard(EndpointPolicy.of(policy, GATEWAY_HOSTS), FakeResolver(answers))


OK = "ok"
# (url, policy, resolver answers, expected: "ok" (normalised URL in `normalised`) or a piece of the refusal)
HOSTILE = [
    # cloud metadata and its IPv6 disguises
    ("http://169.254.169.254/latest/meta-data", "public", {}, "link-local"),
    ("http://[fd00:ec2::254]/latest", "public", {}, "unique-local"),
    ("http://100.100.100.200/latest", "public", {}, "carrier-grade NAT"),
    ("http://192.0.0.192/opc", "public", {}, "IETF protocol assignment"),
    (
        "http://[::ffff:169.254.169.254]",
        "public",
        {},
        "IPv4-mapped address, carrying the IPv4 address 169.254.169.254",
    ),
    ("http://[::ffff:a9fe:a9fe]", "public", {}, "IPv4-mapped"),
    (
        "http://[::169.254.169.254]",
        "public",
        {},
        "IPv4-compatible address, carrying the IPv4 address 169.254.169.254",
    ),
    (
        "http://[::ffff:0:a9fe:a9fe]",
        "public",
        {},
        "IPv4-translated address, carrying the IPv4 address 169.254.169.254",
    ),
    ("http://[64:ff9b::a00:1]", "public", {}, "NAT64 address, carrying the IPv4 address 10.0.0.1"),
    ("http://[64:ff9b::a9fe:a9fe]", "public", {}, "itself refused (a link-local"),
    ("http://[64:ff9b:1::a00:1]", "public", {}, "local-use NAT64"),
    ("http://[2002:a9fe:a9fe::1]", "public", {}, "6to4 address, carrying the IPv4 address 169.254.169.254"),
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "public", {}, "Teredo address"),
    ("http://[2001:2::1]", "public", {}, "IETF protocol assignment"),
    (
        "http://[2600:1f18::5efe:a9fe:a9fe]",
        "public",
        {},
        "ISATAP address, carrying the IPv4 address 169.254.169.254",
    ),
    ("http://[::ffff:8.8.8.8]", "public", {}, "IPv4-mapped"),  # the form itself, whatever it carries
    # private, loopback and other special-purpose addresses
    ("http://127.0.0.1:9100", "public", {}, "loopback"),
    ("http://[::1]:9100", "public", {}, "loopback"),
    ("http://[::]", "public", {}, "IPv4-compatible"),
    ("http://0.0.0.0:8080", "public", {}, "'this network'"),
    ("http://10.0.0.5", "public", {}, "private"),
    ("http://172.16.9.9", "public", {}, "private"),
    ("http://192.168.1.1", "loopback", {}, "private"),
    ("http://198.18.0.1", "public", {}, "benchmarking"),
    ("http://203.0.113.7", "public", {}, "documentation"),
    ("http://224.0.0.1", "public", {}, "multicast"),
    ("http://255.255.255.255", "public", {}, "reserved"),
    ("http://[fe80::1]", "public", {}, "link-local"),
    ("http://[ff02::1]", "public", {}, "multicast"),
    ("http://[2001:db8::1]", "public", {}, "documentation"),
    ("http://[fe80::1%25eth0]", "public", {}, "zone"),
    # numbers a browser reads as an IPv4 address and a resolver may not
    ("http://2130706433/", "public", {}, "ambiguous numeric host"),
    ("http://0x7f.1/", "public", {}, "ambiguous numeric host"),
    ("http://017700000001/", "public", {}, "ambiguous numeric host"),
    ("http://127.1/", "public", {}, "ambiguous numeric host"),
    ("http://0177.0.0.1/", "public", {}, "ambiguous numeric host"),
    ("http://１２７.０.０.１/", "public", {}, "loopback"),  # full-width digits map to 127.0.0.1
    ("http://127。0。0。1/", "public", {}, "loopback"),  # ideographic full stops are dots
    ("http://%31%32%37.0.0.1/", "public", {}, "percent-encode"),
    # names that lead nowhere public, and resolver answers that do
    ("http://localhost:9100", "public", {}, "special-use name"),
    ("http://metadata.google.internal/", "public", {}, "special-use name"),
    ("http://printer.local", "public", {}, "special-use name"),
    (
        "http://rebind.example.net",
        "public",
        {"rebind.example.net": [PUBLIC, "10.0.0.1"]},
        "10.0.0.1 is a private",
    ),
    ("http://v6.example.net", "public", {"v6.example.net": ["::ffff:7f00:1"]}, "IPv4-mapped"),
    ("http://nat64.example.net", "public", {"nat64.example.net": ["64:ff9b::7f00:1"]}, "NAT64"),
    ("http://nx.example.net", "public", {}, "does not resolve"),
    ("http://empty.example.net", "public", {"empty.example.net": []}, "resolves to no address"),
    # the gateway itself
    (
        "https://abc123.execute-api.us-east-1.amazonaws.com/dev",
        "public",
        {},
        "API Gateway or Lambda Function URL",
    ),
    ("https://xyz.lambda-url.eu-west-1.on.aws/", "public", {}, "API Gateway or Lambda Function URL"),
    ("https://abc.execute-api.us-east-1.amazonaws.com", "any", {}, "API Gateway or Lambda Function URL"),
    ("https://API.Gateway.Example.com./v1", "public", {}, "this gateway's own host"),
    ("https://fr.eu.gateway.example.com", "any", {}, "this gateway's own host"),
    # URLs a parser could read two ways, or not at all
    ("http://provider.example.net:65536", "public", {}, "port"),
    ("http://provider.example.net:0", "public", {}, "port"),
    ("http://provider.example.net:80a", "public", {}, "port"),
    ("http://provider.exam\tple.net/", "public", {}, "whitespace, control characters"),
    ("http://provider.example.net/v1 x", "public", {}, "whitespace, control characters"),
    ("http://provider.example.net/\r\nX-Injected: 1", "public", {}, "whitespace, control characters"),
    ("http://provider.example.net/\x85", "public", {}, "whitespace, control characters"),
    ("http://user:pass@8.8.8.8", "public", {}, "credentials"),
    ("http://8.8.8.8#@127.0.0.1", "public", {}, "query or fragment"),
    ("http://8.8.8.8?@127.0.0.1", "public", {}, "query or fragment"),
    ("http://8.8.8.8\\@127.0.0.1", "public", {}, "backslashes"),
    ("ftp://8.8.8.8/", "any", {}, "absolute http(s) URL"),
    ("//8.8.8.8/", "any", {}, "absolute http(s) URL"),
    ("http:///v1", "any", {}, "absolute http(s) URL"),
    ("http://xn--zz.example.net", "public", {}, "not valid IDNA"),
    ("http://a..b.example.net", "public", {}, "invalid host name"),
    ("http://" + "a" * 64 + ".example.net", "public", {}, "invalid host name"),
    ("http://\u200b.example.net", "public", {}, "not valid IDNA"),
    # accepted
    ("https://gpu.example.org:8443/", "public", {"gpu.example.org": [PUBLIC]}, OK),
    ("HTTP://GPU.Example.ORG:80/v1/", "public", {"gpu.example.org": [PUBLIC]}, OK),
    ("http://bücher.example.org", "public", {"xn--bcher-kva.example.org": [PUBLIC, "2600:1f18::1"]}, OK),
    ("http://[2600:1f18::1]:9000", "public", {}, OK),
    ("http://127.0.0.1:9100", "loopback", {}, OK),
    ("http://localhost:9100", "loopback", {"localhost": ["127.0.0.1", "::1"]}, OK),
    ("http://169.254.169.254", "any", {}, OK),
]
NORMALISED = {
    "https://gpu.example.org:8443/": "https://gpu.example.org:8443",
    "HTTP://GPU.Example.ORG:80/v1/": "http://gpu.example.org/v1",
    "http://bücher.example.org": "http://xn--bcher-kva.example.org",
    "http://[2600:1f18::1]:9000": "http://[2600:1f18::1]:9000",
}


def test_the_table_is_as_hostile_as_promised():
    assert len(HOSTILE) >= 40
    assert len({url for url, *_ in HOSTILE}) >= 40


@pytest.mark.parametrize(("url", "policy", "answers", "expected"), HOSTILE)
def test_hostile_endpoint_urls(url, policy, answers, expected):
    checker = guard(policy, answers)
    if expected == OK:
        stored = checker.check_url(url)
        assert stored == NORMALISED.get(url, url.rstrip("/"))
        # What is stored parses to the same URL again: nothing invalid is ever kept.
        assert checker.check_url(stored) == stored
        return
    with pytest.raises(InvalidRequest) as refused:
        checker.check_url(url)
    assert refused.value.param == "endpoint_url"
    assert expected in refused.value.message


def test_rebinding_first_answer_public_then_private_is_refused_at_connect_time():
    # Given a name whose first answer is public (the heartbeat) and whose next one is the metadata service
    checker = guard("public", {"rebind.example.net": [[PUBLIC], ["169.254.169.254"]]})
    assert checker.check_url("http://rebind.example.net:9000") == "http://rebind.example.net:9000"
    # When a connection is about to open, the name is resolved again and that answer is the one checked
    with pytest.raises(EndpointRefused) as refused:
        checker.addresses_for("rebind.example.net", 9000)
    assert "169.254.169.254 is a link-local address" in str(refused.value)


def test_a_connection_gets_the_checked_addresses_in_order():
    checker = guard("public", {"gpu.example.org": [PUBLIC, "2600:1f18::1"]})
    assert [str(a) for a in checker.addresses_for("gpu.example.org", 443)] == [PUBLIC, "2600:1f18::1"]


def test_a_gateway_host_is_refused_at_connect_time_too():
    with pytest.raises(EndpointRefused, match="own host"):
        guard("any").addresses_for("api.gateway.example.com", 443)
