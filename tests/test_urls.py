from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from publicsuffixlist import PSLFILE, PublicSuffixList

from bot.linkcheck.extract import resolve_href
from bot.urls import (
    hostname,
    link_key,
    parse_web_url,
    public_suffix_list,
    registrable_domain,
    same_site,
    scheme_of,
    strip_fragment,
)
from tests.support.shared import shared_path


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HTTPS://Partner.Example/Page", "https://partner.example/Page"),
        ("https://partner.example:443/page", "https://partner.example/page"),
        ("http://partner.example:80/", "http://partner.example"),
        ("https://partner.example/page/", "https://partner.example/page"),
        ("https://partner.example/page#section", "https://partner.example/page"),
        ("https://partner.example/page?utm_source=x&utm_medium=y", "https://partner.example/page"),
        ("https://partner.example/p?id=3&utm_campaign=z", "https://partner.example/p?id=3"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        # What a browser requests as one URL (WHATWG URL Standard serialisation):
        ("https://partner.example/caf%C3%A9", "https://partner.example/café"),
        ("https://BÜCHER.example/x", "https://xn--bcher-kva.example/x"),
        ("https://partner.example/a/%2e%2E/b/%2E/c", "https://partner.example/b/c"),
        ("https://partner.example/a\\b", "https://partner.example/a/b"),
        ("http://partner.example/a b", "http://partner.example/a%20b"),
        ("http://0x7f.1/", "http://127.0.0.1/"),
        ("http://[0:0::1]:80/", "http://[::1]/"),
        ("https://partner.example./", "https://partner.example/"),
        ("http:partner.example/page", "http://partner.example/page"),
        ("https://user:secret@partner.example/page", "https://partner.example/page"),
        # RFC 3986 section 6.2.2: percent-encoding hex case and encoded unreserved characters.
        ("https://partner.example/caf%c3%a9", "https://partner.example/caf%C3%A9"),
        ("https://partner.example/%7Euser/%41", "https://partner.example/~user/A"),
        ("https://partner.example/?q=café", "https://partner.example/?q=caf%C3%A9"),
    ],
)
def test_link_key_treats_equivalent_urls_as_one(a: str, b: str) -> None:
    assert link_key(a) == link_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://partner.example/page", "http://partner.example/page"),
        ("https://partner.example/Page", "https://partner.example/page"),
        ("https://partner.example/p?id=3", "https://partner.example/p?id=4"),
        ("https://partner.example:8443/", "https://partner.example/"),
        ("https://partner.example/a%2Fb", "https://partner.example/a/b"),  # an encoded "/" is data
        ("https://partner.example/caf%C3%A9", "https://partner.example/CAF%C3%A9"),
        ("https://partner.example/a%3Fb", "https://partner.example/a?b"),
    ],
)
def test_link_key_keeps_what_changes_the_target(a: str, b: str) -> None:
    assert link_key(a) != link_key(b)


@pytest.mark.parametrize(
    "url",
    ["http://partner.example:99999/", "http://exa mple.com/", "https://", "http://[::1/", "http://a<b/"],
)
def test_link_key_rejects_what_the_url_standard_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        link_key(url)


def test_link_key_of_other_schemes_drops_only_the_fragment() -> None:
    assert link_key(" mailto:Team@Example.com#x ") == "mailto:Team@Example.com"
    assert link_key("/relative/path#top") == "/relative/path"


def test_one_parse_gives_the_request_url_the_key_and_the_host() -> None:
    web = parse_web_url("HTTPS://Bücher.example:443/a/../café/?utm_source=x#top")
    assert web.href == "https://xn--bcher-kva.example/caf%C3%A9/?utm_source=x"  # what is requested
    assert web.key == "https://xn--bcher-kva.example/caf%C3%A9"
    assert web.host == "xn--bcher-kva.example"
    assert parse_web_url("http://[::1]:8080/").host == "::1"
    with pytest.raises(ValueError):
        parse_web_url("mailto:someone@example.com")


def test_hostname_is_the_host_a_browser_connects_to() -> None:
    # urllib's split reads the host after "@"; the URL Standard ends the host at "\\".
    assert hostname("http://partner.example\\@10.0.0.1/") == "partner.example"
    assert hostname("https://Bücher.example./x") == "xn--bcher-kva.example"
    assert hostname("http://") == ""


