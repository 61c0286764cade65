"""URL rules shared by every stage: parsing, comparison keys, fetchable forms and registrable domains.

- Parsing and resolving follow the WHATWG URL Standard (https://url.spec.whatwg.org/), through the
  ``ada-url`` package (a binding of ada, a conformant parser), so an href means to us what it means to a
  browser: :func:`resolve_url` is ``new URL(input, base).href``. The serialisation already makes equal
  what a browser requests as equal: scheme and host lower-cased, IDNs in punycode (UTS #46), IPv4 hosts
  in dotted decimal, default port dropped, raw Unicode and other unsafe characters in the path and query
  percent-encoded as UTF-8, ``\\`` read as ``/``, ``.``/``..`` segments (also written ``%2e``) removed.
- :func:`link_key` is the form two URLs are compared in ("is this the same target?"): the serialisation
  above, then user name and password, fragment and ``utm_*`` parameters dropped, a trailing slash and a
  final dot of the host ignored, and the query re-encoded one way (``+`` and ``%20`` alike). In the path,
  percent-encodings are compared as RFC 3986 section 6.2.2 says they are equal: hex digits in upper
  case, and encoded unreserved characters (letters, digits, ``-._~``) decoded. Used to check each
  unique URL once and to match backlinks to targets.
- :func:`parse_web_url` parses an http(s) URL once and returns its serialisation, key and host together
  (memoised per string), for stages that need more than one of them.
- :func:`registrable_domain` follows the Public Suffix List (https://publicsuffix.org/), ICANN and
  private sections, from the ``publicsuffixlist`` package, which ships the list (no download at run time).
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache, lru_cache
from typing import NamedTuple
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

import ada_url
import idna
from publicsuffixlist import PSLFILE, PublicSuffixList

FETCHABLE_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# Campaign-tracking parameters that do not change what page a link points to.
TRACKING_PARAM_PREFIX = "utm_"
# Parsed http(s) URLs kept by parse_web_url: a page's links, its tracked backlinks and the stored keys
# they are matched against repeat the same strings; 16,384 entries of a few hundred bytes each.
PARSED_URL_CACHE_SIZE = 16_384
# Which rules made the stored link keys: bump it when link_key changes, so stores recompute their keys
# (bot/backlinks/registry.py). 2: the URL Standard's serialisation (ada-url) and RFC 3986 percent rules.
LINK_KEY_VERSION = 2

_PERCENT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
# RFC 3986 section 2.3: unreserved characters; their percent-encoded form means the same URI.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


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


class WebUrl(NamedTuple):
    """An http(s) URL parsed by the URL Standard (see :func:`parse_web_url`)."""

    href: str  # the serialisation without the fragment: the URL a browser requests
    key: str  # its link_key
    host: str  # lower-case ASCII host (punycode), IPv6 literals without brackets, no final dot


def resolve_url(url: str, base: str | None = None) -> str:
    """``new URL(url, base).href`` of the WHATWG URL Standard (https://url.spec.whatwg.org/#concept-
    url-parser), fragment kept: ``url`` resolved against ``base`` (an absolute URL) when given.

    Any scheme (``mailto:x`` comes back as ``mailto:x``). Raises ValueError when the Standard says
    failure: e.g. a relative ``url`` without a usable base, an invalid host or port, an http(s) URL
    without a host.
    """
    try:
        if base is None:
            return str(ada_url.parse_url(url, attributes=("href",))["href"])
        return ada_url.join_url(base, url)
    except ValueError:
        raise ValueError(f"{url!r} is not a valid URL (WHATWG URL Standard)") from None


@lru_cache(maxsize=PARSED_URL_CACHE_SIZE)
def parse_web_url(url: str) -> WebUrl:
    """Parse an absolute http(s) URL once: its serialisation (fragment dropped), :func:`link_key` and
    host, by the URL Standard. Leading and trailing spaces are ignored.

    Raises ValueError when ``url`` is not a valid URL or not http(s).
    """
    href = resolve_url(url.strip())
    scheme, _, rest = href.partition("://")
    if scheme not in FETCHABLE_SCHEMES:
        raise ValueError(f"{url!r} is not an http(s) URL")
    href = href.split("#", 1)[0]
    rest = rest.split("#", 1)[0]
    # A serialised http(s) URL always has a path starting with "/", and "@" in a user name is encoded,
    # so these splits are exact.
    slash = rest.find("/")
    authority, path_query = rest[:slash], rest[slash:]
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):
        end = host_port.index("]") + 1
        host, port = host_port[:end], host_port[end:]
        bare_host = host[1:-1]
    else:
        host, colon, port_digits = host_port.partition(":")
        host = bare_host = host.rstrip(".")
        port = colon + port_digits
    path, _, query = path_query.partition("?")
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    if "%" in path:
        path = _PERCENT_RE.sub(_normal_percent, path)
    if query:
        pairs = [
            (k, v)
            for k, v in parse_qsl(query, keep_blank_values=True)
            if not k.lower().startswith(TRACKING_PARAM_PREFIX)
        ]
        query = urlencode(pairs, doseq=True)
    key = f"{scheme}://{host}{port}{path}?{query}" if query else f"{scheme}://{host}{port}{path}"
    return WebUrl(href=href, key=key, host=bare_host)


def _normal_percent(match: re.Match[str]) -> str:
    """RFC 3986 section 6.2.2.1-2: ``%7e`` -> ``~``, ``%c3`` -> ``%C3``."""
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def link_key(url: str) -> str:
    """The comparison form of an http(s) URL (see the module docstring); other URLs are returned with
    the fragment dropped.

    ``https://Bücher.example:443/caf%c3%a9/./x/#top`` and ``https://xn--bcher-kva.example/café/x`` have
    one key, ``https://xn--bcher-kva.example/caf%C3%A9/x``. Raises ValueError when ``url`` cannot be
    parsed (for http(s) URLs: by the WHATWG URL Standard).
    """
    stripped = url.strip()
    if scheme_of(stripped) in FETCHABLE_SCHEMES:
        return parse_web_url(stripped).key
    split_url(stripped)  # raises ValueError for a bad port or bracket syntax
    return strip_fragment(stripped)


def hostname(url: str) -> str:
    """The lower-case ASCII host of ``url`` (``""`` when it has none or cannot be parsed); for http(s)
    URLs the host the URL Standard finds (the one a browser connects to)."""
    try:
        if scheme_of(url.strip()) in FETCHABLE_SCHEMES:
            return parse_web_url(url).host
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


def site_of(url: str) -> str:
    """The registrable domain of ``url``'s host (Public Suffix List), ``""`` when it has no host."""
    host = hostname(url)
    return registrable_domain(host) if host else ""


def same_site(url_a: str, url_b: str) -> bool:
    """True when both URLs have the same registrable domain (a link between them is internal)."""
    site = site_of(url_a)
    return bool(site) and site == site_of(url_b)
