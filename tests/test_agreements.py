"""Agreements verified in both directions against real local sites, with the clock injected."""

from __future__ import annotations

from datetime import date

import pytest

from bot.agreements.model import (
    Agreement,
    AgreementInput,
    AgreementInputError,
    AgreementState,
    LinkHealth,
    LinkInput,
)
from bot.engine import Engine
from bot.errors import InputError
from tests.support.clock import START, Clock
from tests.support.site import LocalSite

# The product on both store backends: the embedded file and PostgreSQL.
pytestmark = pytest.mark.backends("tinydb", "postgres")


async def check_until_confirmed(engine: Engine, clock: Clock, ref: str | None = None) -> Agreement:
    """A loss is confirmed on the second failing check at least 20 h after the first."""
    [first] = await engine.agreements.check([ref] if ref else None)
    assert first.state(clock().date()) is not AgreementState.BROKEN  # one failing check is only suspected
    clock.advance(hours=21)
    [second] = await engine.agreements.check([ref] if ref else None)
    return second


def page(*links: str, head: str = "") -> str:
    return f"<html><head>{head}</head><body>{''.join(links)}</body></html>"


def main_link(url: str, anchor: str, rel: str = "") -> str:
    rel_attr = f' rel="{rel}"' if rel else ""
    return f'<main><p>See <a href="{url}"{rel_attr}>{anchor}</a>.</p></main>'


def exchange(ours: LocalSite, partner: LocalSite, **overrides: object) -> AgreementInput:
    fields: dict[str, object] = {
        "partner_name": "Partner Bakery",
        "partner_site": partner.url("/"),
        "owner": "U0OWNER",
        "kind": "exchange",
        "links": (
            LinkInput(ours.url("/partners"), partner.url("/guide"), direction="ours", anchor="Partner guide"),
            LinkInput(
                partner.url("/resources"),
                ours.url("/product"),
                direction="theirs",
                anchor="Our sourdough kit",
                placement="main",
            ),
        ),
        "contact_name": "Pat",
        "contact_email": "pat@partner.example",
    }
    fields.update(overrides)
    return AgreementInput(**fields)  # type: ignore[arg-type]


async def test_exchange_live_in_both_directions(engine: Engine, ours: LocalSite, partner: LocalSite) -> None:
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))
    agreement = await engine.agreements.add(exchange(ours, partner))
    assert agreement.id == "1"
    assert agreement.deadline == date(2026, 11, 9)  # 7 days by default
    assert agreement.state(START.date()) is AgreementState.PENDING

    [checked] = await engine.agreements.check([agreement.id])
    assert [link.health for link in checked.links] == [LinkHealth.HEALTHY, LinkHealth.HEALTHY]
    assert checked.state(START.date()) is AgreementState.LIVE
    assert checked.links[1].seen_placement == "main"

    history = await engine.agreements.history(agreement.id)
    assert history[0]["action"] == "created"
    assert {"action": "state_changed", "state": "live", "was": "pending"}.items() <= history[-1].items()
    # The partner-side link is also a tracked backlink, so /linkcheck on our page shows it.
    tracked = await engine.tracked(ours.url("/product"))
    assert [b.source_url for b in tracked] == [partner.url("/resources")]


async def test_one_sided_only_after_the_deadline(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page("<main>Nothing about you yet.</main>"))
    agreement = await engine.agreements.add(exchange(ours, partner))

    [before] = await engine.agreements.check()
    assert before.links[1].reason == "link_removed"
    assert before.state(clock().date()) is AgreementState.PENDING  # the partner still has time

    clock.advance(8)
    [after] = await engine.agreements.check()
    assert after.state(clock().date()) is AgreementState.ONE_SIDED
    assert after.overdue(clock().date())
    assert [a.id for a in await engine.agreements.all(AgreementState.ONE_SIDED)] == [agreement.id]


async def test_a_live_link_that_turns_nofollow_breaks_the_agreement(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))
    agreement = await engine.agreements.add(exchange(ours, partner))
    await engine.agreements.check()

    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit", "nofollow")))
    [suspected] = await engine.agreements.check()
    assert suspected.state(clock().date()) is AgreementState.LIVE
    assert suspected.links[1].suspicion is not None
    assert suspected.links[1].suspicion.reason == "now_nofollow"
    clock.advance(hours=21)
    [checked] = await engine.agreements.check()
    assert checked.state(clock().date()) is AgreementState.BROKEN
    assert (checked.links[1].health, checked.links[1].reason) == (LinkHealth.FAILING, "now_nofollow")
    actions = [e["action"] for e in await engine.agreements.history(agreement.id)]
    assert actions.count("state_changed") == 2  # pending -> live -> broken


@pytest.mark.parametrize(
    ("partner_html", "reason"),
    [
        ("<main><p>Try <a href='{target}'>cheap bread machines</a></p></main>", "anchor_changed"),
        ("<footer><a href='{target}'>Our sourdough kit</a></footer>", "moved_to_footer"),
        ("<main>gone</main>", "link_removed"),
    ],
)
async def test_expectations_failures_have_named_reasons(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock, partner_html: str, reason: str
) -> None:
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))
    await engine.agreements.add(exchange(ours, partner))
    await engine.agreements.check()
    partner.html("/resources", page(partner_html.format(target=ours.url("/product"))))
    checked = await check_until_confirmed(engine, clock)
    assert checked.links[1].reason == reason
    assert checked.state(clock().date()) is AgreementState.BROKEN


