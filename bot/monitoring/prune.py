"""Prune proposals: agreements that no longer qualify, each with its reasons, ended only by a person.

Rules (seed 001, "Review and Prune Periodically" and "Common mistakes"; ``../shared/domain.md``):

- ``one_sided``: our link is live, theirs is missing ``grace_days`` after the deadline;
- ``partner_link_lost``: a partner link that was live is lost (confirmed, :mod:`bot.backlinks.confirm`);
- ``partner_page_not_indexable``: the partner page is ``noindex``, canonicalised away or robots-blocked;
- ``links_page``: the partner page now carries ``links_page_min_external`` or more external links;
- ``low_relevance``: the relevance score given when qualifying is at or below ``min_relevance_score``;
- ``annual_review_due``: a year since the agreement was logged (or last kept).

A proposal is ``open`` until someone approves it (the agreement becomes ``pruned``) or keeps it (snoozed
for ``snooze_days``); one whose rules no longer apply becomes ``stale``. Only the agreement's owner or an
admin may approve, and two approvals at once cause exactly one transition (one store transaction decides).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.agreements.model import (
    AGREEMENTS_TABLE,
    HISTORY_TABLE,
    Agreement,
    AgreementState,
    Direction,
    LinkHealth,
    from_doc,
    to_doc,
)
from bot.agreements.service import AgreementService
from bot.backlinks.changes import Change, ChangeKind, log_changes
from bot.config import PruneSettings
from bot.store import Store, Tx

PROPOSALS_TABLE = "prune_proposals"
NOT_INDEXABLE_REASONS = frozenset({"noindex", "canonicalized_away", "robots_blocked"})


class ProposalStatus(StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    KEPT = "kept"
    STALE = "stale"


class Outcome(StrEnum):
    """What a button click did."""

    APPROVED = "approved"
    KEPT = "kept"
    NOT_ALLOWED = "not_allowed"  # not the owner nor an admin: nothing changed
    ALREADY_DECIDED = "already_decided"  # someone else (or a double click) decided first
    STALE = "stale"  # the reasons no longer apply
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class PruneProposal:
    id: str
    agreement_id: str
    partner: str
    owner: str
    reasons: tuple[Reason, ...]
    status: ProposalStatus
    created_at: str
    decided_by: str | None = None
    decided_at: str | None = None
    snoozed_until: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> PruneProposal:
        return cls(
            id=str(doc["id"]),
            agreement_id=doc["agreement_id"],
            partner=doc.get("partner", ""),
            owner=doc.get("owner", ""),
            reasons=tuple(Reason(r["code"], r["text"]) for r in doc.get("reasons", [])),
            status=ProposalStatus(doc["status"]),
            created_at=doc["created_at"],
            decided_by=doc.get("decided_by"),
            decided_at=doc.get("decided_at"),
            snoozed_until=doc.get("snoozed_until"),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    message: str
    proposal: PruneProposal | None = None
    agreement: Agreement | None = None
    # Our pages that still carry the outbound link to the partner: the owner should remove these.
    our_pages_to_edit: tuple[str, ...] = ()


def prune_reasons(agreement: Agreement, today: date, settings: PruneSettings) -> list[Reason]:
    """Why ``agreement`` should be pruned (empty when it still qualifies)."""
    if agreement.pruned_at:
        return []
    reasons = []
    state = agreement.state(today)
    late_by = (today - agreement.deadline).days
    if state is AgreementState.ONE_SIDED and late_by > settings.grace_days:
        reasons.append(
            Reason(
                "one_sided", f"our link is live but theirs is still missing {late_by} days after the deadline"
            )
        )
    for link in agreement.links:
        if link.direction is not Direction.THEIRS:
            continue
        if link.ever_healthy and link.health is LinkHealth.FAILING:
            if link.reason in NOT_INDEXABLE_REASONS:
                reasons.append(
                    Reason(
                        "partner_page_not_indexable",
                        f"{link.source_url} is no longer indexable ({link.reason})",
                    )
                )
            else:
                reasons.append(
                    Reason("partner_link_lost", f"their link on {link.source_url} is lost ({link.reason})")
                )
        if (
            link.seen_external_links is not None
            and link.seen_external_links >= settings.links_page_min_external
        ):
            reasons.append(
                Reason(
                    "links_page",
                    f"{link.source_url} has become a links page ({link.seen_external_links} external links)",
                )
            )
    score = agreement.qualification.relevance.score
    if score is not None and score <= settings.min_relevance_score:
        reasons.append(Reason("low_relevance", f"relevance was scored {score}/5"))
    logged = _date_of(agreement.created_at)
    if logged is not None and (today - logged).days >= settings.review_every_days:
        reasons.append(Reason("annual_review_due", f"logged {logged.isoformat()}: the yearly review is due"))
    return reasons


def _date_of(iso: str) -> date | None:
    try:
        return datetime.fromisoformat(iso).date()
    except ValueError:
        return None


class PruneBook:
    """Creates, lists and decides prune proposals."""

    def __init__(
        self,
        store: Store,
        agreements: AgreementService,
        settings: PruneSettings,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._agreements = agreements
        self._settings = settings
        self._clock = clock

    async def propose(self) -> list[PruneProposal]:
        """Apply the rules to every active agreement in one transaction: open new proposals, refresh the
        reasons of open ones, mark stale those whose reasons went away. Returns the open proposals."""
        now = self._clock()
        today = now.date()
        at = now.isoformat(timespec="seconds")

        def write(tx: Tx) -> list[PruneProposal]:
            out = []
            for doc in tx.find(AGREEMENTS_TABLE):
                agreement = from_doc(doc)
                if agreement.pruned_at:
                    continue
                reasons = self._reasons(agreement, today, tx)
                proposals = [
                    PruneProposal.from_doc(p) for p in tx.find(PROPOSALS_TABLE, agreement_id=agreement.id)
                ]
                current = next((p for p in proposals if p.status is ProposalStatus.OPEN), None)
                snoozed = any(
                    p.status is ProposalStatus.KEPT and p.snoozed_until and p.snoozed_until > at
                    for p in proposals
                )
                reason_docs = [{"code": r.code, "text": r.text} for r in reasons]
                if current is not None:
                    if reasons:
                        tx.update(PROPOSALS_TABLE, current.id, {"reasons": reason_docs})
                        out.append(replace(current, reasons=tuple(reasons)))
                    else:
                        tx.update(PROPOSALS_TABLE, current.id, {"status": ProposalStatus.STALE.value})
                elif reasons and not snoozed:
                    proposal_id = tx.insert(
                        PROPOSALS_TABLE,
                        {
                            "agreement_id": agreement.id,
                            "partner": agreement.partner_name,
                            "owner": agreement.owner,
                            "reasons": reason_docs,
                            "status": ProposalStatus.OPEN.value,
                            "created_at": at,
                        },
                    )
                    out.append(PruneProposal.from_doc(tx.get(PROPOSALS_TABLE, proposal_id) or {}))
            return out

        return await self._store.transact(write)

    async def propose_pinned(self, reasons: Mapping[str, Sequence[Reason]]) -> list[PruneProposal]:
        """Open a proposal (or add to the open one) for each agreement id in ``reasons``, with reasons
        found outside the rules above (an audit, :mod:`bot.audit.prune`). Such reasons are *pinned*:
        kept on the open proposal until someone decides it, since the rules cannot re-derive them.
        Agreements pruned, unknown or snoozed ("keep") are skipped. Returns the proposals touched."""
        now = self._clock()
        at = now.isoformat(timespec="seconds")

        def write(tx: Tx) -> list[PruneProposal]:
            out = []
            for agreement_id, found in reasons.items():
                doc = tx.get(AGREEMENTS_TABLE, agreement_id)
                if doc is None or doc.get("pruned_at") or not found:
                    continue
                proposals = [
                    PruneProposal.from_doc(p) for p in tx.find(PROPOSALS_TABLE, agreement_id=agreement_id)
                ]
                if any(
                    p.status is ProposalStatus.KEPT and p.snoozed_until and p.snoozed_until > at
                    for p in proposals
                ):
                    continue
                pinned = [{"code": r.code, "text": r.text} for r in found]
                current = next((p for p in proposals if p.status is ProposalStatus.OPEN), None)
                if current is None:
                    agreement = from_doc(doc)
                    rules = [
                        {"code": r.code, "text": r.text} for r in self._reasons(agreement, now.date(), tx)
                    ]
                    proposal_id = tx.insert(
                        PROPOSALS_TABLE,
                        {
                            "agreement_id": agreement_id,
                            "partner": agreement.partner_name,
                            "owner": agreement.owner,
                            "reasons": _union(rules, pinned),
                            "pinned_reasons": pinned,
                            "status": ProposalStatus.OPEN.value,
                            "created_at": at,
                        },
                    )
                else:
                    proposal_id = current.id
                    old = tx.get(PROPOSALS_TABLE, proposal_id) or {}
                    tx.update(
                        PROPOSALS_TABLE,
                        proposal_id,
                        {
                            "reasons": _union(old.get("reasons", []), pinned),
                            "pinned_reasons": _union(old.get("pinned_reasons", []), pinned),
                        },
                    )
                out.append(PruneProposal.from_doc(tx.get(PROPOSALS_TABLE, proposal_id) or {}))
            return out

        return await self._store.transact(write)

    def _reasons(self, agreement: Agreement, today: date, tx: Tx) -> list[Reason]:
        reasons = prune_reasons(agreement, today, self._settings)
        # Pinned reasons (propose_pinned) hold until the open proposal is decided.
        for doc in tx.find(PROPOSALS_TABLE, agreement_id=agreement.id, status=ProposalStatus.OPEN.value):
            for pinned in doc.get("pinned_reasons", []):
                reason = Reason(pinned["code"], pinned["text"])
                if reason not in reasons:
                    reasons.append(reason)
        # "Keep" on an annual review counts as the review: the year starts again from that decision.
        kept = [
            p["decided_at"]
            for p in tx.find(PROPOSALS_TABLE, agreement_id=agreement.id, status=ProposalStatus.KEPT.value)
            if p.get("decided_at")
        ]
        if kept:
            last_review = _date_of(max(kept))
            if last_review and (today - last_review).days < self._settings.review_every_days:
                reasons = [r for r in reasons if r.code != "annual_review_due"]
        return reasons

    async def open_proposals(self) -> list[PruneProposal]:
        docs = await self._store.find(PROPOSALS_TABLE, status=ProposalStatus.OPEN.value)
        return sorted((PruneProposal.from_doc(d) for d in docs), key=lambda p: p.created_at)

    async def get(self, proposal_id: str) -> PruneProposal | None:
        doc = await self._store.get(PROPOSALS_TABLE, proposal_id)
        return PruneProposal.from_doc(doc) if doc else None

    async def decide(self, proposal_id: str, *, approve: bool, user: str, is_admin: bool) -> Decision:
        """Approve (prune the agreement) or keep (snooze) a proposal, as ``user``.

        Exactly one transition happens however many clicks race: the check of the proposal's status
        and the write happen in one store transaction. Approving needs the agreement's owner or an
        admin; keeping does too (it silences a warning for a month)."""
        now = self._clock()
        at = now.isoformat(timespec="seconds")
        today = now.date()

        def write(tx: Tx) -> Decision:
            doc = tx.get(PROPOSALS_TABLE, proposal_id)
            if doc is None:
                return Decision(Outcome.NOT_FOUND, "This prune proposal no longer exists.")
            proposal = PruneProposal.from_doc(doc)
            agreement_doc = tx.get(AGREEMENTS_TABLE, proposal.agreement_id)
            if agreement_doc is None:
                return Decision(
                    Outcome.NOT_FOUND, "The agreement of this proposal no longer exists.", proposal
                )
            agreement = from_doc(agreement_doc)
            if user != agreement.owner and not is_admin:
                return Decision(
                    Outcome.NOT_ALLOWED,
                    f"Only the agreement's owner (<@{agreement.owner}>) or an admin can decide this.",
                    proposal,
                    agreement,
                )
            if proposal.status is not ProposalStatus.OPEN:
                who = f" by <@{proposal.decided_by}>" if proposal.decided_by else ""
                return Decision(
                    Outcome.ALREADY_DECIDED,
                    f"Already {proposal.status.value}{who}.",
                    proposal,
                    agreement,
                )
            if not approve:
                until = (now + timedelta(days=self._settings.snooze_days)).isoformat(timespec="seconds")
                fields = {"status": ProposalStatus.KEPT.value, "decided_by": user, "decided_at": at,
                          "snoozed_until": until}  # fmt: skip
                tx.update(PROPOSALS_TABLE, proposal.id, fields)
                _history(tx, agreement.id, user, at, "prune_kept", {"until": until})
                return Decision(
                    Outcome.KEPT,
                    f"Kept #{agreement.id} {agreement.partner_name}; "
                    f"asked again after {until[:10]} if still due.",
                    replace(proposal, status=ProposalStatus.KEPT, decided_by=user, decided_at=at),
                    agreement,
                )
            if agreement.pruned_at or not self._reasons(agreement, today, tx):
                tx.update(PROPOSALS_TABLE, proposal.id, {"status": ProposalStatus.STALE.value})
                return Decision(
                    Outcome.STALE,
                    "This proposal no longer applies (the agreement changed since); nothing was pruned.",
                    replace(proposal, status=ProposalStatus.STALE),
                    agreement,
                )
            pruned = replace(agreement, pruned_at=at, pruned_by=user, updated_at=at)
            tx.update(
                AGREEMENTS_TABLE,
                agreement.id,
                {k: to_doc(pruned)[k] for k in ("pruned_at", "pruned_by", "updated_at")},
            )
            tx.update(
                PROPOSALS_TABLE,
                proposal.id,
                {"status": ProposalStatus.APPROVED.value, "decided_by": user, "decided_at": at},
            )
            reasons = [r.code for r in proposal.reasons]
            _history(tx, agreement.id, user, at, "pruned", {"reasons": reasons})
            log_changes(
                tx,
                [
                    Change(
                        at=at,
                        kind=ChangeKind.PRUNED,
                        subject="agreement",
                        reason=",".join(reasons),
                        agreement_id=agreement.id,
                        partner=agreement.partner_name,
                    )
                ],
            )
            ours = tuple(link.source_url for link in agreement.links if link.direction is Direction.OURS)
            pages = "\n".join(f"• {url}" for url in ours) or "(none recorded)"
            return Decision(
                Outcome.APPROVED,
                f"Pruned #{agreement.id} {agreement.partner_name} (approved by <@{user}>). "
                f"Remove our link to the partner from:\n{pages}\nThe next recheck confirms that it is gone.",
                replace(proposal, status=ProposalStatus.APPROVED, decided_by=user, decided_at=at),
                pruned,
                ours,
            )

        return await self._store.transact(write)


def _union(first: list[dict[str, str]], more: list[dict[str, str]]) -> list[dict[str, str]]:
    """``first`` with ``more`` added; an entry of ``more`` replaces those of ``first`` with its code (a
    later audit's numbers replace an earlier one's)."""
    codes = {r["code"] for r in more}
    return [r for r in first if r["code"] not in codes] + more


def _history(tx: Tx, agreement_id: str, by: str, at: str, action: str, details: dict[str, Any]) -> None:
    tx.insert(HISTORY_TABLE, {"agreement_id": agreement_id, "at": at, "by": by, "action": action, **details})
