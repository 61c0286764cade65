"""The monitoring schedule inside the bot's event loop (APScheduler 3, ``AsyncIOScheduler``).

Two jobs, both plain async functions that tests call directly with an injected clock:

- **recheck**, a tick every :data:`bot.monitoring.cadence.CADENCE_TICK_H` hours (:func:`run_recheck_job`):
  the agreements whose priority's interval has passed since their last check and the other tracked
  backlinks every ``LINKPACT_RECHECK_INTERVAL_H`` hours (:mod:`bot.monitoring.cadence`), through the
  engine's one HTTP client and its per-host limits. The first tick is when something next falls due by
  what the store remembers (or shortly after start when that is overdue), so restarting the bot neither
  skips nor repeats rechecks;
- **digest** on the configured weekday and time in the configured zone
  (:func:`handlers.digest.run_digest_job`), and once right at start-up to post a digest missed while the
  bot was down.

Jobs never raise into the scheduler (failures are logged with their traceback) and never overlap
themselves (``max_instances=1``); runs missed while the loop was busy are coalesced into one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.monitoring.cadence import CADENCE_TICK_H
from handlers.digest import run_digest_job
from handlers.monitoring import MonitoringState, recheck_all

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.monitoring.recheck import RecheckSummary

logger = logging.getLogger(__name__)

RECHECK_JOB_ID = "recheck"
DIGEST_JOB_ID = "digest"
# An overdue recheck waits this long after start-up, so the bot is connected and answering commands
# before hundreds of partner pages are fetched.
STARTUP_RECHECK_DELAY_S = 60.0
# How long shutdown waits for a cancelled job to wind down before the engine is closed under it.
SHUTDOWN_GRACE_S = 5.0


async def run_recheck_job(
    engine: Engine,
    state: MonitoringState,
    *,
    now: datetime | None = None,
    backlink_interval_h: float | None = None,
) -> RecheckSummary | None:
    """One scheduler tick: recheck what is due at ``now`` (default: the engine's clock) by each
    agreement's cadence and, for the other tracked backlinks, every ``backlink_interval_h`` hours (default
    ``LINKPACT_RECHECK_INTERVAL_H``): :meth:`bot.monitoring.cadence.Cadence.due`, then
    :meth:`bot.engine.Engine.recheck` limited to it (which also applies the prune rules).

    Returns its summary, or None when nothing was due, another full recheck was running (skipped) or it
    failed; never raises (a failure is logged with its traceback and the next tick tries again)."""
    try:
        moment = now if now is not None else engine.now()
        interval_h = (
            backlink_interval_h
            if backlink_interval_h is not None
            else engine.settings.monitor.recheck_interval_h
        )
        work = await engine.cadence.due(moment, backlink_interval_h=interval_h)
        if not work:
            logger.debug("scheduled recheck: nothing is due")
            return None
        result = await recheck_all(
            engine, state, by="scheduler", agreement_ids=work.agreement_ids, backlink_ids=work.backlink_ids
        )
    except Exception:
        logger.exception("the scheduled recheck failed")
        return None
    if result is None:
        logger.info("scheduled recheck skipped: another full recheck is running")
        return None
    summary, proposals = result
    logger.info(
        "scheduled recheck: %d agreements and %d tracked backlinks due, %d changes, %d open prune proposals",
        len(work.agreement_ids),
        len(work.backlink_ids),
        len(summary.changes),
        len(proposals),
    )
    return summary


def first_recheck_at(next_due: datetime | None, now: datetime) -> datetime:
    """The first tick: when something next falls due (``next_due``, from
    :meth:`bot.monitoring.cadence.Cadence.next_due_at`); when that is already past (or there is nothing
    to recheck yet), a short delay after ``now``."""
    soon = now + timedelta(seconds=STARTUP_RECHECK_DELAY_S)
    if next_due is None:
        return soon
    return max(next_due, soon)


def tick_interval_h(backlink_interval_h: float) -> float:
    """Hours between two ticks: :data:`CADENCE_TICK_H`, or the backlink interval when that is shorter."""
    return min(CADENCE_TICK_H, backlink_interval_h)


class MonitoringScheduler:
    """The two jobs on an ``AsyncIOScheduler`` in the running loop; :meth:`start` then :meth:`aclose`."""

    def __init__(
        self,
        engine: Engine,
        client: AsyncWebClient,
        settings: Settings,
        state: MonitoringState,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._client = client
        self._settings = settings
        self._state = state
        self._clock = clock or engine.now
        self._running: set[asyncio.Task[Any]] = set()
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            # misfire_grace_time=None: a run that is late (a busy loop, a suspended laptop) still runs.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    async def configure(self) -> list[Job]:
        """Add the jobs (not started yet); returns them. Reads when the last recheck ran."""
        now = self._clock()
        interval_h = self._settings.monitor.recheck_interval_h
        next_due = await self._engine.cadence.next_due_at(backlink_interval_h=interval_h)
        first = first_recheck_at(next_due, now)
        jobs = [
            self.scheduler.add_job(
                self._tracked(self._recheck_tick),
                IntervalTrigger(hours=tick_interval_h(interval_h), start_date=first, timezone=UTC),
                id=RECHECK_JOB_ID,
                name="recheck links",
                replace_existing=True,
            )
        ]
        digest = self._settings.digest
        if digest.channels:
            jobs.append(
                self.scheduler.add_job(
                    self._tracked(run_digest_job, self._engine, self._client, digest, self._clock),
                    CronTrigger(
                        day_of_week=digest.day, hour=digest.hour, minute=digest.minute, timezone=digest.zone
                    ),
                    id=DIGEST_JOB_ID,
                    name="weekly digest",
                    replace_existing=True,
                    next_run_time=now,  # catch up at start-up; run_digest_job posts only what is missing
                )
            )
        else:
            logger.info("LINKPACT_DIGEST_CHANNEL is not set: the weekly digest is off")
        return jobs

    async def _recheck_tick(self) -> None:
        await run_recheck_job(
            self._engine,
            self._state,
            now=self._clock(),
            backlink_interval_h=self._settings.monitor.recheck_interval_h,
        )

    async def start(self) -> None:
        """Configure and start the jobs in the running event loop (the loop Bolt and the engine use)."""
        jobs = await self.configure()
        self.scheduler.start()
        for job in jobs:
            logger.info("scheduled %s: next run %s", job.name, job.next_run_time)

    def _tracked(self, func: Callable[..., Awaitable[Any]], *args: Any) -> Callable[[], Awaitable[None]]:
        """``func(*args)`` as a job whose task :meth:`aclose` can cancel and wait for."""

        async def job() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                await func(*args)
            except asyncio.CancelledError:
                # Shutting down: end the job's task quietly rather than as a failed job.
                logger.info("%s stopped: Linkpact is shutting down", getattr(func, "__name__", "job"))
            finally:
                if task is not None:
                    self._running.discard(task)

        job.__name__ = job.__qualname__ = getattr(func, "__name__", "job")
        return job

    async def aclose(self, *, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Stop scheduling, cancel running jobs and wait up to ``grace_s`` seconds for them to end."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
