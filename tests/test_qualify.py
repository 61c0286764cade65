"""Qualification hints against real local pages: our site on 127.0.0.1, partners on 127.0.0.2."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.agreements.qualify import (
    HIGH_RELEVANCE,
    LINKS_PAGE_MIN_EXTERNAL_LINKS,
    LOW_RELEVANCE,
    MAX_TEXT_CHARS,
    format_hints,
    page_text,
    qualification_hints,
    relevance_score,
)
from bot.config import FetchSettings, Settings
from bot.engine import Engine
from bot.errors import InputError
from bot.models import Placement
from tests.support.site import LocalSite

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)

OUR_GUIDE = """<!doctype html><html><head><title>How to bake sourdough bread at home</title></head><body>
<header><nav><a href="/">Home</a> <a href="/shop">Shop</a> <a href="/about">About us</a></nav></header>
<main><article>
<h1>How to bake sourdough bread at home</h1>
<p>Sourdough bread rises with a starter instead of commercial yeast. The starter is a living culture of
wild yeast and lactic acid bacteria that you feed with flour and water. A healthy sourdough starter
doubles within six hours of feeding and smells pleasantly sour.</p>
<p>Mix the levain with bread flour, water and salt, then let the dough rest during the autolyse. Build
gluten strength with stretch and folds every thirty minutes during bulk fermentation. Shape the dough
into a tight boule, proof it overnight in a floured banneton in the fridge, score the loaf with a lame
and bake it in a preheated Dutch oven for a crackling crust and an open crumb.</p>
<p>Hydration changes everything: a dough at eighty percent hydration is slack and sticky but bakes an
airy crumb, while a stiffer dough is easier to shape. Whole wheat and rye flour ferment faster.</p>
</article></main>
<footer><p>Copyright Our Bakery. Privacy policy. Cookie settings.</p></footer>
</body></html>"""

PARTNER_ARTICLE = """<!doctype html><html><head><title>Keeping a sourdough starter alive</title></head>
<body><header><nav><a href="/">Flour Blog</a> <a href="/recipes">Recipes</a></nav></header>
<main><article><h1>Keeping a sourdough starter alive through the week</h1>
<p>A sourdough starter needs regular feeding with flour and water. Discard part of the starter, feed it
with equal weights of flour and water, and wait until it doubles: the wild yeast is then ready to
leaven bread dough. Rye flour makes a sluggish starter lively again.</p>
<p>Bakers who bake sourdough bread once a week keep the starter in the fridge and feed it the day
before mixing the levain. A strong levain gives a good rise in bulk fermentation, an open crumb and a
tangy loaf with a dark crust from the Dutch oven.</p>
</article></main>
<footer><a href="https://twitter.test/flourblog">Twitter</a></footer>
</body></html>"""

UNRELATED_ARTICLE = """<!doctype html><html><head><title>Cheap car insurance quotes</title></head><body>
<main><article><h1>How to compare car insurance quotes</h1>
<p>Car insurance premiums depend on the driver's age, the vehicle, the postcode and the claims
history. Comprehensive cover pays for damage to your own vehicle, while third party liability covers
damage you cause to other motorists. A higher voluntary excess lowers the monthly premium.</p>
<p>Compare policies from several insurers, check the no-claims discount, and ask whether windscreen
repair, breakdown assistance and a courtesy car are included before you renew the policy.</p>
</article></main></body></html>"""


@pytest.fixture
def partner() -> Iterator[LocalSite]:
    """The partner's site on another loopback address, so it is a different registrable domain."""
    with LocalSite(host="127.0.0.2") as s:
        yield s


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = Engine.create(Settings(fetch=FetchSettings(allow_networks=LOOPBACK), db_path=tmp_path / "db.json"))
    try:
        yield eng
    finally:
        await eng.aclose()


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def links_page(count: int) -> str:
    items = "\n".join(
        f'<li><a href="https://partner{i}.example/">Partner site {i}</a></li>' for i in range(count)
    )
    return f"""<!doctype html><html><head><title>Links</title></head><body>
    <main><h1>Our link partners</h1><p>Friends of the site.</p><ul>{items}</ul></main></body></html>"""


def resource_guide(count: int) -> str:
    """An article that cites many sources inside real sentences: many links, but prose."""
    paragraphs = "\n".join(
        f"<p>Study {i} measured how long a sourdough starter takes to double at different temperatures, "
        f"and the bakers who ran it published their notes, their flour blends and their feeding schedule "
        f'in <a href="https://lab{i}.example/report">report {i}</a> for anyone who wants to repeat it.</p>'
        for i in range(count)
    )
    return (
        f"<!doctype html><html><head><title>Starter research</title></head><body><main><article>"
        f"<h1>What research says about sourdough starters</h1>{paragraphs}</article></main></body></html>"
    )


# --- relevance ----------------------------------------------------------------------------------


