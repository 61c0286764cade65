"""URL rules shared by every stage: normal forms, fetchable forms and registrable domains.

- :func:`link_key` is the form two URLs are compared in ("is this the same target?"): scheme and host
  lower-cased, IDNs in punycode, default port dropped, fragment dropped, ``utm_*`` parameters dropped,
  a trailing slash ignored. Used to check each unique URL once and to match backlinks to targets.
- :func:`registrable_domain` follows the Public Suffix List (https://publicsuffix.org/), ICANN and
  private sections, from the ``publicsuffixlist`` package, which ships the list (no download at run time).
"""

from __future__ import annotations

import ipaddress
from functools import cache, lru_cache
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

import idna
from publicsuffixlist import PSLFILE, PublicSuffixList

FETCHABLE_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# Campaign-tracking parameters that do not change what page a link points to.
TRACKING_PARAM_PREFIX = "utm_"


@cache
def public_suffix_list() -> PublicSuffixList:
    """The Public Suffix List shipped with ``publicsuffixlist``, built on first use (about 0.1 s of CPU, so
    commands and pages that never need a registrable domain, such as IP-literal links, skip it).

    Built from the package's own list file with the punycode form of each internationalised rule added
    here, which gives the same rules as ``PublicSuffixList()`` (that encodes every rule, ASCII ones
    too, through the slow ``idna`` codec) in about 60% of the time.
    """
    with open(PSLFILE, encoding="utf-8") as source:
        lines = source.read().splitlines()
    extra = []
    for line in lines:
        if line.isascii():
            continue
        rule = line.lower().split(" ")[0].rstrip()
        if not rule or rule.startswith("//"):
            continue
        exception = rule.startswith("!")
        encoded = rule.lstrip("!").encode("idna").decode("ascii")
        extra.append("!" + encoded if exception else encoded)
    return PublicSuffixList(lines + extra, accept_encoded_idn=False)


def scheme_of(url: str) -> str:
    """The lower-case scheme of ``url`` (``""`` when it has none)."""
    head, sep, _ = url.partition(":")
    if not sep or not head or not head[0].isalpha():
        return ""
    if not all(c.isalnum() or c in "+-." for c in head):
        return ""
    return head.lower()


def strip_fragment(url: str) -> str:
    """``url`` without its ``#fragment`` (what a browser sends to the server)."""
    return url.split("#", 1)[0]


def host_to_ascii(host: str) -> str:
    """Lower-case ASCII (punycode) form of a host name; IP literals are returned unchanged.

    Raises ValueError when the name is not a valid IDN.
    """
    host = host.strip().rstrip(".").lower()
    if not host or host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"invalid international domain name {host!r}") from exc


def split_url(url: str) -> SplitResult:
    """``urlsplit`` that raises ValueError on URLs with a bad port or bracket syntax."""
    parts = urlsplit(url)
    _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    return parts


def link_key(url: str) -> str:
    """The comparison form of an http(s) URL; other URLs are returned with the fragment dropped.

    Raises ValueError when ``url`` cannot be parsed.
    """
    parts = split_url(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in FETCHABLE_SCHEMES:
        return strip_fragment(url.strip())
    host = host_to_ascii(parts.hostname or "")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = parts.path or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    query = ""
    if parts.query:
        pairs = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith(TRACKING_PARAM_PREFIX)
        ]
        query = urlencode(pairs, doseq=True)
    return urlunsplit((scheme, netloc, path, query, ""))


def hostname(url: str) -> str:
    """The lower-case ASCII host of ``url`` (``""`` when it has none or cannot be parsed)."""
    try:
        return host_to_ascii(urlsplit(url).hostname or "")
    except ValueError:
        return ""


@lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str:
    """The registrable domain of ``host`` by the Public Suffix List (``blog.example.co.uk`` ->
    ``example.co.uk``; ``me.github.io`` -> ``me.github.io`` because ``github.io`` is a private suffix).

    IP addresses are their own domain, in their canonical form (``2001:DB8:0::1`` -> ``2001:db8::1``, so
    two spellings of one address are one domain). A host that is itself a public suffix (or a single
    label such as ``localhost``) is returned as is. Unicode and punycode forms give the same (punycode)
    answer.
    """
    try:
        host = host_to_ascii(host)
    except ValueError:
        return host.lower()
    host = host.strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    return public_suffix_list().privatesuffix(host) or host


def url_registrable_domain(url: str) -> str:
    return registrable_domain(hostname(url))


def same_site(url_a: str, url_b: str) -> bool:
    """True when both URLs have the same registrable domain (a link between them is internal)."""
    host_a, host_b = hostname(url_a), hostname(url_b)
    return bool(host_a) and registrable_domain(host_a) == registrable_domain(host_b)