async def test_an_anchor_that_is_close_still_counts(
    engine: Engine, ours: LocalSite, partner: LocalSite
) -> None:
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page(main_link(ours.url("/product"), "our Sourdough kit!")))
    await engine.agreements.add(exchange(ours, partner))
    [checked] = await engine.agreements.check()
    assert checked.links[1].health is LinkHealth.HEALTHY


async def test_an_unreadable_page_is_never_a_loss(
    engine: Engine, ours: LocalSite, partner: LocalSite
) -> None:
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))
    await engine.agreements.add(exchange(ours, partner))
    await engine.agreements.check()
    partner.status("/resources", 403, headers={"cf-mitigated": "challenge"})  # a bot wall today
    [checked] = await engine.agreements.check()
    assert checked.state(START.date()) is AgreementState.LIVE
    assert checked.links[1].health is LinkHealth.HEALTHY
    assert checked.links[1].unknown_reason == "bot_wall"


async def test_three_way_exchange(
    engine: Engine, ours: LocalSite, partner: LocalSite, third: LocalSite, clock: Clock
) -> None:
    # A (ours) -> B (partner), B -> C (third), C -> A.
    ours.html("/partners", page(main_link(partner.url("/"), "Partner B")))
    partner.html("/friends", page(main_link(third.url("/"), "Site C")))
    third.html("/links", page(main_link(ours.url("/product"), "Our kit")))
    data = AgreementInput(
        partner_name="B and C",
        partner_site=partner.url("/"),
        owner="U0OWNER",
        kind="three_way",
        links=(
            LinkInput(ours.url("/partners"), partner.url("/"), direction="ours"),
            LinkInput(partner.url("/friends"), third.url("/"), direction="theirs"),
            LinkInput(third.url("/links"), ours.url("/product"), direction="theirs"),
        ),
    )
    agreement = await engine.agreements.add(data)
    [checked] = await engine.agreements.check([agreement.id])
    assert checked.state(START.date()) is AgreementState.LIVE
    third.html("/links", page("<main>no more links</main>"))
    checked = await check_until_confirmed(engine, clock, agreement.id)
    assert checked.state(clock().date()) is AgreementState.BROKEN


async def test_paid_links_are_expected_to_be_sponsored(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    partner.html("/review", page(main_link(ours.url("/product"), "Our kit", "sponsored")))
    data = AgreementInput(
        partner_name="Paid Review",
        partner_site=partner.url("/"),
        owner="U0OWNER",
        kind="paid",
        links=(LinkInput(partner.url("/review"), ours.url("/product"), direction="theirs"),),
    )
    agreement = await engine.agreements.add(data)
    assert agreement.links[0].expected_rel.value == "sponsored"
    [checked] = await engine.agreements.check()
    assert checked.state(START.date()) is AgreementState.LIVE

    partner.html("/review", page(main_link(ours.url("/product"), "Our kit")))  # followed: wrong
    checked = await check_until_confirmed(engine, clock)
    assert checked.links[0].reason == "not_sponsored"
    assert checked.state(clock().date()) is AgreementState.BROKEN


async def test_bad_input_is_refused_and_nothing_is_stored(
    engine: Engine, ours: LocalSite, partner: LocalSite
) -> None:
    cases = {
        "deadline": exchange(ours, partner, deadline="2026-10-01"),
        "partner_site": exchange(ours, partner, partner_site="partner dot example"),
        "link_1_target": exchange(
            ours, partner, links=(LinkInput(ours.url("/a"), ours.url("/b"), direction="ours"),)
        ),
        "link_1_source": exchange(
            ours, partner, links=(LinkInput("http://169.254.169.254/", ours.url("/b")),)
        ),
        "contact_email": exchange(ours, partner, contact_email="not-an-email"),
        "kind": exchange(ours, partner, kind="barter"),
        "links": exchange(ours, partner, links=()),
        "relevance_score": exchange(ours, partner, qualification={"relevance": ("close topic", "9")}),
    }
    for field, data in cases.items():
        with pytest.raises(AgreementInputError) as info:
            await engine.agreements.add(data)
        assert field in info.value.errors, (field, info.value.errors)
    assert await engine.agreements.all() == []
    assert await engine.tracked() == []
    with pytest.raises(InputError):
        await engine.agreements.get("42")


async def test_lookup_by_id_or_domain_and_list_newest_first(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    first = await engine.agreements.add(exchange(ours, partner))
    clock.advance(1)
    second = await engine.agreements.add(exchange(ours, partner, partner_name="Again"))
    assert [a.id for a in await engine.agreements.all()] == [second.id, first.id]
    assert (await engine.agreements.get("#1")).id == first.id
    assert (await engine.agreements.get("127.0.0.2")).id == second.id  # newest for that domain
