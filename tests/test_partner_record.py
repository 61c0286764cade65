"""A partner's track record over simulated days (injected clock, local partner site): days to deliver,
the share of checks with their links live, losses and reclaims."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.agreements.model import AgreementInput, LinkInput
from bot.agreements.report import render_partner_record
from bot.engine import Engine
from bot.errors import InputError
from tests.support.clock import Clock
from tests.support.site import LocalSite
from tests.test_digest import linking

GONE = "<html><body><main>no link here</main></body></html>"


def promised(ours: LocalSite, partner: LocalSite, path: str, name: str = "Partner Bakery") -> AgreementInput:
    return AgreementInput(
        partner_name=name,
        partner_site=partner.url("/"),
        owner="U0OWNER",
        kind="exchange",
        links=(
            LinkInput(ours.url("/partners"), partner.url(f"/guide{path}"), direction="ours"),
            LinkInput(partner.url(path), ours.url(f"/product{path}"), direction="theirs"),
        ),
    )


async def test_days_to_deliver_live_share_losses_and_reclaims(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    ours.html("/partners", linking(partner.url("/guide/kit")) + linking(partner.url("/guide/late")))
    partner.html("/kit", GONE)
    partner.html("/late", GONE)
    kit = await engine.agreements.add(promised(ours, partner, "/kit"))
    kit_start = clock()

    async def check_on_day(day: float) -> None:
        assert clock() == kit_start + timedelta(days=day)
        await engine.agreements.check([kit.id])

    await check_on_day(0)  # not there yet
    clock.advance(2.5)
    partner.html("/kit", linking(ours.url("/product/kit")))
    await check_on_day(2.5)  # delivered 2.5 days after the start
    clock.advance(1)
    await check_on_day(3.5)
    clock.advance(1)
    partner.html("/kit", GONE)
    await check_on_day(4.5)  # suspected
    clock.advance(1)
    await check_on_day(5.5)  # confirmed lost
    clock.advance(1)
    partner.html("/kit", linking(ours.url("/product/kit")))
    await check_on_day(6.5)  # restored: reclaimed
    partner.status("/kit", 403, headers={"cf-mitigated": "challenge"})
    clock.advance(1)
    await check_on_day(7.5)  # unknown: counts for neither side

    # A later agreement with the same partner that they have not delivered on.
    late = await engine.agreements.add(promised(ours, partner, "/late", name="Partner Bakery (2)"))
    await engine.agreements.check([late.id])
    clock.advance(2)

    record = await engine.agreements.partner_record("127.0.0.2")
    assert record.domain == "127.0.0.2"
    assert [a.id for a in record.agreements] == [late.id, kit.id]  # newest first
    mine, theirs_late = record.agreements[1], record.agreements[0]
    assert (mine.days_to_deliver, mine.waiting_days) == (2.5, None)
    assert (mine.definite_checks, mine.live_checks) == (6, 3)  # the bot wall is not a check of the link
    assert mine.live_share == 0.5
    assert (mine.losses, mine.reclaims) == (1, 1)
    assert (theirs_late.days_to_deliver, theirs_late.waiting_days) == (None, 2.0)
    assert (theirs_late.definite_checks, theirs_late.live_checks, theirs_late.losses) == (1, 0, 0)
    assert (record.delivered, record.awaited, record.median_days_to_deliver) == (1, 1, 2.5)
    assert (record.definite_checks, record.live_checks, record.losses, record.reclaims) == (7, 3, 1, 1)

    # Any of its agreement ids, its domain or its site name the same partner.
    assert (await engine.agreements.partner_record(kit.id)).to_json() == record.to_json()
    assert (await engine.agreements.partner_record(partner.url("/"))).to_json() == record.to_json()
    text = render_partner_record(record)
    assert text.splitlines()[:4] == [
        "127.0.0.2 (Partner Bakery (2), Partner Bakery): 2 agreements",
        "  days to deliver: delivered on 1 of 2 agreements, median 2.5 days after the start",
        "  their links: live in 3 of 7 checks (43%)",
        "  1 loss, 1 reclaim (a lost link of theirs live again)",
    ]
    assert f"#{late.id} Partner Bakery (2), pending: not delivered yet (2 days since the start)" in text
    assert (
        f"#{kit.id} Partner Bakery, live: delivered in 2.5 days; live in 3 of 6 checks (50%); "
        "1 loss, 1 reclaim" in text
    )

    with pytest.raises(InputError, match="no agreement with id or partner domain"):
        await engine.agreements.partner_record("elsewhere.example")
