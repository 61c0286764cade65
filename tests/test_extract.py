"""The extract stage on small hand-written pages: one rule per test, see docs/extraction.md."""

from __future__ import annotations

import logging
import random
import time
from urllib.parse import urlsplit

import pytest

from bot.linkcheck.extract import (
    decode_html,
    extract_page,
    parse_link_header,
    resolve_href,
    robots_directives,
)
from bot.models import ExtractedLink, ExtractedPage, Placement

PAGE_URL = "https://site.example/blog/post.html?x=1#top"


def extract(html: str | bytes, url: str = PAGE_URL, **headers: str) -> ExtractedPage:
    return extract_page(html, url, headers={k.replace("_", "-"): v for k, v in headers.items()})


def links(html: str | bytes, url: str = PAGE_URL, **headers: str) -> list[ExtractedLink]:
    return list(extract(html, url, **headers).links)


def one(html: str | bytes, url: str = PAGE_URL, **headers: str) -> ExtractedLink:
    (link,) = links(html, url, **headers)
    return link


def placements(html: str) -> dict[str, Placement]:
    """href -> placement, for pages whose hrefs are unique."""
    return {link.href: link.placement for link in links(html)}


# --- decoding ---------------------------------------------------------------------------------------


def test_charset_from_content_type_header() -> None:
    body = "<title>Café</title><a href=/x>Crème brûlée</a>".encode("iso-8859-1")
    page = extract(body, content_type="text/html; charset=ISO-8859-1")
    assert page.facts.title == "Café"
    assert page.links[0].anchor == "Crème brûlée"


def test_header_keys_are_matched_case_insensitively() -> None:
    body = "<a href=/x>Crème</a>".encode("cp1252")
    page = extract_page(body, PAGE_URL, headers={"Content-Type": 'text/html; charset="windows-1252"'})
    assert page.links[0].anchor == "Crème"


def test_latin1_label_decodes_as_windows_1252_like_browsers() -> None:
    # 0x93/0x94 are curly quotes in windows-1252 and C1 controls in strict ISO-8859-1.
    body = b"<a href=/x>\x93quoted\x94</a>"
    assert one(body, content_type="text/html; charset=iso-8859-1").anchor == "\u201cquoted\u201d"


def test_byte_order_mark_wins_over_the_header() -> None:
    body = b"\xef\xbb\xbf<a href=/x>caf\xc3\xa9</a>"
    assert one(body, content_type="text/html; charset=iso-8859-1").anchor == "café"


def test_utf16_byte_order_mark() -> None:
    body = "\ufeff<a href='/x'>naïve</a>".encode("utf-16-le")
    assert one(body).anchor == "naïve"


def test_charset_from_meta_charset() -> None:
    body = '<meta charset="windows-1251"><a href=/x>Привет</a>'.encode("cp1251")
    assert one(body).anchor == "Привет"


def test_charset_from_meta_http_equiv() -> None:
    html = '<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"><a href=/x>日本語</a>'
    assert one(html.encode("shift_jis")).anchor == "日本語"


def test_meta_after_the_scan_window_is_not_used() -> None:
    padding = "<!--" + "x" * 5000 + "-->"
    body = (padding + '<meta charset="windows-1251"><a href=/x>Привет</a>').encode("cp1251")
    assert one(body).anchor != "Привет"  # read as UTF-8 with replacement characters


def test_unknown_and_non_text_charsets_fall_back() -> None:
    body = "<a href=/x>café</a>".encode()
    assert one(body, content_type="text/html; charset=no-such-charset").anchor == "café"
    assert one(body, content_type="text/html; charset=base64").anchor == "café"
    assert decode_html(body, "rot13") == "<a href=/x>café</a>"


def test_header_claiming_a_charset_that_does_not_fit_does_not_crash() -> None:
    body = "<a href=/x>日本語</a>".encode() + b"\x00"  # odd length: not valid UTF-16 either
    page = extract(body, content_type="text/html; charset=utf-16")
    assert page.links == ()  # read as UTF-16 the bytes are CJK text, not markup; but no exception


def test_broken_utf8_is_replaced_not_raised() -> None:
    body = b"<title>bad \xff\xfe bytes</title><a href='/a\xc3'>x\xc3\x28y</a>"
    page = extract(body)
    assert page.facts.title == "bad \ufffd\ufffd bytes"
    assert page.links[0].anchor == "x\ufffd(y"
    assert page.links[0].url == "https://site.example/a%EF%BF%BD"  # U+FFFD, percent-encoded as UTF-8


