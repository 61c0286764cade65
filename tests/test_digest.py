"""A week of simulated changes produces one correct digest; posting it is exactly once per channel."""

from __future__ import annotations

import pytest

from bot.agreements.model import AgreementInput, LinkInput
from bot.engine import Engine
from bot.monitoring.digest import (
    DigestLedger,
    build_digest,
    digest_to_json,
    render_digest_text,
    sparkline,
    trend_chart_png,
)
from tests.support.clock import Clock
from tests.support.site import LocalSite
from tests.test_agreements import exchange, main_link, page

# The product on both store backends: the embedded file and PostgreSQL.
pytestmark = pytest.mark.backends("tinydb", "postgres")


def linking(target: str, anchor: str = "Our kit") -> str:
    return page(main_link(target, anchor))


async def simulate_week(
    engine: Engine, ours: LocalSite, partner: LocalSite, third: LocalSite, clock: Clock
) -> None:
    product = ours.url("/product")
    # Tracked backlinks from two referring domains.
    partner.html("/blog", linking(product))
    third.html("/review", linking(product))
    third.html("/news", linking(product))
    for source in (partner.url("/blog"), third.url("/review"), third.url("/news")):
        await engine.track(source, product)
    # An agreement the partner never delivers on (one-sided after the deadline, then proposed for pruning).
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page("<main>not yet</main>"))
    await engine.agreements.add(exchange(ours, partner))
    # An agreement still pending, overdue in a week: neither side has linked.
    await engine.agreements.add(
        AgreementInput(
            partner_name="Slow Partner",
            partner_site=third.url("/"),
            owner="U0OTHER",
            links=(LinkInput(third.url("/later"), ours.url("/guide"), direction="theirs"),),
            deadline=(clock().date().replace(day=clock().date().day + 2)).isoformat(),
        )
    )
    await engine.recheck()  # day 0: the baseline

    clock.advance(1)
    third.html("/review", page("<main>link removed</main>"))
    third.html("/news", page("<main>link removed</main>"))
    await engine.recheck()
    clock.advance(1)
    await engine.recheck()  # both losses confirmed: third has no live link left
    clock.advance(1)
    partner.html("/blog", page("<main>gone for a day</main>"))  # a flap: never reported
    await engine.recheck()
    clock.advance(1)
    partner.html("/blog", linking(product))
    await engine.recheck()
    clock.advance(21)  # past the deadline and the 14-day grace period
    await engine.recheck()


async def test_a_week_of_changes_makes_one_correct_digest(
    engine: Engine, ours: LocalSite, partner: LocalSite, third: LocalSite, clock: Clock
) -> None:
    start = clock()
    await simulate_week(engine, ours, partner, third, clock)
    digest = await build_digest(engine.store, engine.agreements, engine.prune, until=clock(), since=start)

    assert {(r.source_url, r.reason) for r in digest.lost} == {
        (third.url("/review"), "link_removed"),
        (third.url("/news"), "link_removed"),
    }
    assert digest.restored == ()
    assert digest.lost_referring_domains == ()  # no snapshot before the period: nothing to compare with
    assert "127.0.0.2" in digest.new_referring_domains and "127.0.0.3" not in digest.new_referring_domains
    assert [a.partner for a in digest.one_sided] == ["Partner Bakery"]
    assert [a.partner for a in digest.overdue] == ["Slow Partner"]
    assert [p.partner for p in digest.proposals] == ["Partner Bakery"]
    assert {r.code for r in digest.proposals[0].reasons} == {"one_sided"}
    assert digest.totals["referring_domains"] == 1 and digest.totals["live_links"] == 1
    assert [t.week for t in digest.trend] == ["2026-W45", "2026-W48"]

    # Each agreement line says when the agreement was last checked (the latest recheck, 21 days on).
    last = clock().isoformat(timespec="seconds")
    assert [a.last_checked for a in (*digest.one_sided, *digest.overdue)] == [last, last]
    text = render_digest_text(digest)
    assert (
        "Lost links (2)" in text and "One-sided agreements (1)" in text and "Proposed for pruning (1)" in text
    )
    assert f"owner U0OTHER, last checked {last[:10]} {last[11:16]} UTC)" in text
    data = digest_to_json(digest)
    assert data["overdue"][0]["last_checked"] == last
    assert data["period"] == "2026-W48" and data["sparkline"].startswith("referring domains ")
    png = trend_chart_png(digest)
    assert png is not None and png.startswith(b"\x89PNG")


async def test_lost_referring_domain_against_the_previous_digest(
    engine: Engine, ours: LocalSite, partner: LocalSite, third: LocalSite, clock: Clock
) -> None:
    product = ours.url("/product")
    third.html("/review", linking(product))
    await engine.track(third.url("/review"), product)
    await engine.recheck()
    ledger = DigestLedger(engine.store, clock=clock)
    first = await build_digest(engine.store, engine.agreements, engine.prune, until=clock())
    assert first.new_referring_domains == ("127.0.0.3",)
    await ledger.mark_posted(first, "C0DIGEST")

    clock.advance(7)
    third.html("/review", page("<main>bye</main>"))
    await engine.recheck()
    clock.advance(1)
    await engine.recheck()
    second = await build_digest(engine.store, engine.agreements, engine.prune, until=clock())
    assert second.since == first.until  # picks up where the last posted digest ended
    assert second.lost_referring_domains == ("127.0.0.3",)
    assert second.new_referring_domains == ()


async def test_the_ledger_posts_once_per_period_and_channel(engine: Engine, clock: Clock) -> None:
    ledger = DigestLedger(engine.store, clock=clock)
    digest = await build_digest(engine.store, engine.agreements, engine.prune, until=clock())
    assert digest.is_quiet
    assert not await ledger.posted(digest.period, "C1")
    await ledger.mark_posted(digest, "C1", ts="1.0")
    assert await ledger.posted(digest.period, "C1")
    assert not await ledger.posted(digest.period, "C2")  # a crash before C2 leaves C2 to do, C1 done


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([3, 3]) == "▁▁"
    assert sparkline([]) == ""
