"""Rechecks: verify every tracked backlink and every promised link, log what changed, keep a weekly snapshot.

One recheck verifies everything in a single :meth:`BacklinkVerifier.verify` call, so each source page
is fetched once however many tracked or promised links it carries, through the process's one HTTP
client and its per-host limits (polite to partners' servers). Losses are confirmed over several checks
(:mod:`bot.backlinks.confirm`); ``unknown`` results never count.

Each recheck also upserts the ISO week's snapshot (``snapshots`` table): live links and live referring
domains, from which the digest draws its 12-week trend and the referring domains live now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.agreements.model import AgreementState, Direction, LinkHealth
from bot.agreements.service import AgreementService, as_backlinks, promised_links
from bot.backlinks.changes import Change
from bot.backlinks.registry import BACKLINKS_TABLE, BacklinkRegistry
from bot.config import LossPolicy
from bot.linkcheck.inbound import BacklinkVerifier
from bot.models import InboundResult
from bot.store import Store, Tx
from bot.urls import url_registrable_domain

logger = logging.getLogger(__name__)

SNAPSHOTS_TABLE = "snapshots"


def iso_week(moment: datetime) -> str:
    """``2026-W47``: the ISO 8601 week a moment falls in (weeks start on Monday)."""
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True)
class RecheckSummary:
    started_at: str
    backlinks: int
    promised_links: int
    verdicts: dict[str, int]
    changes: tuple[Change, ...] = ()
    agreements: int = 0
    snapshot: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "backlinks": self.backlinks,
            "promised_links": self.promised_links,
            "agreements": self.agreements,
            "verdicts": self.verdicts,
            "changes": [change.to_doc() for change in self.changes],
            "snapshot": self.snapshot,
        }


class Monitor:
    def __init__(
        self,
        store: Store,
        verifier: BacklinkVerifier,
        backlinks: BacklinkRegistry,
        agreements: AgreementService,
        *,
        clock: Callable[[], datetime],
        loss: LossPolicy,
    ) -> None:
        self._store = store
        self._verifier = verifier
        self._backlinks = backlinks
        self._agreements = agreements
        self._clock = clock
        self._loss = loss

    async def recheck(
        self,
        *,
        agreement_ref: str | None = None,
        agreement_ids: Collection[str] | None = None,
        backlink_ids: Collection[str] | None = None,
        by: str = "scheduler",
    ) -> RecheckSummary:
        """Recheck everything (default), or only one agreement's promised links (``agreement_ref``).
        ``agreement_ids`` and ``backlink_ids`` limit a run to those agreements and tracked backlinks (a
        scheduled run: what :mod:`bot.monitoring.cadence` says is due); None means all of them. Never
        raises for network trouble: it is in the results as ``unknown``."""
        started = self._clock()
        only_agreements = None if agreement_ids is None else set(agreement_ids)
        if agreement_ref is not None:
            agreements = [await self._agreements.get(agreement_ref)]
            tracked = []
        else:
            agreements = await self._agreements.active()
            tracked = await self._backlinks.tracked()
            if only_agreements is not None:
                agreements = [a for a in agreements if a.id in only_agreements]
            if backlink_ids is not None:
                only_backlinks = set(backlink_ids)
                tracked = [b for b in tracked if b.id in only_backlinks]
        pairs = promised_links(agreements)
        if agreement_ref is None:
            # After a prune, our own link to the partner should go: keep checking it until it has.
            pairs += [
                (agreement, link)
                for agreement in await self._agreements.all(AgreementState.PRUNED)
                if only_agreements is None or agreement.id in only_agreements
                for link in agreement.links
                if link.direction is Direction.OURS and link.health is not LinkHealth.FAILING
            ]
        results = await self._verifier.verify([*tracked, *as_backlinks(pairs)])
        tracked_results = list(results[: len(tracked)])
        promised_results = list(results[len(tracked) :])
        changes: list[Change] = []
        if tracked:
            changes += await self._backlinks.record(
                list(zip(tracked, tracked_results, strict=True)), now=started, loss=self._loss
            )
        if pairs:
            _, found = await self._agreements.record(pairs, promised_results, by=by)
            changes += found
        snapshot = await self.snapshot()
        summary = RecheckSummary(
            started_at=started.isoformat(timespec="seconds"),
            backlinks=len(tracked),
            promised_links=len(pairs),
            agreements=len(agreements),
            verdicts=_count(results),
            changes=tuple(changes),
            snapshot=snapshot,
        )
        logger.info(
            "recheck: %d backlinks, %d promised links, %d changes",
            summary.backlinks,
            summary.promised_links,
            len(changes),
        )
        return summary

    async def snapshot(self) -> dict[str, Any]:
        """Upsert this ISO week's snapshot: live links and the live referring domains."""
        now = self._clock()

        def write(tx: Tx) -> dict[str, Any]:
            live = [doc for doc in tx.find(BACKLINKS_TABLE) if doc.get("state") == "live"]
            domains = sorted({url_registrable_domain(doc["source_url"]) for doc in live})
            doc = {
                "id": iso_week(now),
                "week": iso_week(now),
                "at": now.isoformat(timespec="seconds"),
                "live_links": len(live),
                "referring_domains": domains,
            }
            tx.upsert(SNAPSHOTS_TABLE, doc, key=("id",))
            return doc

        return await self._store.transact(write)

    async def snapshots(self) -> list[dict[str, Any]]:
        """Every weekly snapshot, oldest first."""
        return sorted(await self._store.find(SNAPSHOTS_TABLE), key=lambda doc: doc["week"])


def _count(results: Sequence[InboundResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.verdict.value] = counts.get(result.verdict.value, 0) + 1
    return counts