def test_meta_declaring_utf16_means_utf8() -> None:
    body = '<meta charset="utf-16"><a href=/x>café</a>'.encode()
    assert one(body).anchor == "café"


def test_str_body_is_used_as_is() -> None:
    assert one("<a href=/x>ok</a>").url == "https://site.example/x"


# --- which links, in which order -------------------------------------------------------------------


def test_every_a_and_area_with_href_in_document_order() -> None:
    html = """
      <a href="/one">1</a><a name="no-href">skip</a>
      <map name="m"><area href="/two" alt="Two"><area alt="no href"></map>
      <a href="/one">1 again</a>
      <svg><a href="/svg"><text>svg link</text></a></svg>
      <template><a href="/inert">inert template content</a></template>
    """
    found = links(html)
    assert [(link.href, link.tag, link.position) for link in found] == [
        ("/one", "a", 0),
        ("/two", "area", 1),
        ("/one", "a", 2),
        ("/svg", "a", 3),
    ]


def test_empty_and_garbage_html() -> None:
    for body in (b"", "", b"\x00\x01\x02", bytes(range(256)) * 20, "<<<>>>", "<a href", "</a></a>"):
        page = extract(body)
        assert page.links == ()
        assert page.facts.title == ""
    assert one("<a href>empty</a>").url == "https://site.example/blog/post.html?x=1"


def test_unclosed_and_misnested_links_follow_the_html_parser() -> None:
    # The HTML standard's tree builder closes an open <a> at the next <a>, and its adoption agency
    # re-opens a formatting <a> after </p> and splits one across </b>: browsers build the same five
    # <a> elements, so a link checker that counts occurrences sees what a visitor's browser has.
    found = links("<p><a href=/a>one<a href=/b>two</p><b><a href=/c>three</b> still</a>")
    assert [(link.href, link.anchor) for link in found] == [
        ("/a", "one"),
        ("/b", "two"),
        ("/b", ""),
        ("/c", "three"),
        ("/c", "still"),
    ]


def test_deep_nesting_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    html = "<a href=/before>before</a>" + "<div>" * 60_000 + "<a href=/deep>deep</a>"
    started = time.process_time()
    with caplog.at_level(logging.WARNING, logger="bot.linkcheck.extract"):
        found = links(html)
    assert time.process_time() - started < 10  # unbounded, this takes minutes
    assert [link.href for link in found] == ["/before"]
    assert "nests block elements too deeply" in caplog.text


@pytest.mark.parametrize(
    "html",
    [
        '<span class="sidebar">' * 20_000 + "<a href=/x>x</a>",  # a region word on every level
        "<span><a href=/x>x</a>" * 20_000,  # every level holds every later link
        ("<span><a href=/x>x</a>" + "<i></i>" * 50) * 2_000,  # big subtrees, few links
    ],
    ids=["nested-words", "nested-link-chain", "nested-empty-elements"],
)
def test_placement_work_is_bounded_on_hostile_nesting(html: str) -> None:
    started = time.process_time()
    found = links(html)
    elapsed = time.process_time() - started
    assert found and all(link.url == "https://site.example/x" for link in found)
    assert elapsed < 10, f"{elapsed:.1f} s"  # about 0.5 s; quadratic, these took minutes


def test_thousands_of_links_in_milliseconds() -> None:
    items = "".join(f'<li><a href="/p/{i}" rel="nofollow">Item {i}</a> text {i}</li>' for i in range(5000))
    html = f"<html><body><nav><a href=/>Home</a></nav><main><ul>{items}</ul></main></body></html>"
    extract(html)  # warm-up (regex compilation, imports)
    started = time.process_time()
    page = extract(html)
    elapsed = time.process_time() - started
    assert len(page.links) == 5001
    # Typically 30-60 ms; the bound leaves room for slow CI machines without hiding a quadratic.
    assert elapsed < 2.0, f"{elapsed:.3f} s for 5001 links"