# --- conformance with the URL Standard's own test data (web-platform-tests, see its NOTICE) --------


@cache
def _url_test_data() -> list[dict[str, Any]]:
    with shared_path("corpus", "url", "urltestdata.json").open(encoding="utf-8") as source:
        return [entry for entry in json.load(source) if isinstance(entry, dict)]


def _is_web(url: str | None) -> bool:
    return bool(url) and scheme_of(str(url)) in ("http", "https")


def _web_base_cases() -> list[dict[str, Any]]:
    """Entries resolving an input against an http(s) base whose outcome is an http(s) URL or failure."""
    return [
        entry
        for entry in _url_test_data()
        if _is_web(entry.get("base")) and (entry.get("failure") or _is_web(entry.get("href")))
    ]


def test_href_resolution_conforms_to_the_url_standard_test_data() -> None:
    cases = _web_base_cases()
    assert len(cases) > 150  # 166 in the pinned copy; a much smaller number means a bad filter
    wrong = []
    for entry in cases:
        expected = None if entry.get("failure") else entry["href"]
        got = resolve_href(entry["input"], entry["base"])
        if got != expected:
            wrong.append((entry["input"], entry["base"], expected, got))
    assert wrong == []


def test_link_keys_and_requested_urls_conform_to_the_url_standard_test_data() -> None:
    # Absolute http(s) inputs (base or not): the URL requested is the Standard's href (fragment
    # dropped); the input and its serialisation have one key; a failure has none.
    checked = 0
    for entry in _url_test_data():
        base = entry.get("base")
        if base is not None and not _is_web(base):
            continue
        if entry.get("failure"):
            if base is None and _is_web(entry["input"].strip()):
                with pytest.raises(ValueError):
                    parse_web_url(entry["input"])
                checked += 1
            continue
        href = entry["href"]
        if not _is_web(href):
            continue
        absolute = resolve_href(entry["input"], base) if base else entry["input"]
        assert absolute is not None, entry
        web = parse_web_url(absolute)
        assert web.href == strip_fragment(href), entry
        assert link_key(href) == web.key == link_key(web.href), entry
        assert web.host == entry["hostname"].strip("[]").rstrip("."), entry
        checked += 1
    assert checked > 250


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("blog.example.co.uk", "example.co.uk"),
        ("www.example.com", "example.com"),
        ("me.github.io", "me.github.io"),  # private suffix in the PSL
        ("a.b.me.github.io", "me.github.io"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
    ],
)
def test_registrable_domain_follows_the_public_suffix_list(host: str, domain: str) -> None:
    assert registrable_domain(host) == domain


def test_same_site_compares_registrable_domains() -> None:
    assert same_site("https://blog.example.co.uk/a", "https://www.example.co.uk/")
    assert not same_site("https://alice.github.io/", "https://bob.github.io/")
    assert not same_site("mailto:someone@example.com", "https://example.com/")


def test_scheme_and_fragment_helpers() -> None:
    assert scheme_of("MAILTO:x@example.com") == "mailto"
    assert scheme_of("/relative/path") == ""
    assert scheme_of("javascript:void(0)") == "javascript"
    assert strip_fragment("https://x.example/a#b#c") == "https://x.example/a"


def test_our_faster_public_suffix_list_answers_like_the_packages_own() -> None:
    # Every rule of the shipped list (ICANN and private, internationalised ones in Unicode and punycode,
    # wildcards and exceptions), with labels put in front, must get the same registrable domain.
    theirs = PublicSuffixList()
    ours = public_suffix_list()
    hosts = []
    with open(PSLFILE, encoding="utf-8") as source:
        for line in source:
            rule = line.strip().split(" ")[0]
            if not rule or rule.startswith("//"):
                continue
            name = rule.lstrip("!").replace("*", "w")
            hosts += [name, f"shop.{name}", f"a.b.{name}"]
            if not name.isascii():
                hosts.append("a.b." + name.encode("idna").decode("ascii"))
    assert len(hosts) > 30_000
    assert [ours.privatesuffix(h) for h in hosts] == [theirs.privatesuffix(h) for h in hosts]
