"""Which agreements and tracked backlinks a scheduled recheck should verify now (docs/monitoring.md,
"Cadence").

Each agreement is rechecked on its own cadence, set by its priority
(:data:`bot.agreements.model.PRIORITY_INTERVAL_H`: high daily, normal every 3 days, low weekly); a tracked
backlink that is no agreement's promised link is rechecked every ``LINKPACT_RECHECK_INTERVAL_H`` hours. A
partner-side promised link is also a tracked backlink: it follows its agreement's cadence, so a low
priority partner's page is not fetched daily through the back door.

The scheduler (``handlers/scheduler.py``) ticks every :data:`CADENCE_TICK_H` hours and rechecks what
:meth:`Cadence.due` returns; nothing due, nothing fetched. Due times come from what the store remembers
(each link's last check), so a restart neither skips nor repeats a recheck.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.agreements.model import (
    PRIORITY_INTERVAL_H,
    Agreement,
    AgreementState,
    Direction,
    LinkHealth,
    Priority,
    PromisedLink,
)
from bot.agreements.service import AgreementService
from bot.backlinks.registry import BacklinkRegistry, TrackedBacklink

# How often the scheduler looks for due work, hours. An hour keeps every cadence within an hour of its
# interval; a tick that finds nothing due reads the store and fetches nothing.
CADENCE_TICK_H = 1.0
# A link is stamped when its check finished, minutes after the tick that started it; without this slack
# the next check would wait for the tick after (a daily agreement would be checked every 25 hours).
DUE_EARLY_H = CADENCE_TICK_H / 2
# A suspected loss (seen failing once, not yet confirmed) is rechecked on the high cadence whatever the
# priority, so the confirming check (LINKPACT_LOSS_CONFIRM_AFTER_H, 20 h by default) comes a day later
# rather than a week later for a low-priority partner.
SUSPECT_RECHECK_H = PRIORITY_INTERVAL_H[Priority.HIGH]
# Due "since ever": an agreement or backlink never checked.
NEVER_CHECKED = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DueWork:
    """What a scheduled recheck verifies: agreement ids and tracked-backlink ids (both may be empty)."""

    agreement_ids: tuple[str, ...] = ()
    backlink_ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.agreement_ids or self.backlink_ids)


def _parse(stamp: str | None) -> datetime:
    if not stamp:
        return NEVER_CHECKED
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return NEVER_CHECKED  # unreadable: check it again rather than never
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def agreement_interval_h(agreement: Agreement) -> float:
    """Hours between two scheduled rechecks of ``agreement``: its priority's interval, or
    :data:`SUSPECT_RECHECK_H` while one of its links is a suspected loss."""
    interval = agreement.recheck_interval_h
    if any(link.suspicion is not None for link in agreement.links):
        return min(interval, SUSPECT_RECHECK_H)
    return interval


def agreement_due_at(agreement: Agreement) -> datetime:
    """When ``agreement`` is next due: the oldest last check of the links a recheck verifies (every link;
    on a pruned agreement only our links not yet gone) plus :func:`agreement_interval_h`;
    :data:`NEVER_CHECKED` when one of them was never checked."""
    links = agreement.links
    if agreement.pruned_at is not None:
        links = tuple(link for link in links if _our_link_up(link))
    last = min((_parse(link.checked_at) for link in links), default=NEVER_CHECKED)
    if last == NEVER_CHECKED:
        return last
    return last + timedelta(hours=agreement_interval_h(agreement))


def backlink_due_at(backlink: TrackedBacklink, interval_h: float) -> datetime:
    last = _parse(backlink.last_checked_at)
    return last if last == NEVER_CHECKED else last + timedelta(hours=interval_h)


def rechecked_agreements(active: Sequence[Agreement], pruned: Sequence[Agreement]) -> list[Agreement]:
    """The agreements a recheck verifies: every active one, and a pruned one while our own link to the
    partner is not gone yet (docs/monitoring.md, "After a prune")."""
    return [*active, *(a for a in pruned if _our_link_may_be_up(a))]


def _our_link_may_be_up(agreement: Agreement) -> bool:
    return any(_our_link_up(link) for link in agreement.links)


def _our_link_up(link: PromisedLink) -> bool:
    # The same selection as Monitor.recheck's for pruned agreements.
    return link.direction is Direction.OURS and link.health is not LinkHealth.FAILING


def _due_times(
    agreements: Sequence[Agreement], backlinks: Sequence[TrackedBacklink], backlink_interval_h: float
) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """Each agreement's and each backlink's due time. A backlink that is a promised link of one of
    ``agreements`` (not pruned) is left out: it is verified with its agreement."""
    agreement_times = {a.id: agreement_due_at(a) for a in agreements}
    followed = {a.id for a in agreements if a.pruned_at is None}
    backlink_times = {
        b.id: backlink_due_at(b, backlink_interval_h) for b in backlinks if b.agreement_id not in followed
    }
    return agreement_times, backlink_times


def due_work(
    agreements: Sequence[Agreement],
    backlinks: Sequence[TrackedBacklink],
    now: datetime,
    *,
    backlink_interval_h: float,
) -> DueWork:
    """What is due at ``now`` (with :data:`DUE_EARLY_H` of slack): the agreements (as returned by
    :func:`rechecked_agreements`) and tracked backlinks whose due time has come, in the order given, plus
    every partner-side backlink of a due agreement (it is that agreement's promised link)."""
    horizon = now + timedelta(hours=DUE_EARLY_H)
    agreement_times, backlink_times = _due_times(agreements, backlinks, backlink_interval_h)
    due_agreements = {agreement_id for agreement_id, at in agreement_times.items() if at <= horizon}
    due_backlinks = [
        b.id
        for b in backlinks
        if (b.id in backlink_times and backlink_times[b.id] <= horizon)
        or (b.id not in backlink_times and b.agreement_id in due_agreements)
    ]
    return DueWork(
        agreement_ids=tuple(a.id for a in agreements if a.id in due_agreements),
        backlink_ids=tuple(due_backlinks),
    )


def next_due_at(
    agreements: Sequence[Agreement], backlinks: Sequence[TrackedBacklink], *, backlink_interval_h: float
) -> datetime | None:
    """The earliest due time of anything (:data:`NEVER_CHECKED` when something was never checked), or
    None when there is nothing to recheck at all."""
    agreement_times, backlink_times = _due_times(agreements, backlinks, backlink_interval_h)
    return min([*agreement_times.values(), *backlink_times.values()], default=None)


class Cadence:
    """:func:`due_work` and :func:`next_due_at` over the stored agreements and tracked backlinks."""

    def __init__(self, agreements: AgreementService, backlinks: BacklinkRegistry) -> None:
        self._agreements = agreements
        self._backlinks = backlinks

    async def _candidates(self) -> tuple[list[Agreement], list[TrackedBacklink]]:
        active = await self._agreements.active()
        pruned = await self._agreements.all(AgreementState.PRUNED)
        return rechecked_agreements(active, pruned), await self._backlinks.tracked()

    async def due(self, now: datetime, *, backlink_interval_h: float) -> DueWork:
        """What a scheduled recheck at ``now`` verifies (:func:`due_work`)."""
        agreements, backlinks = await self._candidates()
        return due_work(agreements, backlinks, now, backlink_interval_h=backlink_interval_h)

    async def next_due_at(self, *, backlink_interval_h: float) -> datetime | None:
        """When the next scheduled recheck has something to do (:func:`next_due_at`)."""
        agreements, backlinks = await self._candidates()
        return next_due_at(agreements, backlinks, backlink_interval_h=backlink_interval_h)