# --- URLs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "url"),
    [
        ("other.html", "https://site.example/blog/other.html"),
        ("../top.html", "https://site.example/top.html"),
        ("../../../../up.html", "https://site.example/up.html"),
        ("./a/./b/../c", "https://site.example/blog/a/c"),
        ("/root?q=1", "https://site.example/root?q=1"),
        ("//cdn.example/x.js", "https://cdn.example/x.js"),
        ("?page=2", "https://site.example/blog/post.html?page=2"),
        ("#section", "https://site.example/blog/post.html?x=1#section"),
        ("#", "https://site.example/blog/post.html?x=1#"),
        ("", "https://site.example/blog/post.html?x=1"),
        ("http://Other.example", "http://other.example/"),
        ("https://other.example/a/../b#frag", "https://other.example/b#frag"),
        ("  \n /spaced \t ", "https://site.example/spaced"),
        ("/in\nside\tthe\rurl", "https://site.example/insidetheurl"),
        ("\\\\evil.example\\path?q=\\", "https://evil.example/path?q=\\"),
        ("http:other.example/x", "http://other.example/x"),  # another special scheme: authority
        ("https:relative", "https://site.example/blog/relative"),  # the page's scheme: relative
        ("http:///three-slashes.example/", "http://three-slashes.example/"),
        ("http://[::1]:8080/v6", "http://[::1]:8080/v6"),
        ("HTTPS://UPPER.example/Path", "https://upper.example/Path"),
        ("mailto:someone@example.com", "mailto:someone@example.com"),
        ("MailTo:Someone@Example.com", "mailto:Someone@Example.com"),
        ("javascript:void(0)", "javascript:void(0)"),
        ("tel:+1 555 0100", "tel:+1 555 0100"),
        ("data:text/html,<b>x</b>", "data:text/html,<b>x</b>"),
        ("ftp://files.example/pub", "ftp://files.example/pub"),
    ],
)
def test_href_resolution(href: str, url: str) -> None:
    assert resolve_href(href, PAGE_URL) == url


@pytest.mark.parametrize(
    ("href", "base", "url"),
    [
        # URL Standard: a special scheme equal to the base's makes the rest relative...
        ("http:www.example.com:8080/page", "http://site.example/blog/post", "http://site.example/blog/www.example.com:8080/page"),
        ("http:/www.example.com:8080/page", "http://site.example/blog/post", "http://site.example/www.example.com:8080/page"),
        # ...and another one (or two slashes) starts an authority, port kept unless it is the default.
        ("http:www.example.com:8080/page", "https://site.example/blog/post", "http://www.example.com:8080/page"),
        ("http://www.example.com:80/page", "https://site.example/", "http://www.example.com/page"),
        ("/café?q=thé#à", "https://site.example/", "https://site.example/caf%C3%A9?q=th%C3%A9#%C3%A0"),
        ("/menu/%2e%2E/caf%C3%A9", "https://site.example/", "https://site.example/caf%C3%A9"),
        ("//BÜCHER.example/", "https://site.example/", "https://xn--bcher-kva.example/"),
        ("http://0x7f.1/", "https://site.example/", "http://127.0.0.1/"),
    ],
)  # fmt: skip
def test_href_resolution_follows_the_url_standard(href: str, base: str, url: str) -> None:
    assert resolve_href(href, base) == url
    assert one(f'<a href="{href}">x</a>', base).url == url


@pytest.mark.parametrize(
    "href",
    [
        "http://site.example:99999/",
        "http://site.example:port/",
        "http://[::1/",
        "http://[not-ipv6]/",
        "http://]x[/",
        "http://exa mple.com/",
        "http://",
        "https:///",
        "http://user@/",
        "http://a<b>.example/",
    ],
)
def test_unresolvable_hrefs_get_no_url(href: str) -> None:
    link = one(f'<a href="{href}">x</a>')
    assert link.href == href
    assert link.url is None


def test_resolved_urls_parse_with_urllib() -> None:
    hrefs = ["/a", "//b.example:8080/c", "http://[2001:db8::1]/", "https://ünïcode.example/p", "x y"]
    for link in links("".join(f'<a href="{h}">x</a>' for h in hrefs)):
        assert link.url is not None
        parts = urlsplit(link.url)
        assert parts.scheme == "https" or parts.scheme == "http"
        _ = parts.port  # the later stages rely on this not raising


