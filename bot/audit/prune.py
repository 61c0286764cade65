"""Findings turned into prune proposals: the approve-prune flow decides, the audit never prunes.

Only findings that question a partnership itself lead to a proposal (:data:`PRUNE_CODES`); the others
(a followed paid link, a footer placement, an anchor) are fixed by asking the partner, not by ending
the agreement. Each proposal is opened through :meth:`bot.monitoring.prune.PruneBook.propose_pinned`, for
every
agreement the finding concerns, with the reason code ``audit_<finding code>`` and the finding's summary.
"""

from __future__ import annotations

from collections import defaultdict

from bot.audit.models import FindingCode
from bot.audit.report import AuditReport
from bot.engine import Engine
from bot.monitoring.prune import PruneProposal, Reason

PRUNE_CODES = frozenset(
    {
        FindingCode.ONE_SIDED,
        FindingCode.UNRELATED_PARTNER,
        FindingCode.PARTNER_NOT_INDEXABLE,
        FindingCode.LINKS_PAGE,
        FindingCode.LINK_NETWORK,
    }
)
REASON_PREFIX = "audit_"


def prune_reasons(
    report: AuditReport, codes: frozenset[FindingCode] = PRUNE_CODES
) -> dict[str, list[Reason]]:
    """Agreement id -> the audit's reasons to review it for pruning (a links page of *ours* is ours to
    fix, so it proposes nothing)."""
    reasons: dict[str, list[Reason]] = defaultdict(list)
    for finding in report.findings:
        if finding.code not in codes:
            continue
        if finding.code is FindingCode.LINKS_PAGE and finding.side == "ours":
            continue
        reason = Reason(REASON_PREFIX + finding.code.value, finding.summary)
        for agreement_id in finding.agreement_ids:
            if reason not in reasons[agreement_id]:
                reasons[agreement_id].append(reason)
    return dict(reasons)


async def propose_prunes(
    engine: Engine, report: AuditReport, codes: frozenset[FindingCode] = PRUNE_CODES
) -> list[PruneProposal]:
    """Open prune proposals for the agreements concerned by ``report``'s findings in ``codes``. Nothing
    is pruned: each proposal waits for its owner (or an admin) to approve or keep it."""
    return await engine.prune.propose_pinned(prune_reasons(report, codes))
