"""The address policy (SSRF): which addresses and URLs are refused before any connection."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from bot.config import parse_networks
from bot.models import FetchError, FetchErrorKind
from bot.net.policy import AddressPolicy, BlockedAddressError, embedded_ipv4, parse_ip
from bot.net.resolver import PolicyResolver, StaticResolver

DEFAULT = AddressPolicy()

BLOCKED = [
    "127.0.0.1",  # loopback
    "127.255.255.254",
    "10.0.0.1",  # RFC 1918
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata (link-local)
    "100.64.0.1",  # CGNAT
    "100.100.100.200",  # Alibaba Cloud metadata, inside CGNAT
    "0.0.0.0",  # unspecified
    "0.1.2.3",
    "255.255.255.255",  # broadcast
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "192.0.0.192",  # IETF protocol assignments (Oracle Cloud metadata)
    "192.0.2.10",  # documentation
    "198.51.100.7",
    "203.0.113.9",
    "198.18.0.1",  # benchmarking
    "::1",  # IPv6 loopback
    "::",  # unspecified
    "fe80::1",  # link-local
    "fe80::1%eth0",
    "fc00::1",  # unique-local
    "fd00:ec2::254",  # AWS metadata over IPv6 (unique-local)
    "ff02::1",  # multicast
    "fec0::1",  # site-local (deprecated)
    "100::1",  # discard-only
    "2001:db8::1",  # documentation
    "2001:2::1",  # benchmarking (IETF protocol assignments)
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::7f00:1",  # IPv4-compatible (deprecated)
    "64:ff9b::7f00:1",  # NAT64 well-known prefix -> 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 -> 169.254.169.254
    "64:ff9b:1::a00:1",  # NAT64 local-use /96 -> 10.0.0.1
    "64:ff9b:1:abcd::1",  # NAT64 local-use, other layout: unreadable, refused
    "2002:7f00:1::",  # 6to4 -> 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 -> 169.254.169.254
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo: client 127.0.0.1 (obfuscated)
    "2001:0:7f00:1::1",  # Teredo: server 127.0.0.1
    "4000::1",  # outside 2000::/3: reserved
]

ALLOWED = [
    "93.184.215.14",
    "8.8.8.8",
    "1.1.1.1",
    "100.128.0.1",  # just above CGNAT
    "172.32.0.1",  # just above 172.16/12
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "64:ff9b::808:808",  # NAT64 -> 8.8.8.8
    "64:ff9b:1::808:808",  # NAT64 local-use /96 -> 8.8.8.8
    "2002:808:808::1",  # 6to4 -> 8.8.8.8
    "2001:0:808:808:8000:63bf:f7f7:f7f7",  # Teredo: server 8.8.8.8, client 8.8.8.8
]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not DEFAULT.is_allowed(address)
    assert DEFAULT.blocked_reason(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert DEFAULT.is_allowed(address), DEFAULT.blocked_reason(address)


def test_embedded_ipv4_forms_are_read() -> None:
    v6 = ipaddress.IPv6Address
    v4 = ipaddress.IPv4Address
    assert embedded_ipv4(v6("::ffff:127.0.0.1")) == (v4("127.0.0.1"),)
    assert embedded_ipv4(v6("64:ff9b::7f00:1")) == (v4("127.0.0.1"),)
    assert embedded_ipv4(v6("2002:7f00:1::")) == (v4("127.0.0.1"),)
    # Teredo: (server, client), the client address de-obfuscated (XOR with all ones).
    assert embedded_ipv4(v6("2001:0:4136:e378:8000:63bf:80ff:fffe")) == (
        v4("65.54.227.120"),
        v4("127.0.0.1"),
    )
    assert embedded_ipv4(v6("2606:4700::1")) is None


def test_reasons_name_the_range() -> None:
    assert DEFAULT.blocked_reason("169.254.169.254") == "link-local (cloud metadata)"
    assert DEFAULT.blocked_reason("10.1.2.3") == "private (RFC 1918)"
    assert DEFAULT.blocked_reason("100.64.0.1") == "carrier-grade NAT (RFC 6598)"
    assert "loopback" in (DEFAULT.blocked_reason("::ffff:127.0.0.1") or "")
    assert DEFAULT.blocked_reason("not an address") == "not an IP address"


def test_allow_networks_exempt_exactly_those_networks() -> None:
    policy = AddressPolicy(parse_networks("127.0.0.1/32, 10.0.0.0/8"))
    assert policy.is_allowed("127.0.0.1")
    assert not policy.is_allowed("127.0.0.2")
    assert policy.is_allowed("10.9.8.7")
    assert not policy.is_allowed("169.254.169.254")
    # IPv6 forms are judged by the embedded IPv4 address, exemptions included.
    assert policy.is_allowed("::ffff:127.0.0.1")
    assert policy.is_allowed("64:ff9b::7f00:1")
    assert not policy.is_allowed("::ffff:127.0.0.2")
    assert not policy.is_allowed("::1")  # an IPv4 network exempts no IPv6 loopback


def test_legacy_numeric_ipv4_hosts_are_understood() -> None:
    assert parse_ip("2130706433") == ipaddress.IPv4Address("127.0.0.1")
    assert parse_ip("0x7f.1") == ipaddress.IPv4Address("127.0.0.1")
    assert parse_ip("0177.0.0.1") == ipaddress.IPv4Address("127.0.0.1")
    assert parse_ip("[::1]") == ipaddress.IPv6Address("::1")
    assert parse_ip("example.com") is None
    assert parse_ip("1example.com") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]:8080/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
        "http://100.64.0.1/",
        "http://0.0.0.0:80/",
        "https://192.168.0.1/admin",
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0x7f.1/",
        "http://127.1/",
        "http://127.0.0.1./",  # a trailing dot
        "http://0177.0.0.1/",  # octal: the URL Standard (and so a browser) reads 127.0.0.1
        "http://127.0.0.0x1/",
        "http://%31%32%37.0.0.1/",  # percent-decoded before the IPv4 parse
    ],
)
def test_vet_url_refuses_blocked_literal_hosts(url: str) -> None:
    error = DEFAULT.vet_url(url)
    assert error is not None and error.kind is FetchErrorKind.BLOCKED_ADDRESS, error
    assert "LINKPACT_ALLOW_NETWORKS" in error.message


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("ftp://example.com/file", FetchErrorKind.UNSUPPORTED_SCHEME),
        ("file:///etc/passwd", FetchErrorKind.UNSUPPORTED_SCHEME),
        ("gopher://example.com/", FetchErrorKind.UNSUPPORTED_SCHEME),
        ("mailto:someone@example.com", FetchErrorKind.UNSUPPORTED_SCHEME),
        ("http://user:secret@example.com/", FetchErrorKind.INVALID_URL),
        ("http://user@example.com/", FetchErrorKind.INVALID_URL),
        ("http://@example.com/", FetchErrorKind.INVALID_URL),
        ("http://[::1/", FetchErrorKind.INVALID_URL),
        ("http://example.com:99999/", FetchErrorKind.INVALID_URL),
        ("http://[fe80::1%25eth0]/", FetchErrorKind.INVALID_URL),  # the URL Standard has no zone ids
        ("/relative/path", FetchErrorKind.INVALID_URL),
        ("http://", FetchErrorKind.INVALID_URL),
        ("http://exa mple.com/", FetchErrorKind.INVALID_URL),
    ],
)
def test_vet_url_refuses_other_schemes_userinfo_and_garbage(url: str, kind: FetchErrorKind) -> None:
    error = DEFAULT.vet_url(url)
    assert error is not None and error.kind is kind, error


@pytest.mark.parametrize(
    "url",
    ["https://example.com/", "HTTP://Example.COM:8080/a?b#c", "http://8.8.8.8/", "http://[2606:4700::1]/"],
)
def test_vet_url_accepts_public_http_urls(url: str) -> None:
    assert DEFAULT.vet_url(url) is None


@pytest.mark.parametrize(
    ("url", "requested"),
    [
        ("https://Bücher.example/café?q=é#f", "https://xn--bcher-kva.example/caf%C3%A9?q=%C3%A9#f"),
        ("HTTPS://EXAMPLE.com:443/a/%2e%2E/b", "https://example.com/b"),
        ("http:///three-slashes.example\\path", "http://three-slashes.example/path"),
        ("http://example.com/a b<c>", "http://example.com/a%20b%3Cc%3E"),
    ],
)
def test_the_vetted_url_is_what_a_browser_requests(url: str, requested: str) -> None:
    # WHATWG URL Standard: the client requests the serialisation (punycode host, no default port, dot
    # segments removed, unsafe characters percent-encoded), not the text as typed.
    vetted = DEFAULT.vetted(url)
    assert not isinstance(vetted, FetchError), vetted
    assert str(vetted) == requested
    # the path and query sent in the request line, byte for byte
    assert vetted.raw_path.decode("ascii") == requested[requested.index("/", len("https://")) :].split("#")[0]


def test_remembered_decisions_are_per_policy_and_stable() -> None:
    # Decisions are memoised (a check vets each link twice and its hosts hundreds of times); a policy
    # with other exempt networks must never see another policy's answers.
    strict, lenient = AddressPolicy(), AddressPolicy(parse_networks("127.0.0.0/8"))
    for _ in range(2):
        for url in ("http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b", "http://[::1]/"):
            refused = strict.vet_url(url)
            assert refused is not None and refused.kind is FetchErrorKind.BLOCKED_ADDRESS
        assert lenient.vet_url("http://127.0.0.1:8080/a") is None
        assert lenient.blocked_reason("127.0.0.1") is None
        assert strict.blocked_reason("127.0.0.1") == "loopback"
        assert str(lenient.vetted("http://127.0.0.1:8080/a#frag")) == "http://127.0.0.1:8080/a#frag"


def test_vet_url_leaves_host_names_to_the_resolver() -> None:
    # A name is judged on the address it resolves to, not here.
    assert DEFAULT.vet_url("http://localhost/") is None


async def test_policy_resolver_drops_refused_addresses_and_keeps_the_rest() -> None:
    base = StaticResolver(
        {
            "mixed.test": ["127.0.0.1", "93.184.215.14", "10.0.0.1"],
            "evil.test": ["127.0.0.2", "169.254.169.254"],
            "allowed.test": ["127.0.0.1"],
        }
    )
    resolver = PolicyResolver(AddressPolicy(parse_networks("127.0.0.1/32")), base)
    mixed = await resolver.resolve("mixed.test", 80, socket.AF_UNSPEC)
    assert [r["host"] for r in mixed] == ["127.0.0.1", "93.184.215.14"]
    with pytest.raises(BlockedAddressError) as caught:
        await resolver.resolve("evil.test", 80, socket.AF_UNSPEC)
    assert caught.value.addresses == ("127.0.0.2", "169.254.169.254")
    assert "evil.test" in str(caught.value) and "loopback" in str(caught.value)
    allowed = await resolver.resolve("allowed.test", 443, socket.AF_INET)
    assert allowed[0]["port"] == 443


async def test_static_resolver_fails_unknown_names_like_nxdomain() -> None:
    resolver = StaticResolver({"Partner.Test": ["127.0.0.1", "::1"]})
    with pytest.raises(socket.gaierror) as caught:
        await resolver.resolve("nope.test")
    assert caught.value.errno == socket.EAI_NONAME
    both = await resolver.resolve("partner.test.", 80, socket.AF_UNSPEC)
    assert {r["host"] for r in both} == {"127.0.0.1", "::1"}
    only_v6 = await resolver.resolve("PARTNER.test", 80, socket.AF_INET6)
    assert [r["host"] for r in only_v6] == ["::1"]