def test_any_resolved_http_url_is_accepted_by_urllib() -> None:
    # Later stages call urlsplit(url).port; a URL we hand them must never make that raise.
    alphabet = "ab:/@[]?#%. 9\\\t<>^|-_~!$&'()*+,;=\u00fc\u2100\uff03"
    rng = random.Random(20260101)
    for _ in range(3000):
        href = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        for candidate in (href, "http://" + href, "//" + href):
            url = resolve_href(candidate, PAGE_URL)
            if url is not None and url.startswith(("http:", "https:")):
                parts = urlsplit(url)
                _ = parts.port
                assert parts.hostname, (candidate, url)


def test_first_base_href_wins_and_is_resolved_against_the_page() -> None:
    html = """<head><base target="_blank"><base href="/docs/v2/"><base href="https://elsewhere.example/">
              </head><a href="intro.html">x</a><a href="#frag">y</a>"""
    page = extract(html)
    assert page.facts.base_url == "https://site.example/docs/v2/"
    assert [link.url for link in page.links] == [
        "https://site.example/docs/v2/intro.html",
        "https://site.example/docs/v2/#frag",
    ]


def test_base_href_in_body_still_counts_and_bad_base_is_ignored() -> None:
    assert (
        extract("<a href=x>x</a><base href='https://b.example/d/'>").links[0].url == "https://b.example/d/x"
    )
    page = extract("<base href='http://[bad'><a href=x>x</a>")
    assert page.facts.base_url == PAGE_URL
    assert page.links[0].url == "https://site.example/blog/x"


def test_relative_links_on_an_unusable_page_url_get_no_url() -> None:
    found = links("<a href=/rel>r</a><a href='https://abs.example/'>a</a>", url="not a url")
    assert [link.url for link in found] == [None, "https://abs.example/"]


# --- anchor text ------------------------------------------------------------------------------------


def test_anchor_text_is_whitespace_normalised_text_content() -> None:
    link = one("<a href=/x>\n  Read   <b>the</b>\u00a0<i>full</i>\tstory  </a>")
    assert link.anchor == "Read the full story"
    assert one("<a href=/x>Hel<b>lo</b></a>").anchor == "Hello"


def test_image_link_uses_alt_text() -> None:
    assert one('<a href=/x><img src=a.png alt=" Partner  logo "></a>').anchor == "Partner logo"


def test_several_images_join_their_distinct_alts() -> None:
    html = '<a href=/x><img alt="Acme"><img alt=""><img alt="Shop"><noscript><img alt="Acme"></noscript></a>'
    assert one(html).anchor == "Acme Shop"


def test_text_wins_over_alt_and_svg_title_counts_as_text() -> None:
    assert one('<a href=/x><img alt="logo"> Acme</a>').anchor == "Acme"
    assert one("<a href=/x><svg><title>Twitter</title><path d=''/></svg></a>").anchor == "Twitter"


def test_area_uses_its_alt() -> None:
    assert one('<map><area href="/r" alt="Region  one" title="t"></map>').anchor == "Region one"


def test_fallbacks_aria_label_then_title_then_empty() -> None:
    assert one('<a href=/x aria-label="Close" title="t"><i class=icon></i></a>').anchor == "Close"
    assert one('<a href=/x title="Tooltip"><img src=a.png></a>').anchor == "Tooltip"
    assert one("<a href=/x><img src=a.png></a>").anchor == ""
    assert one('<map><area href="/r"></map>').anchor == ""


def test_script_and_style_text_is_not_anchor_text() -> None:
    assert one("<a href=/x>Visible<script>var hidden=1</script><style>.a{}</style></a>").anchor == "Visible"


# --- rel --------------------------------------------------------------------------------------------


def test_rel_is_a_lower_case_token_set_split_on_spaces_and_commas() -> None:
    assert one('<a href=/x rel=" Nofollow,Sponsored  ugc,, noopener">x</a>').rel == frozenset(
        {"nofollow", "sponsored", "ugc", "noopener"}
    )
    assert one("<a href=/x>x</a>").rel == frozenset()
    assert one('<map><area href=/r rel="NOFOLLOW"></map>').rel == frozenset({"nofollow"})


def test_meta_robots_nofollow_makes_every_link_nofollow() -> None:
    page = extract('<meta name="Robots" content="index, NoFollow"><a href=/a>a</a><a href=/b rel=ugc>b</a>')
    assert page.facts.nofollow
    assert not page.facts.noindex
    assert [link.rel for link in page.links] == [frozenset({"nofollow"}), frozenset({"ugc", "nofollow"})]