async def test_on_topic_partner_is_more_relevant_than_an_unrelated_one(
    engine: Engine, site: LocalSite, partner: LocalSite
) -> None:
    site.html("/guide", OUR_GUIDE)
    partner.html("/starter", PARTNER_ARTICLE)
    partner.html("/insurance", UNRELATED_ARTICLE)

    on_topic = await qualification_hints(engine, partner.url("/starter"), site.url("/guide"))
    unrelated = await qualification_hints(engine, partner.url("/insurance"), site.url("/guide"))

    assert on_topic.relevance is not None and unrelated.relevance is not None
    assert on_topic.relevance >= HIGH_RELEVANCE
    assert unrelated.relevance < LOW_RELEVANCE
    assert on_topic.relevance > unrelated.relevance + 0.2
    assert not any("relevance" in m for m in on_topic.messages)
    assert f"low relevance {unrelated.relevance:.2f} to our page" in unrelated.messages
    assert on_topic.indexable is True and on_topic.not_indexable_reasons == ()
    assert on_topic.external_links == 1 and not on_topic.links_page  # the footer's Twitter link


def test_relevance_score_edge_cases() -> None:
    text = PARTNER_ARTICLE
    assert relevance_score("", text) == 0.0
    assert relevance_score(text, "   ") == 0.0
    assert relevance_score(text, text) == pytest.approx(1.0)
    # Only stop words: scikit-learn finds an empty vocabulary; that is "nothing in common", not an error.
    assert relevance_score("the and of it is", "the and of it is") == 0.0
    assert relevance_score("sourdough starter flour", "insurance premium policy") == 0.0
    a, b = page_text(OUR_GUIDE).text, page_text(PARTNER_ARTICLE).text
    assert relevance_score(a, b) == pytest.approx(relevance_score(b, a))
    assert 0.0 < relevance_score(a, b) < 1.0


def test_page_text_keeps_main_content_and_drops_chrome() -> None:
    html = """<html><head><title>Rye bread</title><style>.x{color:red}</style></head><body>
    <header>Site banner</header><nav>Menu items</nav>
    <script>var tracking = 1;</script>
    <main><header><h1>Baking rye bread</h1></header><p>Rye dough is <a href="/x">sticky</a>.</p>
    <div hidden>secret text</div><aside>Related posts</aside></main>
    <footer>Copyright</footer></body></html>"""
    result = page_text(html)
    assert result.text.startswith("Rye bread Baking rye bread Rye dough is sticky")
    for chrome in ("Site banner", "Menu items", "tracking", "secret", "Related posts", "Copyright", "color"):
        assert chrome not in result.text
    assert result.link_text_share == pytest.approx(
        len("sticky") / len("Baking rye bread Rye dough is sticky .")
    )


def test_page_text_without_main_uses_the_body_minus_chrome_and_is_capped() -> None:
    html = "<body><header>Banner</header><p>" + "word " * 40_000 + "</p><footer>Foot</footer></body>"
    result = page_text(html.encode(), "utf-8")
    assert not result.text.startswith("Banner") and "Foot" not in result.text
    assert len(result.text) == MAX_TEXT_CHARS
    assert page_text(b"").text == "" and page_text(b"").link_text_share == 0.0


# --- links page, indexability, our link -----------------------------------------------------------


async def test_links_page_with_60_external_links_is_flagged(engine: Engine, partner: LocalSite) -> None:
    partner.html("/links", links_page(60))
    hints = await qualification_hints(engine, partner.url("/links"))
    assert hints.external_links == 60 and hints.external_domains == 60
    assert hints.links_page
    assert hints.link_text_share is not None and hints.link_text_share > 0.8
    assert any(m.startswith("links page: 60 external links") for m in hints.messages)
    assert hints.relevance is None and hints.our_link is None  # no page of ours given


async def test_many_links_in_prose_is_not_a_links_page(engine: Engine, partner: LocalSite) -> None:
    partner.html("/research", resource_guide(60))
    partner.html("/short-list", links_page(LINKS_PAGE_MIN_EXTERNAL_LINKS - 1))
    guide = await qualification_hints(engine, partner.url("/research"))
    assert guide.external_links == 60 and not guide.links_page
    assert guide.link_text_share is not None and guide.link_text_share < 0.1
    short = await qualification_hints(engine, partner.url("/short-list"))
    assert short.external_links == LINKS_PAGE_MIN_EXTERNAL_LINKS - 1 and not short.links_page


async def test_noindex_partner_page(engine: Engine, partner: LocalSite) -> None:
    partner.html(
        "/meta", '<html><head><meta name="robots" content="noindex, follow"></head><body>x</body></html>'
    )
    partner.html("/header", "<p>hidden from search</p>", headers={"X-Robots-Tag": "googlebot: noindex"})
    for path in ("/meta", "/header"):
        hints = await qualification_hints(engine, partner.url(path))
        assert hints.indexable is False
        assert hints.not_indexable_reasons == ("noindex",)
        assert "not indexable (noindex)" in hints.messages
        assert "Indexable: no (noindex)" in format_hints(hints)


