"""The address policy: which IP addresses Linkpact may connect to (SSRF protection).

Linkpact fetches URLs typed by anyone in a Slack workspace and every link on the pages they point to,
so by default it never connects to an address that is not on the public internet: loopback, private
(RFC 1918, unique-local), link-local (including the cloud metadata service at 169.254.169.254), CGNAT,
multicast, reserved, unspecified, broadcast, documentation and benchmarking ranges, and IPv6 forms that
carry an IPv4 address inside them (IPv4-mapped, NAT64, 6to4, Teredo), which are judged by that IPv4
address. The ranges come from the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and
its updates). ``LINKPACT_ALLOW_NETWORKS`` exempts networks (tests allow ``127.0.0.0/8``).

The decision is made on the *resolved* address by :class:`bot.net.resolver.PolicyResolver` (so the
client connects to exactly the address that was vetted); :meth:`AddressPolicy.vet_url` checks what
the resolver never sees: the scheme, userinfo and IP-literal hosts.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

from bot.models import FetchError, FetchErrorKind
from bot.urls import resolve_url, scheme_of

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})
INVALID_BY_STANDARD = "not a valid URL (its host, port or syntax fails the WHATWG URL Standard's parser)"
# Decisions are pure functions of the URL or address and of the exempt networks (fixed per policy), so
# they are memoised: a check vets each link in the filter stage and again on its first hop, and the links
# of a page share a few hosts. Bounded so a long-running bot's memory stays flat (~1 KB an entry).
VETTED_CACHE_SIZE = 4096
ADDRESS_CACHE_SIZE = 1024

_v4 = ipaddress.IPv4Network
_v6 = ipaddress.IPv6Network

# IPv4 ranges never fetched by default, each with the label used in messages.
# Source: IANA IPv4 Special-Purpose Address Registry (RFC 6890, RFC 6598, RFC 5737, RFC 2544, RFC 1112).
BLOCKED_IPV4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_v4("0.0.0.0/8"), "unspecified ('this network')"),
    (_v4("10.0.0.0/8"), "private (RFC 1918)"),
    (_v4("100.64.0.0/10"), "carrier-grade NAT (RFC 6598)"),
    (_v4("127.0.0.0/8"), "loopback"),
    (_v4("169.254.0.0/16"), "link-local (cloud metadata)"),
    (_v4("172.16.0.0/12"), "private (RFC 1918)"),
    # IETF protocol assignments: DS-Lite, NAT64 discovery, and some clouds' metadata (192.0.0.192).
    (_v4("192.0.0.0/24"), "reserved (IETF protocol assignments)"),
    (_v4("192.0.2.0/24"), "documentation (TEST-NET-1)"),
    (_v4("192.88.99.0/24"), "reserved (6to4 relay anycast)"),
    (_v4("192.168.0.0/16"), "private (RFC 1918)"),
    (_v4("198.18.0.0/15"), "benchmarking (RFC 2544)"),
    (_v4("198.51.100.0/24"), "documentation (TEST-NET-2)"),
    (_v4("203.0.113.0/24"), "documentation (TEST-NET-3)"),
    (_v4("224.0.0.0/4"), "multicast"),
    (_v4("255.255.255.255/32"), "broadcast"),
    (_v4("240.0.0.0/4"), "reserved (future use)"),
)

# IPv6 forms that carry an IPv4 address; they are judged by that address.
IPV4_MAPPED = _v6("::ffff:0:0/96")  # RFC 4291 section 2.5.5.2
NAT64_WELL_KNOWN = _v6("64:ff9b::/96")  # RFC 6052
NAT64_LOCAL = _v6("64:ff9b:1::/48")  # RFC 8215: local-use prefix, any RFC 6052 prefix length inside it
SIXTOFOUR = _v6("2002::/16")  # RFC 3056
TEREDO = _v6("2001::/32")  # RFC 4380

# Global unicast is allocated only inside 2000::/3; everything outside it that is not one of the forms
# above is loopback, unspecified, unique-local, link-local, multicast or reserved.
IPV6_GLOBAL_UNICAST = _v6("2000::/3")
# Special-purpose ranges inside 2000::/3 that are not reachable on the public internet.
# Source: IANA IPv6 Special-Purpose Address Registry (RFC 6890, RFC 5180, RFC 3849, RFC 9637, RFC 7343).
BLOCKED_IPV6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_v6("2001::/23"), "reserved (IETF protocol assignments)"),
    (_v6("2001:db8::/32"), "documentation"),
    (_v6("3fff::/20"), "documentation"),
)
# Labels for the common ranges outside 2000::/3, for messages.
IPV6_LABELS: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_v6("::/128"), "unspecified"),
    (_v6("::1/128"), "loopback"),
    (_v6("fc00::/7"), "unique-local (private)"),
    (_v6("fe80::/10"), "link-local"),
    (_v6("fec0::/10"), "site-local (deprecated)"),
    (_v6("ff00::/8"), "multicast"),
)

# Hosts written only with digits, dots and hex markers are IPv4 in one of the legacy numeric forms
# (``2130706433``, ``0x7f.1``, ``0177.0.0.1``) that the system resolver maps onto an address.
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)


class BlockedAddressError(OSError):
    """Every address ``host`` resolved to is refused by the address policy.

    Raised by :class:`bot.net.resolver.PolicyResolver`; an ``OSError`` so aiohttp treats it like any
    other resolution failure (it wraps it in ``ClientConnectorDNSError`` and never connects).
    """

    def __init__(self, host: str, addresses: Iterable[str] = (), reason: str = "") -> None:
        self.host = host
        self.addresses = tuple(addresses)
        detail = reason or ", ".join(self.addresses) or "no address"
        super().__init__(f"{host} resolves only to addresses Linkpact does not fetch ({detail})")


def parse_ip(text: str | IPAddress) -> IPAddress | None:
    """An IP address from ``text`` (brackets, an IPv6 zone id and legacy IPv4 forms accepted), else None."""
    if isinstance(text, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return text
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...] | None:
    """The IPv4 address(es) an IPv6 address carries, or None when it carries none we can read.

    IPv4-mapped, NAT64 (64:ff9b::/96, and 64:ff9b:1::/48 when laid out as a /96), 6to4, and Teredo
    (both the server and the de-obfuscated client address).
    """
    if ip in IPV4_MAPPED:
        assert ip.ipv4_mapped is not None
        return (ip.ipv4_mapped,)
    if ip in NAT64_WELL_KNOWN:
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip in NAT64_LOCAL:
        # Only the /96 layout (bits 48..95 zero) is unambiguous; other prefix lengths fall through
        # to the block list, which refuses the whole local-use prefix.
        if (int(ip) >> 32) & ((1 << 48) - 1) == 0:
            return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
        return None
    if ip in SIXTOFOUR:
        assert ip.sixtofour is not None
        return (ip.sixtofour,)
    if ip in TEREDO:
        assert ip.teredo is not None
        return ip.teredo
    return None


class AddressPolicy:
    """Decides whether an address may be connected to and whether a URL may be requested at all.

    ``allow_networks``: networks exempt from the policy (``LINKPACT_ALLOW_NETWORKS``); an IPv6 form
    that embeds an IPv4 address is also exempt when the embedded address is.
    """

    def __init__(self, allow_networks: Iterable[IPNetwork] = ()) -> None:
        self.allow_networks: tuple[IPNetwork, ...] = tuple(allow_networks)
        self._blocked_reason = functools.lru_cache(maxsize=ADDRESS_CACHE_SIZE)(self._decide_address)
        self._vetted = functools.lru_cache(maxsize=VETTED_CACHE_SIZE)(self._vet)
        self._host_error = functools.lru_cache(maxsize=ADDRESS_CACHE_SIZE)(self._vet_host)

    def blocked_reason(self, ip: str | IPAddress) -> str | None:
        """Why ``ip`` is refused (``"loopback"``, ``"private (RFC 1918)"``, ...), or None when allowed.

        Text that is not an IP address is refused ("not an IP address").
        """
        return self._blocked_reason(ip)

    def _decide_address(self, ip: str | IPAddress) -> str | None:
        address = parse_ip(ip)
        if address is None:
            return "not an IP address"
        if self._exempt(address):
            return None
        if isinstance(address, ipaddress.IPv4Address):
            for network, label in BLOCKED_IPV4:
                if address in network:
                    return label
            return None
        inner = embedded_ipv4(address)
        if inner is not None:
            for v4 in inner:
                reason = self.blocked_reason(v4)
                if reason is not None:
                    return f"{reason}, embedded in {address}"
            return None
        for network6, label in (*IPV6_LABELS, *BLOCKED_IPV6):
            if address in network6:
                return label
        if address in NAT64_LOCAL:
            return "NAT64 local-use prefix with an unreadable embedded address"
        if address not in IPV6_GLOBAL_UNICAST:
            return "reserved"
        return None

    def is_allowed(self, ip: str | IPAddress) -> bool:
        """True when Linkpact may connect to ``ip`` (a string or an ``ipaddress`` object)."""
        return self.blocked_reason(ip) is None

    def vet_url(self, url: str) -> FetchError | None:
        """Check what can be checked before any DNS lookup; None when the URL may be requested.

        Returns a :class:`FetchError` of kind ``INVALID_URL`` (unparsable, not absolute, no host, a
        bad port, user credentials in the URL), ``UNSUPPORTED_SCHEME`` (anything but http and
        https) or ``BLOCKED_ADDRESS`` (an IP-literal host the policy refuses: aiohttp connects to IP
        literals without asking the resolver, so they are judged here). Host names are judged after
        resolution by :class:`bot.net.resolver.PolicyResolver`.
        """
        vetted = self.vetted(url)
        return vetted if isinstance(vetted, FetchError) else None

    def vetted(self, url: str) -> httpx.URL | FetchError:
        """:meth:`vet_url`, returning the parsed URL (what the client then requests) when it passes: the
        WHATWG URL Standard's serialisation of ``url`` (as a browser requests it: punycode host,
        dotted-decimal IPv4, percent-encoded path, no default port), fragment kept."""
        return self._vetted(url)

    def _vet(self, url: str) -> httpx.URL | FetchError:
        text = url.strip()
        scheme = scheme_of(text)
        if not scheme:
            return FetchError(FetchErrorKind.INVALID_URL, "not an absolute URL (it has no scheme)")
        if scheme not in ALLOWED_SCHEMES:
            return FetchError(
                FetchErrorKind.UNSUPPORTED_SCHEME, f"{scheme}: URLs are not fetched (only http and https)"
            )
        try:
            # The URL Standard's parse decides the host, port and path we request (the ones a browser
            # would: punycode host, dotted-decimal IPv4, percent-encoded path), and httpx is handed
            # that serialisation, which it keeps as it is.
            href = resolve_url(text)
        except ValueError:
            return FetchError(FetchErrorKind.INVALID_URL, INVALID_BY_STANDARD)
        try:
            parsed = httpx.URL(href)
            # A second parser must agree there is no userinfo: a disagreement between URL parsers
            # about where the host starts is a classic way around address checks.
            raw_netloc = urlsplit(text).netloc
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            return FetchError(FetchErrorKind.INVALID_URL, f"not a valid URL ({exc})")
        if parsed.userinfo or "@" in raw_netloc:
            return FetchError(
                FetchErrorKind.INVALID_URL, "URLs with a user name or password in them are not fetched"
            )
        if parsed.port is not None and not 0 < parsed.port < 65536:
            return FetchError(FetchErrorKind.INVALID_URL, f"port {parsed.port} is out of range")
        host = parsed.host
        if not host:
            return FetchError(FetchErrorKind.INVALID_URL, "the URL has no host")
        error = self._host_error(host)
        return parsed if error is None else error

    def _vet_host(self, host: str) -> FetchError | None:
        """What is wrong with ``host`` (an IP literal the policy refuses, or a broken IPv6 literal), or
        None; host names are judged after resolution. Memoised per host in :attr:`_host_error`."""
        address = parse_ip(host)
        if address is None and ":" in host:
            # aiohttp treats any host with a colon as an IPv6 literal and skips the resolver.
            return FetchError(FetchErrorKind.INVALID_URL, f"{host!r} is not a valid IPv6 address")
        if address is not None:
            reason = self.blocked_reason(address)
            if reason is not None:
                return FetchError(FetchErrorKind.BLOCKED_ADDRESS, blocked_message(str(address), reason))
        return None

    def _exempt(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.allow_networks)


def blocked_message(address: str, reason: str) -> str:
    """The user-facing sentence for a refused address."""
    return (
        f"{address} is not a public address ({reason}); Linkpact does not connect to it "
        "(LINKPACT_ALLOW_NETWORKS can exempt a network)"
    )