def test_meta_googlebot_nofollow_applies() -> None:
    assert one('<meta name="googlebot" content="nofollow"><a href=/a>a</a>').rel == frozenset({"nofollow"})


def test_meta_for_another_crawler_does_not_apply() -> None:
    page = extract('<meta name="bingbot" content="noindex, nofollow"><a href=/a>a</a>')
    assert page.facts.robots == frozenset()
    assert page.links[0].rel == frozenset()


def test_x_robots_tag_header_nofollow_makes_every_link_nofollow() -> None:
    page = extract("<a href=/a>a</a>", x_robots_tag="nofollow")
    assert page.facts.nofollow
    assert page.links[0].rel == frozenset({"nofollow"})


def test_x_robots_tag_scoped_to_googlebot_applies() -> None:
    page = extract("<a href=/a>a</a>", x_robots_tag="GoogleBot: noindex, nofollow")
    assert page.facts.robots == frozenset({"noindex", "nofollow"})
    assert page.links[0].rel == frozenset({"nofollow"})


def test_x_robots_tag_scoped_to_another_bot_is_ignored() -> None:
    page = extract("<a href=/a>a</a>", x_robots_tag="otherbot: noindex, nofollow")
    assert page.facts.robots == frozenset()
    assert not page.facts.noindex
    assert page.links[0].rel == frozenset()


def test_x_robots_tag_repeated_headers_joined() -> None:
    # Two headers ("noarchive" and "otherbot: noindex") joined by the fetch stage, then a googlebot one.
    robots = robots_directives([], "noarchive, otherbot: noindex, googlebot: nofollow")
    assert robots == frozenset({"noarchive", "nofollow"})


def test_robots_none_means_noindex_and_nofollow() -> None:
    page = extract('<meta name=robots content="none"><a href=/a>a</a>')
    assert page.facts.noindex and page.facts.nofollow
    assert {"none", "noindex", "nofollow"} <= page.facts.robots
    assert page.links[0].rel == frozenset({"nofollow"})


def test_robots_directives_with_values_are_kept() -> None:
    robots = robots_directives(["max-snippet:20, max-image-preview: large"], "unavailable_after: 2030-01-01")
    assert robots == frozenset({"max-snippet:20", "max-image-preview:large", "unavailable_after:2030-01-01"})
    assert "noindex" not in robots


def test_meta_robots_and_header_combine() -> None:
    page = extract("<meta name=robots content=noindex><a href=/a>a</a>", x_robots_tag="noarchive")
    assert page.facts.robots == frozenset({"noindex", "noarchive"})
    assert page.facts.noindex and not page.facts.nofollow
    assert page.links[0].rel == frozenset()


# --- page facts -------------------------------------------------------------------------------------


def test_title_is_normalised() -> None:
    assert extract("<title>\n  Partner   resources\t</title>").facts.title == "Partner resources"
    assert extract("<svg><title>icon</title></svg>").facts.title == "icon"


def test_canonical_from_link_tag_is_absolute() -> None:
    page = extract('<head><base href="/base/"><link rel="Canonical" href="../canon?a=1"></head>')
    assert page.facts.canonical == "https://site.example/canon?a=1"


def test_canonical_from_http_link_header() -> None:
    header = '<https://cdn.example/a.css>; rel="preload", </the-canonical>; rel="canonical"'
    assert extract("<p>x</p>", link=header).facts.canonical == "https://site.example/the-canonical"


def test_canonical_tag_wins_over_header_and_body_tags_are_ignored() -> None:
    html = '<head><link rel=canonical href="https://a.example/tag"></head>'
    assert extract(html, link="<https://b.example/h>; rel=canonical").facts.canonical == (
        "https://a.example/tag"
    )
    body_only = '<body><p>x</p><link rel=canonical href="https://a.example/body"></body>'
    assert extract(body_only).facts.canonical is None


def test_no_canonical() -> None:
    assert extract("<link rel=stylesheet href=a.css>", link="<x>; rel=next").facts.canonical is None


def test_parse_link_header() -> None:
    value = (
        '<https://a.example/1>; rel="canonical alternate"; title="a, b; c", <https://b.example/2>; rel=next'
    )
    assert parse_link_header(value) == [
        ("https://a.example/1", frozenset({"canonical", "alternate"})),
        ("https://b.example/2", frozenset({"next"})),
    ]


# --- placement --------------------------------------------------------------------------------------


