from __future__ import annotations

import pytest
from publicsuffixlist import PSLFILE, PublicSuffixList

from bot.urls import (
    link_key,
    public_suffix_list,
    registrable_domain,
    same_site,
    scheme_of,
    strip_fragment,
)


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
    ],
)
def test_link_key_keeps_what_changes_the_target(a: str, b: str) -> None:
    assert link_key(a) != link_key(b)


def test_link_key_rejects_a_bad_port() -> None:
    with pytest.raises(ValueError):
        link_key("http://partner.example:99999/")


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
