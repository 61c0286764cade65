"""Prune proposals from rules, and every decision path (owner, admin, stranger, double click, stale)."""

from __future__ import annotations

import asyncio

import pytest

from bot.agreements.model import AgreementState, LinkHealth
from bot.engine import Engine
from bot.monitoring.digest import build_digest
from bot.monitoring.prune import Outcome, ProposalStatus
from tests.support.clock import Clock
from tests.support.site import LocalSite
from tests.test_agreements import exchange, main_link, page

# The product on both store backends: the embedded file and PostgreSQL.
pytestmark = pytest.mark.backends("tinydb", "postgres")


async def one_sided_agreement(engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock) -> str:
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page("<main>nothing yet</main>"))
    agreement = await engine.agreements.add(exchange(ours, partner))
    clock.advance(7 + 15)  # deadline (7 days) plus the 14-day grace period has passed
    await engine.recheck()
    return agreement.id


async def test_one_sided_after_grace_is_proposed_and_the_owner_prunes_it(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    agreement_id = await one_sided_agreement(engine, ours, partner, clock)
    [proposal] = await engine.prune.open_proposals()
    assert proposal.agreement_id == agreement_id
    assert [r.code for r in proposal.reasons] == ["one_sided"]

    stranger = await engine.prune.decide(proposal.id, approve=True, user="U0STRANGER", is_admin=False)
    assert stranger.outcome is Outcome.NOT_ALLOWED
    assert (await engine.agreements.get(agreement_id)).pruned_at is None

    decision = await engine.prune.decide(proposal.id, approve=True, user="U0OWNER", is_admin=False)
    assert decision.outcome is Outcome.APPROVED
    assert decision.our_pages_to_edit == (ours.url("/partners"),)
    pruned = await engine.agreements.get(agreement_id)
    assert pruned.state(clock().date()) is AgreementState.PRUNED
    assert pruned.pruned_by == "U0OWNER"
    again = await engine.prune.decide(proposal.id, approve=True, user="U0OWNER", is_admin=False)
    assert again.outcome is Outcome.ALREADY_DECIDED
    assert [e["action"] for e in await engine.agreements.history(agreement_id)].count("pruned") == 1

    # Our link is still up after the prune: rechecks keep looking until it is gone.
    await engine.recheck()
    link = (await engine.agreements.get(agreement_id)).links[0]
    assert link.health is LinkHealth.HEALTHY
    digest = await build_digest(engine.store, engine.agreements, engine.prune, until=clock())
    [still_up] = digest.still_linking_pruned
    assert still_up.missing == (ours.url("/partners"),)  # the page of ours to edit
    ours.html("/partners", page("<main>no partner link</main>"))
    await engine.recheck()
    clock.advance(hours=21)
    await engine.recheck()
    assert (await engine.agreements.get(agreement_id)).links[0].health is LinkHealth.FAILING


async def test_two_clicks_at_once_make_one_transition(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    await one_sided_agreement(engine, ours, partner, clock)
    [proposal] = await engine.prune.open_proposals()
    decisions = await asyncio.gather(
        engine.prune.decide(proposal.id, approve=True, user="U0OWNER", is_admin=False),
        engine.prune.decide(proposal.id, approve=True, user="U0ADMIN", is_admin=True),
        engine.prune.decide(proposal.id, approve=False, user="U0OWNER", is_admin=False),
    )
    outcomes = sorted(d.outcome.value for d in decisions)
    assert outcomes.count("already_decided") == 2
    assert len([o for o in outcomes if o in ("approved", "kept")]) == 1


async def test_keep_snoozes_and_a_stale_proposal_says_so(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    await one_sided_agreement(engine, ours, partner, clock)
    [proposal] = await engine.prune.open_proposals()
    kept = await engine.prune.decide(proposal.id, approve=False, user="U0ADMIN", is_admin=True)
    assert kept.outcome is Outcome.KEPT
    await engine.recheck()
    assert await engine.prune.open_proposals() == []  # snoozed
    clock.advance(31)
    await engine.recheck()
    [again] = await engine.prune.open_proposals()
    assert again.id != proposal.id

    # The partner delivers before anyone approves: the proposal no longer applies.
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))
    await engine.agreements.check()
    decision = await engine.prune.decide(again.id, approve=True, user="U0OWNER", is_admin=False)
    assert decision.outcome is Outcome.STALE
    assert (await engine.prune.get(again.id)).status is ProposalStatus.STALE  # type: ignore[union-attr]
    assert (await engine.agreements.all(AgreementState.LIVE))[0].pruned_at is None


async def test_other_rules_links_page_low_relevance_and_annual_review(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    many = "".join(f'<li><a href="http://127.0.0.{9}:{i + 1}/">site {i}</a></li>' for i in range(35))
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit"), f"<ul>{many}</ul>"))
    data = exchange(ours, partner, qualification={"relevance": ("unrelated niche", "1")})
    agreement = await engine.agreements.add(data)
    await engine.recheck()
    [proposal] = await engine.prune.open_proposals()
    assert {r.code for r in proposal.reasons} == {"links_page", "low_relevance"}
    assert proposal.agreement_id == agreement.id
    clock.advance(366)
    await engine.recheck()
    [proposal] = await engine.prune.open_proposals()
    assert "annual_review_due" in {r.code for r in proposal.reasons}