def test_placement_from_semantic_elements() -> None:
    html = """
      <header><a href=/logo>Logo</a><nav><a href=/menu>Menu</a></nav></header>
      <main><p>Text with <a href=/in-main>a link</a>.</p>
        <aside><a href=/pullquote>aside</a></aside></main>
      <aside><a href=/sidebar>Sidebar</a></aside>
      <footer><a href=/imprint>Imprint</a><nav><a href=/footer-menu>Footer menu</a></nav></footer>
      <p><a href=/loose>no signal at all</a></p>
    """
    assert placements(html) == {
        "/logo": Placement.HEADER,
        "/menu": Placement.NAV,
        "/in-main": Placement.MAIN,
        "/pullquote": Placement.ASIDE,
        "/sidebar": Placement.ASIDE,
        "/imprint": Placement.FOOTER,
        "/footer-menu": Placement.FOOTER,
        "/loose": Placement.MAIN,
    }


def test_placement_from_aria_roles() -> None:
    html = """
      <div role="banner"><a href=/b>b</a></div>
      <div role="navigation"><a href=/n>n</a></div>
      <div role="complementary"><a href=/c>c</a></div>
      <div role="contentinfo"><a href=/i>i</a></div>
      <div role="main"><a href=/m>m</a></div>
      <div role="search"><a href=/s>s</a></div>
    """
    assert placements(html) == {
        "/b": Placement.HEADER,
        "/n": Placement.NAV,
        "/c": Placement.ASIDE,
        "/i": Placement.FOOTER,
        "/m": Placement.MAIN,
        "/s": Placement.NAV,
    }


def test_header_inside_article_is_not_the_site_header() -> None:
    html = """
      <header class="site"><a href=/site-header>site</a></header>
      <article><header><h1><a href=/headline>Headline</a></h1><a href=/author>By A</a></header>
        <p><a href=/body>body</a></p></article>
      <section><header><a href=/section-head>s</a></header></section>
    """
    assert placements(html) == {
        "/site-header": Placement.HEADER,
        "/headline": Placement.MAIN,
        "/author": Placement.MAIN,
        "/body": Placement.MAIN,
        "/section-head": Placement.MAIN,
    }


def test_explicit_banner_role_counts_even_inside_a_section() -> None:
    assert one("<section><div role=banner><a href=/x>x</a></div></section>").placement is Placement.HEADER


def test_footer_of_an_article_vs_footer_of_the_page() -> None:
    html = """
      <article><p><a href=/body>body</a></p>
        <footer><a href=/tag>Tagged: partners</a></footer></article>
      <footer><a href=/page-footer>© 2026</a></footer>
    """
    assert placements(html) == {
        "/body": Placement.MAIN,
        "/tag": Placement.FOOTER,
        "/page-footer": Placement.FOOTER,
    }


def test_comments_inside_the_article_are_comments_and_stay_comments() -> None:
    html = """
      <article><p><a href=/body>body</a></p>
        <section id="comments"><ol class="commentlist"><li>
          <article><header><a href=/commenter>Commenter</a></header><p><a href=/spam>spam</a></p>
          <footer><a href=/reply>Reply</a></footer><nav><a href=/older>Older</a></nav></article>
        </li></ol></section>
        <div class="disqus-thread"><a href=/disqus>d</a></div>
        <div itemprop="comment"><a href=/schema-comment>c</a></div>
      </article>
    """
    assert placements(html) == {
        "/body": Placement.MAIN,
        "/commenter": Placement.COMMENTS,
        "/spam": Placement.COMMENTS,
        "/reply": Placement.COMMENTS,
        "/older": Placement.COMMENTS,
        "/disqus": Placement.COMMENTS,
        "/schema-comment": Placement.COMMENTS,
    }


