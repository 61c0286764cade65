"""One URL, one identity: the spellings a browser requests as one URL are one link target, one fetch and
one tracked backlink, end to end against real local servers and a real TinyDB file."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.backlinks.registry import BACKLINKS_TABLE, LINK_KEYS_DOC, META_TABLE
from bot.config import FetchSettings, Limits, Settings, Timeout
from bot.engine import Engine
from bot.models import InboundVerdict, Verdict
from bot.net.resolver import StaticResolver
from bot.urls import LINK_KEY_VERSION, link_key
from tests.support.site import LocalSite

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
# An internationalised host name for our site, resolved to the local test server.
IDN_HOST = "bücher.test"
IDN_ASCII = "xn--bcher-kva.test"


def make_settings(tmp_path: Path) -> Settings:
    return Settings(
        fetch=FetchSettings(
            timeout=Timeout(connect_s=2, read_s=2, total_s=3),
            limits=Limits(retries=1, retry_backoff_s=0.01),
            allow_networks=LOOPBACK,
        ),
        db_path=tmp_path / "linkpact.json",
    )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = Engine.create(make_settings(tmp_path), resolver=StaticResolver({IDN_ASCII: ["127.0.0.1"]}))
    try:
        yield eng
    finally:
        await eng.aclose()


async def test_a_backlink_tracked_percent_encoded_is_live_on_a_page_linking_raw_unicode(
    engine: Engine, site: LocalSite, partner: LocalSite
) -> None:
    target = site.url("/caf%C3%A9")
    site.html("/café", "<p>café</p>")  # the server sees the decoded path
    partner.html("/raw", f'<main><a href="{site.url("/café")}">our café</a></main>')
    partner.html("/dots", f'<main><a href="{site.url("/menu/%2e%2E/caf%C3%A9")}">dots</a></main>')
    partner.html("/hex", f'<main><a href="{site.url("/caf%c3%a9")}">lower-case hex</a></main>')
    for path in ("/raw", "/dots", "/hex"):
        assert await engine.track(partner.url(path), target)
    assert not await engine.track(partner.url("/raw"), site.url("/café"))  # the same backlink

    report = await engine.check(site.url("/café"))

    got = {r.source_url.removeprefix(partner.origin): (r.verdict, r.reason) for r in report.inbound}
    assert got == {path: (InboundVerdict.LIVE, "link_present") for path in ("/raw", "/dots", "/hex")}


async def test_spellings_of_one_url_are_fetched_once(engine: Engine, site: LocalSite) -> None:
    site.html("/café", "<p>café</p>")
    spellings = [
        site.url("/café"),
        site.url("/caf%C3%A9"),
        site.url("/menu/%2e%2E/caf%C3%A9#top"),
        site.url("/menu\\..\\café"),
        f"HTTP://127.0.0.1:{site.port}/café",
    ]
    site.html("/page", "".join(f'<a href="{url}">{i}</a>' for i, url in enumerate(spellings)))

    report = await engine.check(site.url("/page"))

    assert [r.check.verdict for r in report.outbound] == [Verdict.OK] * len(spellings)
    assert {r.check.url for r in report.outbound} == {site.url("/caf%C3%A9")}
    assert len(site.hits_for("/café")) == 1


async def test_an_idn_link_is_requested_in_punycode_and_matches_its_punycode_spelling(
    engine: Engine, site: LocalSite, partner: LocalSite
) -> None:
    site.html("/", "<p>home</p>")
    partner.html("/links", f'<main><a href="http://{IDN_HOST.upper()}:{site.port}/">Bücher</a></main>')
    assert await engine.track(partner.url("/links"), f"http://{IDN_ASCII}:{site.port}/")

    report = await engine.check(partner.url("/links"))

    [outbound] = report.outbound
    assert outbound.check.verdict is Verdict.OK
    assert outbound.check.url == f"http://{IDN_ASCII}:{site.port}/"
    assert site.hits[0].headers["Host"] == f"{IDN_ASCII}:{site.port}"
    inbound = await engine.check(f"http://{IDN_HOST}:{site.port}/")
    assert [r.verdict for r in inbound.inbound] == [InboundVerdict.LIVE]


async def test_keys_stored_by_the_old_rules_are_recomputed(
    engine: Engine, site: LocalSite, partner: LocalSite
) -> None:
    # A database written before link keys followed the URL Standard: the raw Unicode path was the key.
    source, target = partner.url("/links"), site.url("/café")
    await engine.store.insert(
        BACKLINKS_TABLE,
        {
            "source_url": source,
            "target_url": target,
            "source_key": source,
            "target_key": target,
            "added_by": "U1",
            "added_at": "2025-01-01T00:00:00+00:00",
        },
    )
    site.html("/café", "<p>café</p>")
    partner.html("/links", f'<main><a href="{site.url("/caf%C3%A9")}">café</a></main>')

    report = await engine.check(site.url("/caf%C3%A9"))

    assert [(r.source_url, r.verdict) for r in report.inbound] == [(source, InboundVerdict.LIVE)]
    [doc] = await engine.store.find(BACKLINKS_TABLE)
    assert doc["target_key"] == link_key(site.url("/caf%C3%A9")) == site.url("/caf%C3%A9")
    marker = await engine.store.get(META_TABLE, LINK_KEYS_DOC)
    assert marker is not None and marker["version"] == LINK_KEY_VERSION
    assert not await engine.track(source, site.url("/caf%C3%A9"))  # still the same backlink


async def test_links_to_the_page_itself_reuse_its_fetch_whatever_the_spelling(
    engine: Engine, site: LocalSite
) -> None:
    site.html("/café", '<a href="#top">top</a> <a href="/caf%C3%A9">self</a> <a href="">empty</a>')

    report = await engine.check(f"HTTP://127.0.0.1:{site.port}/café")  # as typed

    assert [r.check.verdict for r in report.outbound] == [Verdict.OK] * 3
    assert len(site.hits_for("/café")) == 1