async def test_gone_partner_page_is_not_indexable(engine: Engine, partner: LocalSite) -> None:
    partner.status("/gone", 404)
    hints = await qualification_hints(engine, partner.url("/gone"))
    assert hints.indexable is False and hints.not_indexable_reasons == ("page_gone",)
    assert "not indexable (page_gone, HTTP 404)" in hints.messages


async def test_our_existing_link_is_found_in_the_footer(
    engine: Engine, site: LocalSite, partner: LocalSite
) -> None:
    site.html("/guide", OUR_GUIDE)
    partner.html(
        "/post",
        f"""<html><body><main><p>Feed the starter daily and bake on Sundays.</p></main>
        <footer><p>Friends: <a href="{site.url("/guide")}#top" rel="nofollow">Our Bakery guide</a></footer>
        </body></html>""",
    )
    hints = await qualification_hints(engine, partner.url("/post"), site.url("/guide"))
    our = hints.our_link
    assert our is not None
    assert our.to_our_page and our.placement is Placement.FOOTER
    assert our.anchor == "Our Bakery guide" and our.rel == frozenset({"nofollow"})
    assert "our link would sit in the footer" in hints.messages
    assert "our link is nofollow" in hints.messages
    assert 'Our link: to our page, in the footer, nofollow, anchor "Our Bakery guide"' in format_hints(hints)


async def test_link_to_our_domain_without_our_page(
    engine: Engine, site: LocalSite, partner: LocalSite
) -> None:
    partner.html(
        "/post",
        f'<html><body><main><p>Read <a href="{site.url("/shop")}">their shop</a> and '
        f'<a href="https://elsewhere.example/">this</a>.</p></main></body></html>',
    )
    partner.html(
        "/bare",
        '<html><body><main><p>See <a href="https://elsewhere.example/">this</a>.</p>'
        '</main><footer><a href="https://other.example/">x</a></footer></body></html>',
    )
    hints = await qualification_hints(engine, partner.url("/post"), our_domain=site.origin)
    assert hints.our_link is not None and not hints.our_link.to_our_page
    assert hints.our_link.placement is Placement.MAIN and hints.our_link.followed
    assert hints.relevance is None
    assert not any("our" in m or "127.0.0.1" in m for m in hints.messages)  # main content, followed: no flag

    bare = await qualification_hints(engine, partner.url("/bare"), our_domain="127.0.0.1")
    assert bare.our_link is None
    assert "no link to 127.0.0.1 yet; its external links sit in: main 1, footer 1" in bare.messages


# --- failures are values ------------------------------------------------------------------------


async def test_unreachable_partner_page_is_a_message_not_an_exception(
    engine: Engine, site: LocalSite
) -> None:
    site.html("/guide", OUR_GUIDE)
    url = f"http://127.0.0.2:{free_port()}/post"
    hints = await qualification_hints(engine, url, site.url("/guide"))
    assert hints.indexable is None and hints.not_indexable_reasons == ()
    assert hints.status is None and hints.external_links == 0 and not hints.links_page
    assert hints.relevance is None and hints.our_link is None
    assert hints.messages == ("could not read the partner page (connect_refused): indexable unknown",)
    lines = format_hints(hints)
    assert "Indexable: unknown (the page could not be read)" in lines
    assert lines[-1] == "These are hints: they never block logging an agreement."


async def test_unreachable_page_of_ours_leaves_relevance_unknown(engine: Engine, partner: LocalSite) -> None:
    partner.html("/starter", PARTNER_ARTICLE)
    hints = await qualification_hints(
        engine, partner.url("/starter"), f"http://127.0.0.1:{free_port()}/guide"
    )
    assert hints.indexable is True
    assert hints.relevance is None
    assert "relevance unknown: our page could not be read (connect_refused)" in hints.messages


async def test_refused_or_malformed_urls_raise_input_error(engine: Engine, site: LocalSite) -> None:
    with pytest.raises(InputError, match="refused"):
        await qualification_hints(engine, "http://169.254.169.254/latest/meta-data/")
    with pytest.raises(InputError, match="refused"):
        await qualification_hints(engine, site.url("/"), "http://10.0.0.1/guide")
    with pytest.raises(InputError, match="http"):
        await qualification_hints(engine, "ftp://partner.example/")
    assert site.hits == []  # refused before anything was fetched


async def test_partner_page_on_our_own_site(engine: Engine, site: LocalSite) -> None:
    site.html("/guide", OUR_GUIDE)
    site.html("/other", PARTNER_ARTICLE)
    hints = await qualification_hints(engine, site.url("/other"), site.url("/guide"))
    assert hints.messages == ("the partner page is on our own site (127.0.0.1)",)
    assert hints.our_domain == "127.0.0.1"
    assert hints.our_link is None and hints.relevance is not None and hints.relevance > HIGH_RELEVANCE
    assert hints.to_dict()["relevance"] == hints.relevance
