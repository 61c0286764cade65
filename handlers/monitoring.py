"""State that one bot process shares between the scheduler, ``/linkcheck recheck|digest``, the imports
and the buttons: the guard that keeps full rechecks one at a time (and the one queued behind it, for
imports), one lock per digest message being updated, and this app's Slack identity (workspace and app
IDs) for refusing foreign button payloads.

One asyncio event loop runs everything, so plain ``asyncio.Lock`` objects are enough.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import SlackSettings

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.monitoring.prune import PruneProposal
    from bot.monitoring.recheck import RecheckSummary

logger = logging.getLogger(__name__)

# Message locks kept before unlocked ones are dropped: a digest has a handful of messages a week.
MAX_MESSAGE_LOCKS = 256


@dataclass(frozen=True, slots=True)
class SlackIdentity:
    """Who this bot is in Slack: the workspace (``T…``), its Enterprise Grid org (``E…``, or None) and the
    app (``A…``, None when neither configured nor reported by ``auth.test``)."""

    team_id: str | None
    enterprise_id: str | None
    app_id: str | None


@dataclass
class MonitoringState:
    """Per-process monitoring state (see the module docstring)."""

    recheck_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The full recheck queued behind the running one (recheck_when_free); later requests share it.
    queued_recheck: asyncio.Task[tuple[RecheckSummary, list[PruneProposal]]] | None = None
    _message_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    _message_blocks: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    _identity: SlackIdentity | None = None

    def message_lock(self, channel: str, ts: str) -> asyncio.Lock:
        """The lock serialising updates of one message: two clicks on one digest must not overwrite each
        other's update with a stale copy of the blocks."""
        key = (channel, ts)
        lock = self._message_locks.get(key)
        if lock is None:
            if len(self._message_locks) >= MAX_MESSAGE_LOCKS:
                for old, held in list(self._message_locks.items()):
                    if not held.locked():
                        del self._message_locks[old]
                        self._message_blocks.pop(old, None)
            lock = self._message_locks[key] = asyncio.Lock()
        return lock

    def latest_blocks(self, channel: str, ts: str) -> list[dict[str, Any]] | None:
        """The blocks this process last sent for a message (newer than the copy in a click's payload when
        two clicks raced); None when it has not updated that message."""
        blocks = self._message_blocks.get((channel, ts))
        return [dict(b) for b in blocks] if blocks is not None else None

    def remember_blocks(self, channel: str, ts: str, blocks: list[dict[str, Any]]) -> None:
        """Call while holding :meth:`message_lock` for the message, after Slack accepted the update."""
        if (channel, ts) in self._message_locks:
            self._message_blocks[(channel, ts)] = [dict(b) for b in blocks]

    async def identity(self, client: AsyncWebClient, slack: SlackSettings) -> SlackIdentity:
        """This bot's identity, from ``auth.test`` once per process (Slack docs: "auth.test"); the app ID
        is ``SLACK_APP_ID`` when set, else the ``app_id`` auth.test reports. Raises what the call raises
        (:class:`slack_sdk.errors.SlackApiError`, network errors), so a caller can refuse to act."""
        if self._identity is None:
            response = await client.auth_test()
            self._identity = SlackIdentity(
                team_id=response.get("team_id") or None,
                enterprise_id=response.get("enterprise_id") or None,
                app_id=slack.app_id or response.get("app_id") or None,
            )
            if self._identity.app_id is None:
                logger.warning(
                    "the app ID is unknown (set SLACK_APP_ID): button payloads are checked by workspace only"
                )
        return self._identity


async def recheck_all(
    engine: Engine,
    state: MonitoringState,
    *,
    by: str,
    agreement_ids: Collection[str] | None = None,
    backlink_ids: Collection[str] | None = None,
) -> tuple[RecheckSummary, list[PruneProposal]] | None:
    """A full recheck (:meth:`bot.engine.Engine.recheck`), or one limited to ``agreement_ids`` and
    ``backlink_ids`` (a scheduled run of what is due), unless one is already running: then None.

    One at a time, because a second full recheck right behind the first would fetch every partner page
    again for nothing (politeness), whoever asked for it."""
    if state.recheck_lock.locked():
        return None
    async with state.recheck_lock:
        return await engine.recheck(by=by, agreement_ids=agreement_ids, backlink_ids=backlink_ids)


async def recheck_when_free(
    engine: Engine, state: MonitoringState, *, by: str
) -> tuple[RecheckSummary, list[PruneProposal]]:
    """A full recheck as soon as none is running, and its result.

    Waits for the running recheck, which may have listed the tracked backlinks before new ones were added
    (by an import), then runs another. Requests arriving while one is queued share it and its result, so
    ten imports in a row cost at most two rechecks: still one full recheck at a time (politeness, as
    :func:`recheck_all`). Raises what :meth:`bot.engine.Engine.recheck` raises."""
    task = state.queued_recheck
    if task is None:
        task = asyncio.get_running_loop().create_task(_queued_recheck(engine, state, by), name="recheck")
        state.queued_recheck = task
    return await task


async def _queued_recheck(
    engine: Engine, state: MonitoringState, by: str
) -> tuple[RecheckSummary, list[PruneProposal]]:
    me = asyncio.current_task()
    try:
        async with state.recheck_lock:
            # Running now: a later request must queue another run, since this one may have read its list.
            if state.queued_recheck is me:
                state.queued_recheck = None
            return await engine.recheck(by=by)
    finally:
        if state.queued_recheck is me:  # cancelled while waiting (shutdown)
            state.queued_recheck = None
