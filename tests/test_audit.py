"""The link-profile audit against local sites built for it: every planted pair, cycle and red flag is
found with its evidence, and nothing that was not planted is reported.

Loopback addresses are separate registrable domains (an IP is its own domain): 127.0.0.1 is ours,
other 127.x addresses are partners. Time never passes for real: the engine's clock is injected.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from bot.agreements.model import AgreementInput, LinkInput
from bot.audit import (
    AuditReport,
    AuditSettings,
    FindingCode,
    audit_site,
    findings_csv,
    parse_site,
    propose_prunes,
    render_audit_text,
)
from bot.audit.flags import anchor_kind, brand_terms_for
from bot.audit.sitemap import SitemapKind, gunzip_capped, parse_sitemap
from bot.engine import Engine
from bot.errors import InputError
from bot.models import InboundResult, InboundVerdict
from bot.monitoring.prune import Outcome, ProposalStatus
from tests.support.clock import Clock
from tests.support.site import Handler, LocalSite
from tests.test_cli import run_cli

BRAND = AuditSettings(brand_terms=("Crumb Club",))
KEYWORD = "best sourdough starter kit"

# -- page text: our site is about sourdough baking ---------------------------------------------------------

OUR_TOPIC = (
    "Sourdough baking at home: feed your sourdough starter with flour and water, watch the starter "
    "rise, mix the dough, stretch and fold, proof the loaf in a banneton, score it and bake the bread "
    "in a hot dutch oven until the crust crackles and the crumb is open."
)
RELATED = {
    "mill": "Our mill stone-grinds rye and whole wheat flour for sourdough baking. Fresh flour feeds a "
    "lively sourdough starter and gives bread an open crumb and a dark crust.",
    "supplies": "Baking supplies for sourdough bread: banneton baskets to proof the dough, a dutch oven "
    "to bake the loaf, a lame to score the crust of every sourdough loaf.",
    "review": "We tested starter kits for sourdough baking: a jar, rye flour and a dried sourdough "
    "starter. Feed the starter, mix the dough and bake bread with a good crumb.",
    "blog": "Feeding your sourdough starter: flour, water and patience. A healthy starter makes the "
    "dough rise and the baked bread loaf light, with a crackling crust.",
    "recipes": "Sourdough bread recipes: a country loaf, a rye loaf and a seeded loaf. Proof the dough "
    "overnight, score the loaf and bake it in a dutch oven for a golden crust.",
}
UNRELATED = (
    "Compare car insurance quotes from twenty insurers. Lower your premium, choose a deductible, add "
    "collision coverage and roadside assistance, and save on policies for young drivers."
)


def html(body: str, *, title: str = "", head: str = "") -> str:
    return f"<html><head><title>{title}</title>{head}</head><body>{body}</body></html>"


def main_text(text: str, *links: str) -> str:
    return f"<main><p>{text}</p>{''.join(f'<p>{link}</p>' for link in links)}</main>"


def a(url: str, anchor: str, rel: str = "") -> str:
    rel_attr = f' rel="{rel}"' if rel else ""
    return f'<a href="{url}"{rel_attr}>{anchor}</a>'


def links_page(*links: str, filler: int = 33) -> str:
    """A page that is mostly outbound links: one line of introduction and a long list."""
    others = [a(f"http://127.0.0.9:{port}/", f"Site {port}") for port in range(1000, 1000 + filler)]
    items = "".join(f"<li>{link}</li>" for link in (*links, *others))
    return html(f"<main><h1>Links</h1><ul>{items}</ul></main>", title="Useful links")


def _text(body: str, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, status=status, content_type="text/plain")

    return handler


def _bytes(body: bytes, content_type: str = "application/xml") -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type=content_type)

    return handler


@dataclass
class World:
    """Our site and the partners planted around it (role -> site)."""

    ours: LocalSite
    sites: dict[str, LocalSite]

    def __getitem__(self, role: str) -> LocalSite:
        return self.sites[role]

    def domain(self, role: str) -> str:
        return self.sites[role].host  # an IP address is its own registrable domain


ROLES = {
    "mill": "127.0.0.2",  # a clean exchange partner: related, main content, brand anchor
    "supplies": "127.0.0.3",  # exchange with footer links both ways; our link to it is sitewide
    "insure": "127.0.0.4",  # exchange with an unrelated site (car insurance)
    "review": "127.0.0.5",  # paid agreement, their link is followed
    "blog": "127.0.0.7",  # exchange partner whose page is noindex
    "n1": "127.0.0.11",  # links page linking to us, n2 and n3
    "n2": "127.0.0.12",  # links page linking to us and n3
    "n3": "127.0.0.13",  # a plain page linking to us
    "c1": "127.0.0.21",  # three-way: we link to c1, c1 links to c2, c2 links to us
    "c2": "127.0.0.22",
    "gone": "127.0.0.31",  # used to link back; lost. We still link to it: one-sided
}
OUR_PATHS = ("/", "/recipes/starter", "/recipes/loaf", "/partners", "/about")


@pytest.fixture
def world(ours: LocalSite) -> Iterator[World]:
    with ExitStack() as stack:
        sites = {role: stack.enter_context(LocalSite(host=host)) for role, host in ROLES.items()}
        yield World(ours, sites)


def our_pages(w: World) -> None:
    """Five pages about sourdough; a footer with the link to "supplies" on every page; /partners links
    to the other partners in its main content. robots.txt keeps our crawler out of /private."""
    ours = w.ours
    nav = "<nav>" + " ".join(a(ours.url(p), p) for p in OUR_PATHS) + "</nav>"
    footer = f"<footer><p>Friends: {a(w['supplies'].url('/'), 'Bakery supplies')}</p></footer>"

    def page(path: str, title: str, text: str, *links: str) -> None:
        ours.html(path, html(nav + main_text(text, *links) + footer, title=title))

    page("/", "Crumb Club", OUR_TOPIC)
    page("/recipes/starter", "Starter", "How to feed a sourdough starter with rye flour. " + OUR_TOPIC)
    page("/recipes/loaf", "Loaf", "A country sourdough loaf: mix, proof, score and bake. " + OUR_TOPIC)
    page(
        "/partners",
        "Friends",
        "Friends of the Crumb Club whose sourdough baking work we like.",
        a(w["mill"].url("/flour"), "stone-ground flour"),
        a(w["insure"].url("/"), "our friends at the insurer"),
        a(w["blog"].url("/feeding"), "feeding a starter"),
        a(w["c1"].url("/"), "rye recipes"),
        a(w["gone"].url("/"), "an old friend"),
    )
    page("/about", "About", "The Crumb Club teaches sourdough baking in small classes.")
    page("/private/notes", "Notes", "private", a("http://127.0.0.99:9/", "secret"))
    listed = "".join(f"<url><loc>{ours.url(p)}</loc></url>" for p in (*OUR_PATHS, "/private/notes"))
    xml = (
        f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{listed}</urlset>'
    )
    ours.route("/sitemap.xml", _bytes(xml.encode()))
    robots = f"User-agent: linkpact\nDisallow: /private\n\nSitemap: {ours.url('/sitemap.xml')}\n"
    ours.route("/robots.txt", _text(robots))


def partner_pages(w: World) -> None:
    ours = w.ours
    w["mill"].html("/flour", html(main_text(RELATED["mill"], a(ours.url("/"), "Crumb Club")), title="Mill"))
    footer = f"<footer>Friends: {a(ours.url('/'), 'crumbclub.example')}</footer>"
    w["supplies"].html("/", html(main_text(RELATED["supplies"]) + footer, title="Supplies"))
    w["insure"].html("/", html(main_text(UNRELATED, a(ours.url("/"), "Crumb Club bakery school"))))
    w["review"].html("/kits", html(main_text(RELATED["review"], a(ours.url("/recipes/starter"), KEYWORD))))
    noindex = '<meta name="robots" content="noindex">'
    body = main_text(RELATED["blog"], a(ours.url("/recipes/starter"), "this guide"))
    w["blog"].html("/feeding", html(body, head=noindex))
    to_us = a(ours.url("/"), "Crumb Club")
    w["n1"].html(
        "/links", links_page(to_us, a(w["n2"].url("/links"), "N two"), a(w["n3"].url("/"), "N three"))
    )
    w["n2"].html("/links", links_page(to_us, a(w["n3"].url("/"), "N three")))
    w["n3"].html("/", html(main_text(RELATED["recipes"], a(ours.url("/recipes/starter"), KEYWORD))))
    w["c1"].html("/", html(main_text(RELATED["recipes"], a(w["c2"].url("/bread"), "bread recipes"))))
    w["c2"].html("/bread", html(main_text(RELATED["recipes"], a(ours.url("/recipes/loaf"), KEYWORD))))
    w["gone"].html("/", html(main_text(RELATED["blog"], a(ours.url("/"), "Crumb Club"))))


def agreement(w: World, role: str, *links: LinkInput, kind: str = "exchange") -> AgreementInput:
    return AgreementInput(
        partner_name=role.title(), partner_site=w[role].url("/"), owner="U0OWNER", kind=kind, links=links
    )


async def record_knowledge(engine: Engine, w: World, clock: Clock) -> None:
    """Agreements and tracked backlinks as a team would log them, verified by the real monitor.
    Agreement ids: 1 mill, 2 supplies, 3 insure, 4 review (paid), 5 blog, 6 three-way (c1, c2)."""
    o = w.ours.url
    add = engine.agreements.add
    for role, source, target in (
        ("mill", "/flour", "/"), ("supplies", "/", "/"), ("insure", "/", "/")
    ):  # fmt: skip
        our_page = "/" if role == "supplies" else "/partners"
        await add(
            agreement(
                w,
                role,
                LinkInput(o(our_page), w[role].url(source), "ours"),
                LinkInput(w[role].url(source), o(target)),
            )
        )
    await add(agreement(w, "review", LinkInput(w["review"].url("/kits"), o("/recipes/starter")), kind="paid"))
    await add(
        agreement(
            w,
            "blog",
            LinkInput(o("/partners"), w["blog"].url("/feeding"), "ours"),
            LinkInput(w["blog"].url("/feeding"), o("/recipes/starter")),
        )
    )
    await add(
        agreement(
            w,
            "c2",
            LinkInput(o("/partners"), w["c1"].url("/"), "ours"),
            LinkInput(w["c2"].url("/bread"), o("/recipes/loaf")),
            LinkInput(w["c1"].url("/"), w["c2"].url("/bread")),  # between partners: c1 -> c2
            kind="three_way",
        )
    )
    await engine.track(w["n1"].url("/links"), o("/"))
    await engine.track(w["n2"].url("/links"), o("/"))
    await engine.track(w["n3"].url("/"), o("/recipes/starter"))
    await engine.track(w["gone"].url("/"), o("/"))
    await engine.recheck()
    # "gone" removes its link; the loss is confirmed on a second failing check 21 hours later.
    w["gone"].html("/", html(main_text(RELATED["blog"])))
    await engine.recheck()
    clock.advance(hours=21)
    await engine.recheck()


@pytest.fixture
async def planted(engine: Engine, world: World, clock: Clock) -> AuditReport:
    our_pages(world)
    partner_pages(world)
    await record_knowledge(engine, world, clock)
    return await audit_site(engine, world.ours.url("/"), settings=BRAND)


def found(report: AuditReport) -> set[tuple[str, str, str]]:
    return {(f.code.value, f.subject, f.side) for f in report.findings}


# -- the planted world -----------------------------------------------------------------------------------


async def test_every_planted_red_flag_is_found_and_nothing_else(planted: AuditReport, world: World) -> None:
    w, d = world, world.domain
    assert found(planted) == {
        ("reciprocal_share", "127.0.0.1", ""),
        ("over_optimised_anchor", KEYWORD, ""),
        ("risky_placement", d("supplies"), "ours"),
        ("risky_placement", d("supplies"), "theirs"),
        ("sitewide_link", d("supplies"), "ours"),
        ("links_page", w["n1"].url("/links"), "theirs"),
        ("links_page", w["n2"].url("/links"), "theirs"),
        ("link_network", ", ".join(sorted([d("n1"), d("n2"), d("n3")])), ""),
        ("partner_not_indexable", w["blog"].url("/feeding"), "theirs"),
        ("unrelated_partner", d("insure"), "theirs"),
        ("paid_link_followed", d("review"), "theirs"),
        ("one_sided", d("gone"), "ours"),
    }
    # The clean partner ("mill") and the three-way partners appear only in the reciprocal share.
    for role in ("mill", "c1"):
        assert [f.code.value for f in planted.findings if d(role) in (f.subject, *f.domains)] in (
            [],
            ["reciprocal_share"],
        )


async def test_reciprocal_pairs_and_the_three_way_cycle_with_their_pages(
    planted: AuditReport, world: World
) -> None:
    w, d = world, world.domain
    assert [p.domain for p in planted.pairs] == [d("mill"), d("supplies"), d("insure")]
    mill = planted.pairs[0]
    assert {link.page_url for link in mill.ours} == {w.ours.url("/partners")}
    assert [k.source_url for k in mill.theirs] == [w["mill"].url("/flour")]
    assert mill.agreement_ids == ("1",)
    [cycle] = planted.cycles
    assert cycle.domains == ("127.0.0.1", d("c1"), d("c2")) and cycle.involves_us
    us_c1, c1_c2, c2_us = cycle.edges
    assert (w.ours.url("/partners"), w["c1"].url("/"), "our page") in us_c1.pages
    assert any(s == w["c1"].url("/") and t == w["c2"].url("/bread") for s, t, _ in c1_c2.pages)
    assert any(s == w["c2"].url("/bread") for s, _, _ in c2_us.pages)


async def test_each_finding_carries_its_evidence(planted: AuditReport, world: World) -> None:
    w, d = world, world.domain
    by = {(f.code, f.subject, f.side): f for f in planted.findings}
    share = by[(FindingCode.RECIPROCAL_SHARE, "127.0.0.1", "")]
    assert dict(share.metrics) == {
        "reciprocal_domains": 3,
        "referring_domains": 8,
        "share": 0.375,
        "threshold": 0.3,
    }
    assert share.domains == (d("mill"), d("supplies"), d("insure"))
    anchor = by[(FindingCode.OVER_OPTIMISED_ANCHOR, KEYWORD, "")]
    assert set(anchor.domains) == {d("review"), d("n3"), d("c2")}
    assert w["c2"].url("/bread") in anchor.urls
    sitewide = by[(FindingCode.SITEWIDE_LINK, d("supplies"), "ours")]
    assert sitewide.metric("pages") == 5 and sitewide.metric("crawled_pages") == 5
    footer = by[(FindingCode.RISKY_PLACEMENT, d("supplies"), "theirs")]
    assert footer.urls == (w["supplies"].url("/"),) and footer.metric("placements") == "footer"
    links = by[(FindingCode.LINKS_PAGE, w["n1"].url("/links"), "theirs")]
    assert links.metric("external_links") == 36  # 33 fillers, us, n2, n3
    network = by[(FindingCode.LINK_NETWORK, f"{d('n1')}, {d('n2')}, {d('n3')}", "")]
    assert set(network.urls) == {w["n1"].url("/links"), w["n2"].url("/links")}
    noindex = by[(FindingCode.PARTNER_NOT_INDEXABLE, w["blog"].url("/feeding"), "theirs")]
    assert noindex.metric("reasons") == "noindex" and noindex.agreement_ids == ("5",)
    unrelated = by[(FindingCode.UNRELATED_PARTNER, d("insure"), "theirs")]
    relevance = unrelated.metric("relevance")
    assert isinstance(relevance, float) and relevance < 0.1
    paid = by[(FindingCode.PAID_LINK_FOLLOWED, d("review"), "theirs")]
    assert paid.agreement_ids == ("4",) and paid.metric("rel") == "none"
    one_sided = by[(FindingCode.ONE_SIDED, d("gone"), "ours")]
    assert one_sided.urls == (w.ours.url("/partners"), w["gone"].url("/"))
    assert "lost link_removed" in one_sided.summary
    # On-topic partners score at or above the threshold: no flag, and the score is in the report.
    scores = {p.domain: p.relevance for p in planted.partner_pages if p.relevance is not None}
    assert {d(r) for r in ("mill", "supplies", "review", "blog", "c2", "insure")} <= set(scores)
    related = {d(r) for r in ("mill", "supplies", "review", "blog", "c2")}
    assert all((scores[domain] or 0) >= 0.1 for domain in related), scores


async def test_the_crawl_obeys_robots_and_collects_outbound_links(planted: AuditReport, world: World) -> None:
    w, crawl = world, planted.crawl
    assert crawl.discovery.value == "sitemap" and crawl.sitemaps_read == [w.ours.url("/sitemap.xml")]
    assert sorted(p.final_url for p in crawl.html_pages) == sorted(w.ours.url(p) for p in OUR_PATHS)
    assert crawl.robots_disallowed == [w.ours.url("/private/notes")]
    assert w.ours.hits_for("/private/notes") == []
    assert crawl.stopped_early is None
    footer = [o for o in crawl.outbound if o.domain == w.domain("supplies")]
    assert len(footer) == 5 and {o.placement.value for o in footer} == {"footer"}
    [mill] = [o for o in crawl.outbound if o.domain == w.domain("mill")]
    assert (mill.page_url, mill.anchor, mill.rel) == (w.ours.url("/partners"), "stone-ground flour", ())
    assert all(o.domain != "127.0.0.99" for o in crawl.outbound)


async def test_report_json_text_and_csv(planted: AuditReport) -> None:
    data = json.loads(planted.to_json_text())
    assert data["profile"]["reciprocal_share"] == 0.375
    assert data["crawl"]["robots_disallowed"]["count"] == 1
    assert len(data["findings"]) == len(planted.findings) == 12
    assert data["counts"]["links_page"] == 2
    text = render_audit_text(planted)
    assert "Three-way cycles (1):" in text
    assert "127.0.0.1 -> 127.0.0.21 -> 127.0.0.22 -> 127.0.0.1" in text
    assert "3 reciprocal (38%; flagged above 30%)" in text
    rows = list(csv.reader(io.StringIO(findings_csv(planted))))
    assert rows[0][:4] == ["kind", "code", "severity", "subject"]
    assert [row[0] for row in rows[1:]] == ["finding"] * 12 + ["reciprocal_pair"] * 3 + ["cycle"]
    assert planted.top_findings(3)[0].severity.value == "high"


async def test_findings_become_prune_proposals_that_a_person_decides(
    planted: AuditReport, engine: Engine
) -> None:
    proposals = await propose_prunes(engine, planted)
    by_agreement = {p.agreement_id: {r.code for r in p.reasons} for p in proposals}
    # insure (#3): off-topic; blog (#5): not indexable. The network and "gone" have no agreement.
    assert by_agreement == {"3": {"audit_unrelated_partner"}, "5": {"audit_partner_not_indexable"}}
    assert (await engine.agreements.get("3")).pruned_at is None  # the audit prunes nothing
    # The rules run again on the next recheck and keep the audit's reasons on the open proposals.
    await engine.recheck()
    assert {"3", "5"} <= {p.agreement_id for p in await engine.prune.open_proposals()}
    insure = next(p for p in proposals if p.agreement_id == "3")
    decision = await engine.prune.decide(insure.id, approve=True, user="U0OWNER", is_admin=False)
    assert decision.outcome is Outcome.APPROVED
    assert (await engine.agreements.get("3")).pruned_at is not None
    again = await propose_prunes(engine, planted)  # a pruned agreement gets no new proposal
    assert {p.agreement_id for p in again} == {"5"}
    assert (await engine.prune.get(insure.id)).status is ProposalStatus.APPROVED  # type: ignore[union-attr]


# -- a clean profile ---------------------------------------------------------------------------------------


async def test_a_clean_partner_produces_no_flag(engine: Engine, ours: LocalSite, partner: LocalSite) -> None:
    ours.html("/", html(main_text(OUR_TOPIC, a(partner.url("/flour"), "stone-ground flour")), title="Crumb"))
    partner.html("/flour", html(main_text(RELATED["mill"], a(ours.url("/"), "Crumb Club"))))
    links = (
        LinkInput(ours.url("/"), partner.url("/flour"), "ours"),
        LinkInput(partner.url("/flour"), ours.url("/")),
    )
    await engine.agreements.add(AgreementInput("Mill", partner.url("/"), "U0OWNER", links))
    await engine.recheck()
    report = await audit_site(engine, ours.url("/"), settings=BRAND)
    assert report.findings == ()
    assert [p.domain for p in report.pairs] == [partner.host]
    assert report.cycles == ()
    assert report.profile.share == 1.0  # one referring domain: reported, too few to flag
    assert "No red flags found." in render_audit_text(report)
    assert report.crawl.discovery.value == "links"  # no sitemap: links from the home page


# -- link velocity -----------------------------------------------------------------------------------------


async def test_a_burst_of_new_referring_domains_is_flagged(
    engine: Engine, ours: LocalSite, clock: Clock
) -> None:
    ours.html("/", html(main_text(OUR_TOPIC)))
    start = clock()

    async def first_seen_live(host: str, weeks: int) -> None:
        source = f"http://{host}:9/page"
        await engine.track(source, ours.url("/"))
        [backlink] = [b for b in await engine.tracked() if b.source_url == source]
        live = InboundResult(source, ours.url("/"), InboundVerdict.LIVE, "link_present", anchor="Crumb Club")
        # The registry's own recording: state live, first_live_at and a `new` change at that moment.
        await engine.backlinks.record([(backlink, live)], now=start + timedelta(weeks=weeks, hours=1))

    for week in range(8):  # one new referring domain a week for eight weeks
        await first_seen_live(f"127.0.1.{week + 1}", week)
    for n in range(4):  # then four in week 8: below the minimum of five, no flag
        await first_seen_live(f"127.0.2.{n + 1}", 8)
    clock.advance(days=8 * 7 + 2)
    calm = await audit_site(engine, ours.url("/"), settings=BRAND)
    assert calm.findings == ()

    for n in range(4, 6):  # two more that week: six, above 3x the median of one
        await first_seen_live(f"127.0.2.{n + 1}", 8)
    report = await audit_site(engine, ours.url("/"), settings=BRAND)
    [burst] = report.findings
    assert burst.code is FindingCode.LINK_BURST
    assert burst.subject == f"week of {(start + timedelta(weeks=8)).date().isoformat()}"
    assert burst.metric("new_domains") == 6 and burst.metric("median") == 1
    assert set(burst.domains) == {f"127.0.2.{n}" for n in range(1, 7)}


# -- the crawl ---------------------------------------------------------------------------------------------


async def test_links_are_followed_breadth_first_and_robots_disallow_is_obeyed(
    engine: Engine, ours: LocalSite, partner: LocalSite
) -> None:
    ours.route("/robots.txt", _text("User-agent: linkpact\nDisallow: /b\n\nUser-agent: *\nDisallow:\n"))
    aside = f"<aside>{a(partner.url('/x'), 'Partner X', 'nofollow')}</aside>"
    ours.html("/", html(main_text("home", a("/a", "A"), a("/doc.pdf", "PDF")) + aside))
    ours.html("/a", html(main_text("a", a("/b", "B"), a(partner.url("/y#top"), "Partner Y"))))
    ours.html("/b", html(main_text("b", a("/c", "C"))))
    ours.html("/c", html(main_text("c")))
    report = await audit_site(engine, ours.url("/"))
    crawl = report.crawl
    assert crawl.discovery.value == "links"
    assert [p.final_url for p in crawl.pages] == [ours.url("/"), ours.url("/a")]
    assert crawl.robots_disallowed == [ours.url("/b")] and ours.hits_for("/b") == []
    assert ours.hits_for("/doc.pdf") == []  # not a page
    outbound = [(o.page_url, o.url, o.anchor, o.rel, o.placement.value) for o in crawl.outbound]
    assert outbound == [
        (ours.url("/"), partner.url("/x"), "Partner X", ("nofollow",), "aside"),
        (ours.url("/a"), partner.url("/y"), "Partner Y", (), "main"),
    ]
    assert crawl.stopped_early is None and report.findings == ()


async def test_page_cap_and_time_cap_say_they_stopped_early(engine: Engine, ours: LocalSite) -> None:
    ours.html("/", html(main_text("home", *(a(f"/p{i}", f"P{i}") for i in range(10)))))
    for i in range(10):
        ours.html(f"/p{i}", html(main_text(f"page {i}")))
    capped = await audit_site(engine, ours.url("/"), max_pages=3)
    assert len(capped.crawl.pages) == 3 and capped.stopped_early is not None
    assert capped.stopped_early.value == "page_cap"
    assert "Stopped early at the page cap (3 pages)" in render_audit_text(capped)

    ticks = iter(range(10_000))  # every reading of the clock is one second later
    timed = await audit_site(engine, ours.url("/"), time_limit_s=2.5, clock=lambda: float(next(ticks)))
    assert timed.stopped_early is not None and timed.stopped_early.value == "time_cap"
    assert 0 < len(timed.crawl.pages) < 11
    assert timed.to_json()["crawl"]["stopped_early"] == "time_cap"
    assert "Stopped early at the time cap (2.5 s)" in render_audit_text(timed)


async def test_sitemap_index_with_a_gzip_child_and_crawl_delay(
    engine: Engine, ours: LocalSite, partner: LocalSite
) -> None:
    def urlset(*paths: str) -> bytes:
        locs = "".join(f"<url><loc>{p}</loc></url>" for p in paths)
        return f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'.encode()

    index = (
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{ours.url('/s1.xml.gz')}</loc></sitemap><sitemap><loc>/s2.xml</loc></sitemap>"
        "</sitemapindex>"
    )
    ours.route("/robots.txt", _text("User-agent: *\nCrawl-delay: 2\nSitemap: /index.xml\n"))
    ours.route("/index.xml", _bytes(index.encode()))
    ours.route(
        "/s1.xml.gz", _bytes(gzip.compress(urlset(ours.url("/p1"), ours.url("/p2"))), "application/gzip")
    )
    ours.route("/s2.xml", _bytes(urlset(ours.url("/p3"), partner.url("/elsewhere"))))
    ours.html("/", html(main_text("home")))
    for path in ("/p1", "/p2", "/p3"):
        ours.html(path, html(main_text(path)))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    report = await audit_site(engine, ours.url("/"), sleep=sleep)
    crawl = report.crawl
    assert crawl.discovery.value == "sitemap" and crawl.sitemap_urls == 3
    assert crawl.sitemaps_read == [ours.url("/index.xml"), ours.url("/s1.xml.gz"), ours.url("/s2.xml")]
    assert [p.final_url for p in crawl.pages] == [ours.url(p) for p in ("/", "/p1", "/p2", "/p3")]
    assert partner.hits == []  # an off-site URL in our sitemap is not crawled
    assert crawl.crawl_delay_s == 2.0 and slept == [2.0, 2.0, 2.0]


async def test_an_unreadable_robots_txt_means_nothing_is_crawled(engine: Engine, ours: LocalSite) -> None:
    ours.route("/robots.txt", _text("down", status=503))
    ours.html("/", html(main_text("home")))
    report = await audit_site(engine, ours.url("/"))
    assert report.crawl.pages == [] and ours.hits_for("/") == []
    assert any("RFC 9309" in note for note in report.notes)


async def test_bad_input_is_an_input_error(engine: Engine) -> None:
    with pytest.raises(InputError):
        await audit_site(engine, "ftp://ours.example/")
    with pytest.raises(InputError):
        await audit_site(engine, "http://127.0.0.1:9/", max_pages=0)
    assert parse_site("<https://ours.example|ours.example>") == "https://ours.example"
    assert parse_site("ours.example") == "https://ours.example"


# -- sitemaps and anchors, without a network ----------------------------------------------------------


def test_sitemap_parsing_is_safe_and_keeps_what_precedes_a_break() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<urlset><url><loc>&b;</loc></url></urlset>"
    )
    assert parse_sitemap(laughs, max_bytes=10_000, max_locs=10).locs == ()  # entities are refused
    cut = (
        b"<urlset><url><loc>https://o.example/a</loc></url><url><loc>https://o.example/b</loc></url><url><lo"
    )
    sitemap = parse_sitemap(cut, max_bytes=10_000, max_locs=10)
    assert sitemap.kind is SitemapKind.URLSET and sitemap.truncated
    assert sitemap.locs == ("https://o.example/a", "https://o.example/b")
    text = parse_sitemap(
        b"https://o.example/a\n\nnot a url\nhttps://o.example/b\n", max_bytes=100, max_locs=1
    )
    assert (text.kind, text.locs, text.truncated) == (SitemapKind.TEXT, ("https://o.example/a",), True)
    bomb = gzip.compress(b"\0" * 20_000_000)
    inflated, truncated = gunzip_capped(bomb, 1_000_000)
    assert truncated and len(inflated) == 1_000_000
    assert (
        parse_sitemap(b"<html><body>not found</body></html>", max_bytes=100, max_locs=5).kind
        is SitemapKind.UNKNOWN
    )


def test_anchor_kinds_and_brand_terms() -> None:
    brand = brand_terms_for("our-shop.co.uk")
    assert brand == ("our shop",)
    assert brand_terms_for("127.0.0.1") == ()
    assert brand_terms_for("x.example", ["Crumb Club!"]) == ("crumb club",)
    generic = AuditSettings().generic_anchors
    assert anchor_kind("Our Shop", brand, generic) == "brand"
    assert anchor_kind("ourshop reviews", brand, generic) == "brand"
    assert anchor_kind("https://our-shop.co.uk/", brand, generic) == "url"
    assert anchor_kind("www.our-shop.co.uk", brand, generic) == "url"
    assert anchor_kind("Click here!", brand, generic) == "generic"
    assert anchor_kind("this guide", brand, generic) == "generic"
    assert anchor_kind("best running shoes", brand, generic) == "keyword"
    assert anchor_kind("  ", brand, generic) == "empty"


# -- the command line ----------------------------------------------------------------------------------------


def test_cli_audit_json_csv_and_exit_codes(ours: LocalSite, partner: LocalSite, tmp_path: Path) -> None:
    ours.html("/", html(main_text(OUR_TOPIC, a(partner.url("/"), "a partner"))))
    out = tmp_path / "findings.csv"
    proc = run_cli(
        "audit", ours.url("/"), "--json", "--pages", "5", "--csv", str(out), db=tmp_path / "db.json"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["crawl"]["pages"] == [ours.url("/")]
    assert [o["url"] for o in data["outbound"]] == [partner.url("/")]
    assert data["findings"] == [] and data["crawl"]["max_pages"] == 5
    assert out.read_text(encoding="utf-8").splitlines()[0].startswith("kind,code,severity")
    text = run_cli("audit", ours.url("/"), "-q", db=tmp_path / "db.json")
    assert text.returncode == 0 and "No red flags found." in text.stdout
    bad = run_cli("audit", ours.url("/"), "--pages", "0", db=tmp_path / "db.json")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "bot.cli", "audit", "http://127.0.0.1:9/"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "LINKPACT_DB": str(tmp_path / "db.json")},
    )  # fmt: skip
    assert refused.returncode == 2 and "refused" in refused.stderr