def test_placement_from_class_and_id_words() -> None:
    html = """
      <div id="masthead"><a href=/m>m</a></div>
      <div class="site-header"><a href=/sh>sh</a></div>
      <div class="mainNavigation"><a href=/nav>nav</a></div>
      <ol class="breadcrumbs"><li><a href=/bc>bc</a></li></ol>
      <div id="sidebar"><a href=/sb>sb</a></div>
      <div class="widget_recent_entries"><a href=/w>w</a></div>
      <div class="related-posts"><a href=/rel>rel</a></div>
      <div class="share-buttons"><a href=/share>share</a></div>
      <div class="social"><a href=/social>social</a></div>
      <div id="colophon"><a href=/col>col</a></div>
      <div class="page-footer"><a href=/pf>pf</a></div>
      <div class="comment-list"><a href=/cl>cl</a></div>
      <div class="commentary"><p>Prose <a href=/commentary>not comments</a>, and
        <span class="navy">a <a href=/navy>navy</a> word</span>.</p></div>
    """
    assert placements(html) == {
        "/m": Placement.HEADER,
        "/sh": Placement.HEADER,
        "/nav": Placement.NAV,
        "/bc": Placement.NAV,
        "/sb": Placement.ASIDE,
        "/w": Placement.ASIDE,
        "/rel": Placement.ASIDE,
        "/share": Placement.ASIDE,
        "/social": Placement.ASIDE,
        "/col": Placement.FOOTER,
        "/pf": Placement.FOOTER,
        "/cl": Placement.COMMENTS,
        "/commentary": Placement.MAIN,
        "/navy": Placement.MAIN,
    }


def test_class_words_do_not_override_an_outer_region() -> None:
    html = """
      <footer><div class="widget"><a href=/footer-widget>w</a></div></footer>
      <aside class="sidebar"><div class="widget_recent_comments"><a href=/recent-comments>c</a></div></aside>
      <header><div class="social"><a href=/header-social>s</a></div></header>
    """
    assert placements(html) == {
        "/footer-widget": Placement.FOOTER,
        "/recent-comments": Placement.ASIDE,
        "/header-social": Placement.HEADER,
    }


def test_main_element_resets_a_region_word_on_a_wrapper() -> None:
    html = """<div class="off-canvas-menu-wrap"><div class="menu"><a href=/menu>Menu</a></div>
      <main><p>Article <a href=/article>link</a></p></main></div>"""
    assert placements(html) == {"/menu": Placement.NAV, "/article": Placement.MAIN}


def test_article_header_word_is_not_the_site_header() -> None:
    html = """<div class="entry-header"><a href=/entry>e</a></div>
      <div class="header"><a href=/site>s</a></div>
      <article><div class="header"><a href=/in-article>a</a></div></article>"""
    assert placements(html) == {
        "/entry": Placement.MAIN,
        "/site": Placement.HEADER,
        "/in-article": Placement.MAIN,
    }


def test_body_classes_and_the_link_own_class_are_ignored() -> None:
    html = """<body class="single has-sidebar nav-open">
      <p>Prose and a <a class="nav-link comments-count" href=/x>link</a> in it.</p></body>"""
    assert one(html).placement is Placement.MAIN


def test_heading_slug_ids_are_not_region_names() -> None:
    html = """<div id="sharing-with-a-single-developer">
      <h2><a href=/h>Sharing with a single developer</a></h2><p>Text text text.</p></div>"""
    assert one(html).placement is Placement.MAIN


def test_layout_wrapper_named_after_a_region_is_not_that_region() -> None:
    prose = "<p>" + "Long article prose. " * 60 + '<a href="/in-article">link</a></p>'
    html = f"""<div id="contentWithSidebar"><div id="post">{prose}</div>
      <div id="sidebar"><a href=/side>Side</a></div></div>"""
    assert placements(html) == {"/in-article": Placement.MAIN, "/side": Placement.ASIDE}


def test_link_lists_outside_declared_content_are_nav() -> None:
    prose = "<p>" + "Some prose here. " * 20 + '<a href="/prose">in prose</a> and more prose.</p>'
    menu = "<ul>" + "".join(f"<li><a href=/m{i}>Menu item {i}</a></li>" for i in range(5)) + "</ul>"
    html = f"<div class=box>{menu}</div><div>{prose}</div>"
    found = placements(html)
    assert found["/prose"] is Placement.MAIN
    assert {found[f"/m{i}"] for i in range(5)} == {Placement.NAV}


def test_link_lists_inside_an_article_stay_main() -> None:
    resources = "<ul>" + "".join(f"<li><a href=/r{i}>Resource {i}</a></li>" for i in range(5)) + "</ul>"
    html = f"<article><p>Our favourite tools:</p>{resources}</article>"
    assert set(placements(html).values()) == {Placement.MAIN}


def test_two_links_in_a_sentence_are_not_a_list() -> None:
    html = "<div><a href=/a>Alpha</a> <a href=/b>Beta</a></div>"
    assert set(placements(html).values()) == {Placement.MAIN}
