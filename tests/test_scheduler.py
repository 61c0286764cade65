"""The monitoring schedule: triggers as configured, job functions called directly with an injected clock
(no test waits for APScheduler's timing), clean start and shutdown in the running loop, and `linkpact
serve` posting a missed digest at start-up exactly once across restarts."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import DigestSettings, MonitorSettings, Settings
from bot.engine import Engine
from bot.monitoring.cadence import CADENCE_TICK_H, DueWork
from handlers.monitoring import MonitoringState
from handlers.scheduler import (
    DIGEST_JOB_ID,
    RECHECK_JOB_ID,
    STARTUP_RECHECK_DELAY_S,
    MonitoringScheduler,
    first_recheck_at,
    run_recheck_job,
    tick_interval_h,
)
from tests.support.clock import Clock
from tests.support.site import LocalSite
from tests.support.slack_api import ApiCall, SlackApiStandIn
from tests.test_digest import linking
from tests.test_slack_serve import start_server


@pytest.fixture
def slack_api() -> Iterator[SlackApiStandIn]:
    with SlackApiStandIn() as api:
        yield api


def monitoring_settings(engine: Engine, *, channels: tuple[str, ...] = ("C0DIGEST",)) -> Settings:
    return Settings(
        fetch=engine.settings.fetch,
        db_path=engine.settings.db_path,
        monitor=MonitorSettings(recheck_interval_h=12),
        digest=DigestSettings(channels=channels, day="tue", hour=8, minute=30, tz="Europe/Berlin"),
    )


async def test_the_jobs_have_the_configured_triggers(
    engine: Engine, clock: Clock, site: LocalSite, slack_api: SlackApiStandIn
) -> None:
    client = AsyncWebClient(token="xoxb-t", base_url=slack_api.api_url)
    scheduler = MonitoringScheduler(
        engine, client, monitoring_settings(engine), MonitoringState(), clock=clock
    )
    jobs = {job.id: job for job in await scheduler.configure()}
    assert set(jobs) == {RECHECK_JOB_ID, DIGEST_JOB_ID}

    recheck = jobs[RECHECK_JOB_ID].trigger
    # A tick every hour looks for what is due (each agreement by its priority, backlinks every 12 h).
    assert isinstance(recheck, IntervalTrigger) and recheck.interval == timedelta(hours=CADENCE_TICK_H)
    # Nothing to recheck yet: soon after start.
    assert recheck.start_date == clock() + timedelta(seconds=STARTUP_RECHECK_DELAY_S)

    digest = jobs[DIGEST_JOB_ID]
    assert isinstance(digest.trigger, CronTrigger)
    fields = {f.name: str(f) for f in digest.trigger.fields}
    assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("tue", "8", "30")
    assert digest.trigger.timezone == ZoneInfo("Europe/Berlin")
    assert digest.next_run_time == clock()  # the catch-up run at start-up
    # Tuesday 08:30 in Berlin (UTC+1 in November) is 07:30 UTC.
    after = digest.trigger.get_next_fire_time(None, clock())
    assert after is not None and after.astimezone(UTC) == datetime(2026, 11, 3, 7, 30, tzinfo=UTC)

    quiet = MonitoringScheduler(
        engine, client, monitoring_settings(engine, channels=()), MonitoringState(), clock=clock
    )
    assert [job.id for job in await quiet.configure()] == [RECHECK_JOB_ID]  # no channel, no digest job


def test_the_first_recheck_is_when_something_falls_due() -> None:
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    soon = now + timedelta(seconds=STARTUP_RECHECK_DELAY_S)
    assert first_recheck_at(None, now) == soon
    assert first_recheck_at(now + timedelta(hours=21), now) == now + timedelta(hours=21)
    assert first_recheck_at(now - timedelta(days=3), now) == soon  # overdue: soon, not at once
    assert tick_interval_h(24) == CADENCE_TICK_H and tick_interval_h(0.25) == 0.25


async def test_the_recheck_job_runs_one_full_recheck_at_a_time(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    partner.html("/blog", linking(ours.url("/product")))
    await engine.track(partner.url("/blog"), ours.url("/product"))
    state = MonitoringState()
    summary = await run_recheck_job(engine, state, backlink_interval_h=12)
    assert summary is not None and summary.verdicts == {"live": 1}

    async with state.recheck_lock:  # a full recheck is running (a /linkcheck recheck, say)
        clock.advance(hours=12)
        assert await run_recheck_job(engine, state, backlink_interval_h=12) is None
    before = len(partner.hits_for("/blog"))
    assert await run_recheck_job(engine, state, backlink_interval_h=12) is not None
    assert len(partner.hits_for("/blog")) == before + 1
    # Checked just now: the next tick finds nothing due and fetches nothing.
    clock.advance(hours=1)
    assert await run_recheck_job(engine, state, backlink_interval_h=12) is None
    assert len(partner.hits_for("/blog")) == before + 1
    clock.advance(hours=-1)
    # The next scheduled recheck is one interval after this one, even after a restart.
    scheduler = MonitoringScheduler(engine, None, monitoring_settings(engine), state, clock=clock)  # type: ignore[arg-type]
    jobs = {job.id: job for job in await scheduler.configure()}
    assert jobs[RECHECK_JOB_ID].trigger.start_date == clock() + timedelta(hours=12)


async def test_a_failing_recheck_is_logged_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    class DueEverything:
        async def due(self, now: datetime, **kwargs: object) -> DueWork:
            return DueWork(backlink_ids=("1",))

    class FailingEngine:
        cadence = DueEverything()

        def now(self) -> datetime:
            return datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

        async def recheck(self, **kwargs: object) -> object:
            raise RuntimeError("store is locked")

    with caplog.at_level(logging.ERROR):
        failing = FailingEngine()
        assert await run_recheck_job(failing, MonitoringState(), backlink_interval_h=24) is None  # type: ignore[arg-type]
    [record] = [r for r in caplog.records if r.exc_info]
    assert "the scheduled recheck failed" in record.getMessage() and record.exc_info is not None
    assert record.exc_info[0] is RuntimeError


async def test_start_and_close_in_the_running_loop_cancel_a_running_job(engine: Engine, clock: Clock) -> None:
    scheduler = MonitoringScheduler(
        engine,
        None,
        monitoring_settings(engine, channels=()),
        MonitoringState(),
        clock=clock,  # type: ignore[arg-type]
    )
    await scheduler.start()
    assert scheduler.scheduler.running
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def long_job() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    scheduler.scheduler.add_job(scheduler._tracked(long_job), next_run_time=datetime.now(UTC))
    await asyncio.wait_for(started.wait(), 10)
    await scheduler.aclose(grace_s=5)
    assert cancelled.is_set()
    await asyncio.sleep(0)  # let APScheduler's own shutdown callback run on the loop
    assert not scheduler.scheduler.running


def test_serve_posts_a_missed_digest_at_start_up_once_across_restarts(
    tmp_path: Path, slack_api: SlackApiStandIn
) -> None:
    def in_channel(call: ApiCall) -> bool:
        return call.params.get("channel") == "C0SERVE"

    first = start_server(tmp_path, slack_api, LINKPACT_DIGEST_CHANNEL="C0SERVE")
    try:
        posted = slack_api.wait_for_call("chat.postMessage", in_channel)
        assert "Linkpact weekly digest" in posted.blocks_text()
        assert first.stop() == 0  # at once: the ledger is still written before the process exits
    finally:
        if first.process.poll() is None:
            first.stop()
    assert "scheduled recheck links: next run" in first.log and "stopped" in first.log

    second = start_server(tmp_path, slack_api, LINKPACT_DIGEST_CHANNEL="C0SERVE")
    try:
        assert wait_until(lambda: "is already posted to every channel" in second.log), second.log
        assert second.stop() == 0
    finally:
        if second.process.poll() is None:
            second.stop()
    assert len(slack_api.calls_to("chat.postMessage")) == 1


def wait_until(condition: Callable[[], bool], *, timeout_s: float = 20.0) -> bool:
    """Poll ``condition`` (a log line from another process) until it holds or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    tick = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.05)
    return True
