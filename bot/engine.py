"""The core's composition root: :class:`Engine`, one per process, the object every front end holds.

It is the :class:`~bot.linkcheck.engine.LinkEngine` (checks, tracked backlinks, one HTTP client, the
store) plus the services built over it: agreements (:mod:`bot.agreements`), monitoring and pruning
(:mod:`bot.monitoring`). Front ends (the CLI, the Slack handlers, imports and audits) import ``Engine``
from here; nothing below this module imports it, so the capability packages stay free of cycles.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cached_property
from typing import TYPE_CHECKING

from bot.backlinks.registry import TrackedBacklink
from bot.errors import InputError
from bot.linkcheck.engine import LinkEngine, Progress, ProgressCallback

if TYPE_CHECKING:
    # Agreements, monitoring and pruning are built on first use: `linkpact check` (and /linkcheck)
    # never needs them, and importing them costs about 0.3 s of start-up.
    from bot.agreements.service import AgreementService
    from bot.monitoring.cadence import Cadence
    from bot.monitoring.prune import PruneBook, PruneProposal
    from bot.monitoring.recheck import Monitor, RecheckSummary

__all__ = ["Engine", "InputError", "Progress", "ProgressCallback", "TrackedBacklink"]


class Engine(LinkEngine):
    """The link engine with the agreement, monitoring and pruning services of the process.

    ``agreements``, ``monitor`` and ``prune`` are built (and their modules imported) on first access;
    plain attributes after that, so callers and tests may read or replace them.
    """

    @cached_property
    def agreements(self) -> AgreementService:
        from bot.agreements.service import AgreementService

        return AgreementService(
            self.store,
            self._verifier,
            self.backlinks,
            self.policy,
            clock=self.now,
            loss=self.settings.monitor.loss,
        )

    @cached_property
    def monitor(self) -> Monitor:
        from bot.monitoring.recheck import Monitor

        return Monitor(
            self.store,
            self._verifier,
            self.backlinks,
            self.agreements,
            clock=self.now,
            loss=self.settings.monitor.loss,
        )

    @cached_property
    def cadence(self) -> Cadence:
        """Which agreements and tracked backlinks a scheduled recheck verifies (docs/monitoring.md)."""
        from bot.monitoring.cadence import Cadence

        return Cadence(self.agreements, self.backlinks)

    @cached_property
    def prune(self) -> PruneBook:
        from bot.monitoring.prune import PruneBook

        return PruneBook(self.store, self.agreements, self.settings.prune, clock=self.now)

    async def recheck(
        self,
        *,
        agreement_ref: str | None = None,
        agreement_ids: Collection[str] | None = None,
        backlink_ids: Collection[str] | None = None,
        by: str = "scheduler",
    ) -> tuple[RecheckSummary, list[PruneProposal]]:
        """Recheck tracked backlinks and promised links (all, one agreement's, or the ids given: see
        :meth:`bot.monitoring.recheck.Monitor.recheck`), then apply the prune rules. Returns the recheck
        summary and the open prune proposals."""
        summary = await self.monitor.recheck(
            agreement_ref=agreement_ref, agreement_ids=agreement_ids, backlink_ids=backlink_ids, by=by
        )
        proposals = await self.prune.propose()
        return summary, proposals
