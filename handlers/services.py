"""What the Slack handlers share: the engine, the per-workspace slots (checks, imports, audits) and the
background tasks.

The composition root (:mod:`handlers.app`) builds one :class:`Services` and a Bolt middleware puts it in
every request's ``context`` under :data:`SERVICES_KEY`; handlers read it with :func:`services_from`.
That keeps each folder's ``register(app)`` free of wiring.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.config import SlackSettings
from bot.models import Report
from bot.store.base import Store
from handlers.event_ledger import EventLedger
from handlers.monitoring import MonitoringState
from handlers.slack_files import DownloadLimits

if TYPE_CHECKING:
    from bot.engine import Engine, Progress, TrackedBacklink

logger = logging.getLogger(__name__)

SERVICES_KEY = "linkpact_services"
# Slack asks for no more than about one message update per second per channel ("Rate limits" page,
# chat.update is Tier 3); one progress update every 2 s leaves room for other checks in the channel.
PROGRESS_INTERVAL_S = 2.0
# How long shutdown waits for a cancelled check to write its "stopped" note before giving up.
SHUTDOWN_GRACE_S = 5.0
# One import at a time per workspace: parsing a 50 MB export holds a few hundred MB while it runs, and two
# at once would double that in a process that also serves every other command.
IMPORTS_PER_WORKSPACE = 1
# One audit at a time per workspace (issue 6): an audit crawls up to 500 pages of our own site and reads
# up to 200 partner pages; a second one right behind it would fetch the same pages again for nothing.
AUDITS_PER_WORKSPACE = 1


class LinkEngine(Protocol):
    """The part of :class:`bot.engine.Engine` the Slack surface uses (the real Engine fits it)."""

    async def check(self, url: str, *, on_progress: Callable[[Progress], None] | None = None) -> Report: ...
    async def track(self, source_url: str, target_url: str, *, added_by: str | None = None) -> bool: ...
    async def untrack(self, source_url: str, target_url: str) -> bool: ...
    async def tracked(self, target_url: str | None = None) -> list[TrackedBacklink]: ...
    async def aclose(self) -> None: ...


@dataclass
class CheckSlots:
    """A per-workspace cap on concurrent ``/linkcheck`` runs (one event loop, so no lock is needed)."""

    limit: int
    _running: dict[str, int] = field(default_factory=dict)

    def try_acquire(self, workspace: str) -> bool:
        """Take a slot for ``workspace``; False when it already runs ``limit`` checks."""
        if self._running.get(workspace, 0) >= self.limit:
            return False
        self._running[workspace] = self._running.get(workspace, 0) + 1
        return True

    def release(self, workspace: str) -> None:
        left = self._running.get(workspace, 0) - 1
        if left > 0:
            self._running[workspace] = left
        else:
            self._running.pop(workspace, None)

    def running(self, workspace: str) -> int:
        return self._running.get(workspace, 0)


class BackgroundTasks:
    """Keeps a strong reference to every task started after an ack, and cancels them at shutdown.

    asyncio only keeps weak references to tasks ("Creating tasks" in the asyncio docs), so a task that
    nobody holds can vanish mid-run.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Jobs handle their own errors; this only catches a bug in that handling.
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def join(self) -> None:
        """Wait until every task running now has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self, *, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Cancel every task and wait up to ``grace_s`` seconds for them to wind down."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)


@dataclass
class Services:
    """Everything a handler needs besides what Bolt passes in."""

    engine: LinkEngine
    slack: SlackSettings
    slots: CheckSlots
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    clock: Callable[[], float] = time.monotonic
    # Unix seconds, for Slack timestamps ("files shared in the last hour").
    wall_clock: Callable[[], float] = time.time
    progress_interval_s: float = PROGRESS_INTERVAL_S
    # Shared by the scheduler, /linkcheck recheck|digest and the prune buttons (handlers.monitoring).
    monitoring: MonitoringState = field(default_factory=MonitoringState)
    import_slots: CheckSlots = field(default_factory=lambda: CheckSlots(IMPORTS_PER_WORKSPACE))
    audit_slots: CheckSlots = field(default_factory=lambda: CheckSlots(AUDITS_PER_WORKSPACE))
    # File imports from Slack (handlers.slack_files): the largest file downloaded and imported, in bytes,
    # and the download's time limits. Tests lower them; the defaults are in that module.
    import_limits: DownloadLimits = field(default_factory=DownloadLimits)
    # Events API ids already handled (handlers.event_ledger): a retried delivery has no second effect.
    events: EventLedger = field(default_factory=lambda: EventLedger(None))

    @classmethod
    def create(cls, engine: LinkEngine, slack: SlackSettings, **overrides: Any) -> Services:
        """Services for ``engine``; the event ledger lives in the engine's store when it has one."""
        store = getattr(engine, "store", None)
        overrides.setdefault("events", EventLedger(store if isinstance(store, Store) else None))
        return cls(engine=engine, slack=slack, slots=CheckSlots(slack.max_checks_per_workspace), **overrides)


def services_from(context: Any) -> Services:
    """The :class:`Services` the composition root attached to this request's Bolt context."""
    services = context.get(SERVICES_KEY)
    if not isinstance(services, Services):
        raise RuntimeError("Linkpact services are missing from the Bolt context (use handlers.app.build_app)")
    return services


def full_engine(services: Services) -> Engine | None:
    """The engine when it is the full :class:`bot.engine.Engine` (agreements, monitoring, the prune book,
    imports, audits), else None: a stand-in engine that only checks pages, as in some tests. Every
    handler that needs more than :class:`LinkEngine` goes through here and answers "not available" on
    None."""
    from bot.engine import Engine  # the full engine pulls in the HTTP stack; imported only when asked

    return services.engine if isinstance(services.engine, Engine) else None


def services_middleware(services: Services) -> Callable[..., Awaitable[None]]:
    """A Bolt global middleware that attaches ``services`` to every request's context."""

    async def attach_services(context: Any, next: Callable[[], Awaitable[None]]) -> None:
        context[SERVICES_KEY] = services
        await next()

    return attach_services
