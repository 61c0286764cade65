"""Each agreement rechecked on its priority's cadence: the scheduler's tick (handlers/scheduler.py) run
hour by hour with an injected clock against local partner sites, counting the requests each page gets."""

from __future__ import annotations

from datetime import timedelta

from bot.agreements.model import (
    PRIORITY_INTERVAL_H,
    AgreementInput,
    LinkInput,
    Priority,
    from_doc,
    to_doc,
)
from bot.backlinks.changes import CHANGES_TABLE, Change, ChangeKind
from bot.engine import Engine
from bot.monitoring.cadence import CADENCE_TICK_H, agreement_due_at, due_work
from handlers.monitoring import MonitoringState
from handlers.scheduler import MonitoringScheduler, run_recheck_job
from tests.support.clock import Clock
from tests.support.site import LocalSite
from tests.test_digest import linking
from tests.test_scheduler import monitoring_settings

BACKLINK_INTERVAL_H = 24.0


def editorial(ours: LocalSite, partner: LocalSite, path: str, priority: str = "") -> AgreementInput:
    """An agreement with one promised link: the partner's page ``path`` links to our ``/product``."""
    return AgreementInput(
        partner_name=f"Partner {path}",
        partner_site=partner.url("/"),
        owner="U0OWNER",
        kind="editorial",
        links=(LinkInput(partner.url(path), ours.url(f"/product{path}")),),
        priority=priority,
    )


async def tick_for(engine: Engine, clock: Clock, state: MonitoringState, *, hours: int) -> None:
    """Run the scheduler's hourly tick for ``hours`` hours of injected time."""
    for _ in range(int(hours / CADENCE_TICK_H)):
        await run_recheck_job(engine, state, backlink_interval_h=BACKLINK_INTERVAL_H)
        clock.advance(hours=CADENCE_TICK_H)


async def test_each_agreement_is_rechecked_on_its_priority_and_other_backlinks_daily(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    for path, level in (("/high", "high"), ("/normal", ""), ("/low", "low")):
        partner.html(path, linking(ours.url(f"/product{path}")))
        await engine.agreements.add(editorial(ours, partner, path, level))
    partner.html("/plain", linking(ours.url("/product")))
    await engine.track(partner.url("/plain"), ours.url("/product"))
    assert {a.partner_name: a.priority for a in await engine.agreements.all()} == {
        "Partner /high": Priority.HIGH,
        "Partner /normal": Priority.NORMAL,  # the default
        "Partner /low": Priority.LOW,
    }

    await tick_for(engine, clock, MonitoringState(), hours=14 * 24)

    # Two weeks: daily (hours 0, 24, ... 312), every 3 days (0, 72, ... 288), weekly (0, 168); the
    # partner-side promised link is also a tracked backlink, yet it follows its agreement's cadence.
    assert {path: len(partner.hits_for(path)) for path in ("/high", "/normal", "/low", "/plain")} == {
        "/high": 14,
        "/normal": 5,
        "/low": 2,
        "/plain": 14,
    }
    low = next(a for a in await engine.agreements.all() if a.priority is Priority.LOW)
    assert low.last_checked_at == (clock() - timedelta(hours=14 * 24 - 168)).isoformat(timespec="seconds")


async def test_a_suspected_loss_is_confirmed_a_day_later_whatever_the_priority(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    partner.html("/low", linking(ours.url("/product/low")))
    agreement = await engine.agreements.add(editorial(ours, partner, "/low", "low"))
    state = MonitoringState()
    await tick_for(engine, clock, state, hours=24)  # checked at hour 0: live
    partner.html("/low", "<html><body><main>no link any more</main></body></html>")
    await tick_for(engine, clock, state, hours=168)  # the weekly check at hour 168: suspected
    assert len(partner.hits_for("/low")) == 2
    await tick_for(engine, clock, state, hours=24)  # a day later, not a week: confirmed
    assert len(partner.hits_for("/low")) == 3
    lost = [
        change
        for change in (Change.from_doc(doc) for doc in await engine.store.find(CHANGES_TABLE))
        if change.kind is ChangeKind.LOST and change.subject == "promised_link"
    ]
    assert [(c.agreement_id, c.reason, c.at[:13]) for c in lost] == [
        (agreement.id, "link_removed", "2026-11-10T09")
    ]
    # Confirmed, the agreement is back on its weekly cadence.
    await tick_for(engine, clock, state, hours=6 * 24)
    assert len(partner.hits_for("/low")) == 3


async def test_a_priority_change_and_a_restart_follow_the_stored_checks(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    partner.html("/p", linking(ours.url("/product/p")))
    agreement = await engine.agreements.add(editorial(ours, partner, "/p"))
    state = MonitoringState()
    await tick_for(engine, clock, state, hours=24)
    assert len(partner.hits_for("/p")) == 1  # normal: not again after a day

    # After a restart, the first tick is when the agreement falls due: 72 h after its check.
    scheduler = MonitoringScheduler(
        engine, None, monitoring_settings(engine, channels=()), state, clock=clock
    )  # type: ignore[arg-type]
    [job] = await scheduler.configure()
    assert job.trigger.start_date == clock() + timedelta(hours=48)

    updated, was = await engine.agreements.set_priority(agreement.id, "HIGH", by="U0OWNER")
    assert (updated.priority, was) == (Priority.HIGH, Priority.NORMAL)
    await tick_for(engine, clock, state, hours=1)
    assert len(partner.hits_for("/p")) == 2  # high: due as soon as a day has passed
    [entry] = [e for e in await engine.agreements.history(agreement.id) if e["action"] == "priority_changed"]
    assert (entry["priority"], entry["was"], entry["by"]) == ("high", "normal", "U0OWNER")


async def test_a_check_stamped_minutes_after_its_tick_is_due_at_the_same_tick_next_time(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    partner.html("/p", linking(ours.url("/product/p")))
    await engine.agreements.add(editorial(ours, partner, "/p", "high"))
    clock.advance(hours=0.2)  # the check finished 12 minutes after the tick that started it
    [checked] = await engine.agreements.check()
    tick = clock() - timedelta(hours=0.2)
    assert agreement_due_at(checked) == clock() + timedelta(hours=PRIORITY_INTERVAL_H[Priority.HIGH])
    next_day = tick + timedelta(hours=24)
    assert due_work([checked], [], next_day, backlink_interval_h=24).agreement_ids == (checked.id,)
    assert not due_work([checked], [], next_day - timedelta(hours=1), backlink_interval_h=24)


async def test_stored_agreements_without_a_priority_read_as_normal(
    engine: Engine, ours: LocalSite, partner: LocalSite
) -> None:
    agreement = await engine.agreements.add(editorial(ours, partner, "/p", "low"))
    doc = to_doc(agreement)
    assert doc["priority"] == "low"
    del doc["priority"]
    assert from_doc(doc).priority is Priority.NORMAL
    assert from_doc({**doc, "priority": "urgent"}).priority is Priority.NORMAL
