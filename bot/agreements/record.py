"""A partner's track record: how they kept their side of every agreement with them.

Computed from what the store keeps (:func:`partner_record` is pure over those documents):

- **days to deliver**: from an agreement's start (``created_at``) to the first check that found one of
  *their* promised links live (the agreement history's ``link_checked`` entries, or the change log's
  ``new`` entry of that link);
- **live share**: of the checks of their promised links that gave a definite answer, the share in which
  the link was there as agreed (``definite_checks`` and ``live_checks`` on each link; ``unknown`` checks,
  when the page could not be read, count for neither side);
- **losses**: confirmed losses of their promised links (change log, ``lost``);
- **reclaims**: losses followed by the link being live again (``restored`` after a ``lost`` of the same
  link).

Only the partner's side counts (``theirs`` links): our own links say nothing about them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.agreements.model import Agreement, Direction, from_doc
from bot.backlinks.changes import ChangeKind

SECONDS_PER_DAY = 86_400
# Days are shown with one decimal: "delivered in 0.5 days" says more than "0 days" for a same-day link.
DAYS_DECIMALS = 1


@dataclass(frozen=True, slots=True)
class AgreementRecord:
    """One agreement's part of the record. ``days_to_deliver`` is None while nothing of theirs was seen
    live (then ``waiting_days`` says for how long); both are None for an agreement without their links."""

    id: str
    partner_name: str
    state: str
    started_at: str
    their_links: int
    delivered_at: str | None
    days_to_deliver: float | None
    waiting_days: float | None
    definite_checks: int
    live_checks: int
    losses: int
    reclaims: int

    @property
    def live_share(self) -> float | None:
        """``live_checks / definite_checks`` (0..1), or None before any definite check."""
        return self.live_checks / self.definite_checks if self.definite_checks else None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "partner_name": self.partner_name,
            "state": self.state,
            "started_at": self.started_at,
            "their_links": self.their_links,
            "delivered_at": self.delivered_at,
            "days_to_deliver": self.days_to_deliver,
            "waiting_days": self.waiting_days,
            "definite_checks": self.definite_checks,
            "live_checks": self.live_checks,
            "live_share": self.live_share,
            "losses": self.losses,
            "reclaims": self.reclaims,
        }


@dataclass(frozen=True, slots=True)
class PartnerRecord:
    """Every agreement with one partner (by registrable domain), newest first, and the totals."""

    domain: str
    agreements: tuple[AgreementRecord, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.partner_name for a in self.agreements))

    @property
    def delivered(self) -> int:
        return sum(1 for a in self.agreements if a.days_to_deliver is not None)

    @property
    def awaited(self) -> int:
        """Agreements with their links whose partner has not delivered yet."""
        return sum(1 for a in self.agreements if a.waiting_days is not None)

    @property
    def median_days_to_deliver(self) -> float | None:
        """The median over delivered agreements (one slow agreement does not hide many quick ones)."""
        days = [a.days_to_deliver for a in self.agreements if a.days_to_deliver is not None]
        return round(statistics.median(days), DAYS_DECIMALS) if days else None

    @property
    def definite_checks(self) -> int:
        return sum(a.definite_checks for a in self.agreements)

    @property
    def live_checks(self) -> int:
        return sum(a.live_checks for a in self.agreements)

    @property
    def live_share(self) -> float | None:
        return self.live_checks / self.definite_checks if self.definite_checks else None

    @property
    def losses(self) -> int:
        return sum(a.losses for a in self.agreements)

    @property
    def reclaims(self) -> int:
        return sum(a.reclaims for a in self.agreements)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "names": list(self.names),
            "agreements": len(self.agreements),
            "delivered": self.delivered,
            "awaited": self.awaited,
            "median_days_to_deliver": self.median_days_to_deliver,
            "definite_checks": self.definite_checks,
            "live_checks": self.live_checks,
            "live_share": self.live_share,
            "losses": self.losses,
            "reclaims": self.reclaims,
            "by_agreement": [a.to_json() for a in self.agreements],
        }


def _moment(stamp: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _days(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max((end - start).total_seconds(), 0.0) / SECONDS_PER_DAY, DAYS_DECIMALS)


def agreement_record(
    agreement: Agreement,
    history: Iterable[Mapping[str, Any]],
    changes: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
) -> AgreementRecord:
    """The record of one agreement from its history entries and change-log documents (other agreements'
    entries are ignored), as of ``now``."""
    theirs = {link.id for link in agreement.links if link.direction is Direction.THEIRS}
    live_stamps = [
        str(entry.get("at", ""))
        for entry in history
        if entry.get("agreement_id") == agreement.id
        and entry.get("action") == "link_checked"
        and entry.get("health") == "healthy"
        and entry.get("link") in theirs
    ]
    their_changes = sorted(
        (doc for doc in changes if doc.get("agreement_id") == agreement.id and doc.get("link_id") in theirs),
        key=lambda doc: str(doc.get("at", "")),
    )
    losses = reclaims = 0
    lost_links: set[str] = set()
    for doc in their_changes:
        if doc.get("subject") != "promised_link":
            continue
        kind, link_id = doc.get("kind"), str(doc.get("link_id"))
        if kind == ChangeKind.NEW.value:
            live_stamps.append(str(doc.get("at", "")))
        elif kind == ChangeKind.LOST.value:
            losses += 1
            lost_links.add(link_id)
        elif kind == ChangeKind.RESTORED.value and link_id in lost_links:
            reclaims += 1
            lost_links.discard(link_id)
    started = _moment(agreement.created_at)
    delivered = min((m for m in map(_moment, live_stamps) if m is not None), default=None)
    links = [link for link in agreement.links if link.direction is Direction.THEIRS]
    return AgreementRecord(
        id=agreement.id,
        partner_name=agreement.partner_name,
        state=agreement.state(now.date()).value,
        started_at=agreement.created_at,
        their_links=len(links),
        delivered_at=delivered.isoformat(timespec="seconds") if delivered else None,
        days_to_deliver=_days(started, delivered),
        waiting_days=_days(started, now) if theirs and delivered is None else None,
        definite_checks=sum(link.definite_checks for link in links),
        live_checks=sum(link.live_checks for link in links),
        losses=losses,
        reclaims=reclaims,
    )


def partner_record(
    domain: str,
    agreement_docs: Iterable[Mapping[str, Any]],
    history: Iterable[Mapping[str, Any]],
    changes: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
) -> PartnerRecord:
    """The track record of the partner at registrable ``domain`` from stored agreement documents, their
    history entries (``agreement_history``) and change-log documents (``changes``), as of ``now``.
    Agreements with other partners are ignored; none at all gives a record without agreements."""
    agreements = [from_doc(doc) for doc in agreement_docs]
    mine = [a for a in agreements if a.partner_domain == domain]
    mine.sort(key=lambda a: (a.created_at, int(a.id) if a.id.isdigit() else 0), reverse=True)
    history, changes = list(history), list(changes)
    return PartnerRecord(
        domain=domain, agreements=tuple(agreement_record(a, history, changes, now=now) for a in mine)
    )
