"""The whole pipeline (fetch -> extract -> resolve -> filter -> check -> report, plus inbound) against
real local HTTP servers on loopback addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.config import FetchSettings, Limits, Settings, Timeout
from bot.engine import Engine, InputError, Progress
from bot.models import InboundVerdict, Report, Verdict
from bot.net.resolver import StaticResolver
from bot.store import Tx
from tests.support.site import LocalSite

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def make_settings(tmp_path: Path, **limits: int) -> Settings:
    return Settings(
        fetch=FetchSettings(
            timeout=Timeout(connect_s=2, read_s=2, total_s=3),
            limits=Limits(retries=1, retry_backoff_s=0.01, **limits),
            allow_networks=LOOPBACK,
        ),
        db_path=tmp_path / "linkpact.json",
    )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = Engine.create(make_settings(tmp_path), resolver=StaticResolver({"internal.test": ["10.0.0.5"]}))
    try:
        yield eng
    finally:
        await eng.aclose()


def outbound_by_href(report: Report) -> dict[str, tuple[str, str]]:
    return {r.link.href: (r.check.verdict.value, r.check.reason) for r in report.outbound}


def serve_link_farm(site: LocalSite, partner: LocalSite) -> None:
    site.html("/ok", "<p>fine</p>")
    site.redirect("/moved", "/moved-again", status=301)
    site.redirect("/moved-again", site.url("/final"), status=302)
    site.html("/final", "<p>the guide moved here</p>")
    site.status("/gone", 404)
    site.status("/removed", 410)
    site.redirect("/loop-a", "/loop-b")
    site.redirect("/loop-b", "/loop-a")
    site.status("/wall", 403, headers={"cf-mitigated": "challenge"})

    async def no_head(request: web.Request) -> web.StreamResponse:
        if request.method == "HEAD":
            return web.Response(status=405)
        return web.Response(text="GET works", content_type="text/html")

    site.route("/no-head", no_head)
    partner.html("/about", "<p>partner</p>")
    site.html(
        "/resources",
        f"""<!doctype html><html><head><title> Our   resources </title></head><body>
        <header><nav><a href="/ok">Home</a></nav></header>
        <main>
          <p>Read <a href="/ok">the guide</a> and <a href="/moved">the old guide</a>.</p>
          <a href="/gone">a dead page</a> <a href="/removed">a removed page</a>
          <a href="/no-head">head not allowed</a> <a href="/wall">walled</a>
          <a href="/loop-a">loop</a>
          <a href="{partner.url("/about")}" rel="sponsored nofollow">Partner</a>
          <a href="mailto:team@example.com">mail us</a> <a href="tel:+100">call</a>
          <a href="javascript:void(0)">js</a>
          <a href="http://169.254.169.254/latest/meta-data/">metadata</a>
          <a href="http://10.1.2.3/admin">private</a>
          <a href="http://nxdomain.test/">nowhere</a>
          <a href="#top"><img src="/logo.png" alt="Back to top"></a>
        </main>
        <footer><a href="/ok">footer home</a></footer>
        </body></html>""",
    )


async def test_outbound_verdicts_over_a_local_link_farm(
    engine: Engine, site: LocalSite, partner: LocalSite
) -> None:
    serve_link_farm(site, partner)
    progress: list[Progress] = []
    report = await engine.check(site.url("/resources"), on_progress=progress.append)

    assert report.page.status == 200
    assert report.page.indexable
    assert report.page.title == "Our resources"
    verdicts = outbound_by_href(report)
    assert verdicts["/ok"] == ("ok", verdicts["/ok"][1])
    assert verdicts["/moved"][0] == "ok"
    assert verdicts["/gone"] == ("broken", "http_404")
    assert verdicts["/removed"] == ("broken", "http_410")
    assert verdicts["/no-head"][0] == "ok"
    assert verdicts["/wall"][0] == "unknown"
    assert verdicts["/loop-a"] == ("broken", "redirect_loop")
    assert verdicts["mailto:team@example.com"] == ("skipped", "mailto")
    assert verdicts["tel:+100"] == ("skipped", "tel")
    assert verdicts["javascript:void(0)"] == ("skipped", "javascript")
    assert verdicts["http://169.254.169.254/latest/meta-data/"] == ("skipped", "blocked_address")
    assert verdicts["http://10.1.2.3/admin"] == ("skipped", "blocked_address")
    assert verdicts["http://nxdomain.test/"] == ("broken", "dns_not_found")
    assert verdicts["#top"][0] == "ok"

    moved = next(r for r in report.outbound if r.link.href == "/moved")
    assert [hop.status for hop in moved.check.redirects] == [301, 302]
    partner_link = next(r for r in report.outbound if r.link.href.endswith("/about"))
    assert partner_link.link.rel == {"sponsored", "nofollow"}
    assert not partner_link.internal
    assert next(r for r in report.outbound if r.link.href == "/gone").internal
    image = next(r for r in report.outbound if r.link.href == "#top")
    assert image.link.anchor == "Back to top"
    placements = [r.link.placement.value for r in report.outbound if r.link.href == "/ok"]
    assert placements == ["nav", "main", "footer"]

    # /ok occurs three times and is requested once; #top reuses the page's own fetch.
    assert len(site.hits_for("/ok")) == 1
    assert len(site.hits_for("/resources")) == 1
    assert report.has_problems
    assert progress[0].phase == "fetching page" and progress[-1].phase == "done"
    counts = report.verdict_counts()
    assert counts["broken"] == 4 and counts["skipped"] == 5


async def test_a_refused_url_typed_by_the_user_is_an_input_error(engine: Engine) -> None:
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "ftp://example.com/file",
        "http://user:pw@127.0.0.1/",
        "http://internal.test/",  # resolves to a private address
        "not a url",
    ):
        with pytest.raises(InputError):
            await engine.check(url)


async def test_a_page_that_is_not_html_has_no_links_and_is_not_indexable(
    engine: Engine, site: LocalSite
) -> None:
    async def pdf(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"%PDF-1.4", content_type="application/pdf")

    site.route("/file.pdf", pdf)
    report = await engine.check(site.url("/file.pdf"))
    assert report.outbound == ()
    assert report.page.not_indexable_reasons == ("not_html",)
    assert not report.has_problems


async def test_a_missing_page_is_a_problem(engine: Engine, site: LocalSite) -> None:
    report = await engine.check(site.url("/nothing-here"))
    assert report.page.status == 404
    assert report.page.not_indexable_reasons == ("page_gone",)
    assert report.has_problems


def serve_partner_pages(partner: LocalSite, target: str, old_target: str, elsewhere: str) -> None:
    link = f'<main><p>We like <a href="{target}">Our resources</a>.</p></main>'
    partner.html("/links-to-us", f"<html><body>{link}</body></html>")
    partner.html(
        "/nofollow", f'<html><body><main><a rel="nofollow" href="{target}#x">them</a></main></body></html>'
    )
    partner.html("/footer", f'<html><body><footer><a href="{target}">them</a></footer></body></html>')
    partner.html("/removed", "<html><body><main>No links any more.</main></body></html>")
    partner.html(
        "/noindex", f'<html><head><meta name="robots" content="noindex"></head><body>{link}</body></html>'
    )
    partner.html(
        "/canonical",
        f'<html><head><link rel="canonical" href="{elsewhere}"></head><body>{link}</body></html>',
    )
    partner.html("/blocked-by-robots", f"<html><body>{link}</body></html>")
    partner.html(
        "/robots.txt",
        "User-agent: Googlebot\nDisallow: /blocked-by-robots\n\nUser-agent: *\nAllow: /\n",
    )
    partner.html("/redirect-link", f'<html><body><a href="{old_target}">old link</a></body></html>')
    partner.status("/gone", 404)
    partner.status("/walled", 403, headers={"cf-mitigated": "challenge"})


async def test_inbound_backlinks_live_lost_and_unknown(
    engine: Engine, site: LocalSite, partner: LocalSite
) -> None:
    target = site.url("/resources")
    site.html("/resources", "<html><body><main>Our resources</main></body></html>")
    site.redirect("/old-resources", target)
    serve_partner_pages(partner, target, site.url("/old-resources"), partner.url("/other"))
    expected = {
        "/links-to-us": ("live", "link_present"),
        "/nofollow": ("live", "link_present"),
        "/footer": ("live", "link_present"),
        "/removed": ("lost", "link_removed"),
        "/noindex": ("lost", "noindex"),
        "/canonical": ("lost", "canonicalized_away"),
        "/blocked-by-robots": ("lost", "robots_blocked"),
        "/redirect-link": ("live", "via_redirect"),
        "/gone": ("lost", "page_gone"),
        "/walled": ("unknown", "bot_wall"),
    }
    for path in expected:
        assert await engine.track(partner.url(path), target, added_by="U1")
    assert not await engine.track(partner.url("/links-to-us"), target + "/")  # same backlink

    report = await engine.check(target)

    got = {r.source_url.removeprefix(partner.origin): (r.verdict.value, r.reason) for r in report.inbound}
    assert got == expected
    by_path = {r.source_url.removeprefix(partner.origin): r for r in report.inbound}
    assert by_path["/links-to-us"].anchor == "Our resources"
    assert by_path["/links-to-us"].placement is not None
    assert by_path["/links-to-us"].placement.value == "main"
    assert by_path["/nofollow"].rel == {"nofollow"}
    assert by_path["/footer"].placement is not None and by_path["/footer"].placement.value == "footer"
    assert by_path["/redirect-link"].via_redirect
    assert report.inbound_counts() == {"live": 4, "lost": 5, "unknown": 1}
    assert report.has_problems  # lost backlinks

    # Each source page was fetched once; the latest state is stored on the tracked backlink.
    assert len(partner.hits_for("/links-to-us")) == 1
    tracked = {b.source_url.removeprefix(partner.origin): b for b in await engine.tracked(target)}
    assert tracked["/removed"].last_verdict == InboundVerdict.LOST.value
    assert tracked["/removed"].last_reason == "link_removed"


async def test_track_untrack_and_bad_input(engine: Engine, site: LocalSite) -> None:
    target = site.url("/")
    assert await engine.track("http://127.0.0.2:9/page", target)
    assert len(await engine.tracked()) == 1
    assert await engine.untrack("http://127.0.0.2:9/page/", target)  # same page, trailing slash
    assert await engine.tracked() == []
    assert not await engine.untrack("http://127.0.0.2:9/page", target)
    with pytest.raises(InputError):
        await engine.track("mailto:x@example.com", target)
    with pytest.raises(InputError):
        await engine.track(target, target)


async def test_run_summaries_keep_problems_not_every_ok_link(
    engine: Engine, site: LocalSite, partner: LocalSite
) -> None:
    serve_link_farm(site, partner)
    await engine.check(site.url("/resources"))
    await engine.flush()  # the run summary is written in the background
    runs = await engine.store.find("runs")
    assert len(runs) == 1
    problems = {p["url"] for p in runs[0]["problems"]}
    assert site.url("/gone") in problems
    assert site.url("/ok") not in problems
    assert runs[0]["outbound"]["broken"] == 4
    assert all(p["verdict"] in (Verdict.BROKEN.value, Verdict.UNKNOWN.value) for p in runs[0]["problems"])


LAZY_MODULES = ("bot.agreements.service", "bot.monitoring.recheck", "bot.monitoring.prune")


def test_a_check_never_imports_agreements_monitoring_or_pruning(tmp_path: Path, site: LocalSite) -> None:
    # They cost about 0.3 s of start-up (docs/benchmarks.md) and a check does not use them.
    site.html("/page", '<a href="/ok">ok</a>')
    site.html("/ok", "fine")
    script = f"""
