"""Referring domains as the field counts them: the registrable domain of the source page by the Public
Suffix List (https://publicsuffix.org/, ICANN and private sections), from the list the
``publicsuffixlist`` package ships. The cases below are rules of the list itself, so each would fail if
the count fell back to "the last two labels" or to the host name."""

from __future__ import annotations

import pytest

from bot.urls import registrable_domain, url_registrable_domain


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        # Multi-part public suffixes (ICANN section): the domain is one label more than the suffix.
        ("https://blog.example.co.uk/post", "example.co.uk"),
        ("https://a.b.example.co.uk/", "example.co.uk"),
        ("https://shop.example.com.au/x", "example.com.au"),
        ("https://news.example.co.jp/", "example.co.jp"),
        ("https://www.example.gov.uk/", "example.gov.uk"),
        # Wildcard and exception rules: *.kawasaki.jp is a suffix, !city.kawasaki.jp is not.
        ("https://a.b.city.kawasaki.jp/", "city.kawasaki.jp"),
        ("https://shop.foo.kawasaki.jp/", "shop.foo.kawasaki.jp"),
        ("https://a.b.ck/", "a.b.ck"),  # *.ck
        ("https://a.www.ck/", "www.ck"),  # !www.ck
    ],
)
def test_multi_part_and_wildcard_suffixes(url: str, domain: str) -> None:
    assert url_registrable_domain(url) == domain


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        # Private section: each user's site under a hosting suffix is its own referring domain.
        ("https://alice.github.io/post", "alice.github.io"),
        ("https://docs.alice.github.io/", "alice.github.io"),
        ("https://www.github.io/", "www.github.io"),  # "www" is a user name there, not a prefix
        ("https://someone.blogspot.com/2026/01/x.html", "someone.blogspot.com"),
        ("https://app.herokuapp.com/", "app.herokuapp.com"),
        ("https://bucket.s3.amazonaws.com/file", "bucket.s3.amazonaws.com"),
        ("https://a.project.pages.dev/", "project.pages.dev"),
    ],
)
def test_private_suffixes_as_the_list_says(url: str, domain: str) -> None:
    assert url_registrable_domain(url) == domain


def test_private_suffix_users_are_different_referring_domains() -> None:
    assert url_registrable_domain("https://alice.github.io/") != url_registrable_domain(
        "https://bob.github.io/"
    )


@pytest.mark.parametrize(
    ("unicode_url", "punycode_url", "domain"),
    [
        ("https://www.bücher.de/katalog", "https://xn--bcher-kva.de/", "xn--bcher-kva.de"),
        ("https://BLOG.Bücher.DE/", "https://blog.XN--BCHER-KVA.de/", "xn--bcher-kva.de"),
        ("https://shop.münchen.de/", "https://xn--mnchen-3ya.de/", "xn--mnchen-3ya.de"),
        ("https://www.例え.jp/", "https://xn--r8jz45g.jp/", "xn--r8jz45g.jp"),
        ("https://пример.рф/", "https://xn--e1afmkfd.xn--p1ai/", "xn--e1afmkfd.xn--p1ai"),
        ("https://www.example。com/", "https://example.com/", "example.com"),  # ideographic full stop
    ],
)
def test_idns_in_unicode_and_punycode_are_one_domain(
    unicode_url: str, punycode_url: str, domain: str
) -> None:
    assert url_registrable_domain(unicode_url) == domain
    assert url_registrable_domain(punycode_url) == domain


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("http://192.0.2.10/page", "192.0.2.10"),
        ("http://192.0.2.10:8080/page", "192.0.2.10"),
        ("http://[2001:db8::1]/page", "2001:db8::1"),
        ("http://[2001:DB8:0:0:0:0:0:1]:8443/x", "2001:db8::1"),  # one address, one domain
        ("http://[2001:db8::a]/", "2001:db8::a"),
    ],
)
def test_ip_address_hosts_are_their_own_domain(url: str, domain: str) -> None:
    assert url_registrable_domain(url) == domain


def test_ip_hosts_are_not_cut_like_host_names() -> None:
    # "2.10" would be the answer of a naive last-two-labels rule.
    assert url_registrable_domain("http://192.0.2.10/") != url_registrable_domain("http://198.51.2.10/")
    assert registrable_domain("[2001:db8::1]") == registrable_domain("2001:0db8::0001")


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "https://www.example.com/",
        "https://WWW.EXAMPLE.COM/a",
        "http://www.example.com:8080/",
        "https://blog.www.example.com/",
        "https://example.com./",
    ],
)
def test_www_and_case_do_not_matter(url: str) -> None:
    assert url_registrable_domain(url) == "example.com"


def test_a_public_suffix_or_single_label_host_is_returned_as_is() -> None:
    assert registrable_domain("co.uk") == "co.uk"
    assert registrable_domain("github.io") == "github.io"
    assert registrable_domain("localhost") == "localhost"