import asyncio, ipaddress, sys
from pathlib import Path
from bot.config import FetchSettings, Settings
from bot.engine import Engine

async def main():
    settings = Settings(
        fetch=FetchSettings(allow_networks=(ipaddress.ip_network("127.0.0.0/8"),)),
        db_path=Path({str(tmp_path / "db.json")!r}),
    )
    engine = Engine.create(settings)
    try:
        report = await engine.check({site.url("/page")!r})
    finally:
        await engine.aclose()
    print(report.verdict_counts()["ok"], *[m for m in {LAZY_MODULES!r} if m in sys.modules])

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1"]


async def test_agreements_monitor_and_prune_are_built_once_on_first_use(engine: Engine) -> None:
    from bot.agreements.service import AgreementService
    from bot.monitoring.prune import PruneBook
    from bot.monitoring.recheck import Monitor

    assert isinstance(engine.monitor, Monitor) and engine.monitor is engine.monitor
    assert isinstance(engine.prune, PruneBook)
    assert isinstance(engine.agreements, AgreementService) and engine.agreements is engine.agreements
    # They stay plain attributes for callers (tests replace them with stand-ins).
    stand_in = object()
    engine.monitor = stand_in  # type: ignore[assignment]
    assert engine.monitor is stand_in


async def test_the_filter_stage_and_the_client_share_one_address_policy(engine: Engine) -> None:
    # Each link is vetted by the filter and again on its first hop; one policy means one memo of it.
    assert engine.policy is engine.client.policy
    assert engine.policy.vet_url("http://169.254.169.254/") is not None  # still the policy it was


async def test_a_check_answers_while_a_long_write_holds_the_store(engine: Engine, site: LocalSite) -> None:
    """/linkcheck during a big import: neither its reads nor its run summary wait for the import's write."""
    site.html("/", '<a href="/a">a</a>')
    site.html("/a", "<p>a</p>")
    inside, release = threading.Event(), threading.Event()

    def long_write(tx: Tx) -> None:
        tx.insert("imports", {"rows": 100_000})
        inside.set()
        release.wait(20)

    writer = asyncio.create_task(engine.store.transact(long_write))
    try:
        assert await asyncio.to_thread(inside.wait, 10)
        report = await asyncio.wait_for(engine.check(site.url("/")), timeout=10)
        assert report.verdict_counts()["ok"] == 1
        assert not writer.done()  # the check finished while the write was still in progress
    finally:
        release.set()
        await writer
    await engine.flush()
    assert len(await engine.store.find("runs")) == 1
