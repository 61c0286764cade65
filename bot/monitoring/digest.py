"""The weekly digest: what changed since the last one, what needs a decision, and the trend.

Built from the change log (:mod:`bot.backlinks.changes`), the weekly snapshots
(:mod:`bot.monitoring.recheck`), the agreements
and the open prune proposals. Posting it exactly once per period is the job of :class:`DigestLedger`.

Referring domains follow the field's count (``../shared/domain.md``): the registrable domain of a source
page; a referring domain is *new* when it has a live link now and had none at the previous posted digest
(whose ledger entry keeps the set it saw), and *lost* only when no live link from it remains.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from bot.agreements.model import Agreement, AgreementState, Direction, LinkHealth
from bot.agreements.service import AgreementService
from bot.backlinks.changes import CHANGES_TABLE, Change, ChangeKind
from bot.monitoring.prune import PruneBook, PruneProposal
from bot.monitoring.recheck import SNAPSHOTS_TABLE, iso_week
from bot.store import Store

DIGESTS_TABLE = "digests"
TREND_WEEKS = 12
SPARK_CHARS = "▁▂▃▄▅▆▇█"
DIGEST_PERIOD_DAYS = 7


@dataclass(frozen=True, slots=True)
class DigestLink:
    source_url: str
    target_url: str
    reason: str
    at: str
    partner: str = ""
    agreement_id: str = ""
    referring_domain: str = ""


@dataclass(frozen=True, slots=True)
class AgreementDue:
    id: str
    partner: str
    owner: str
    deadline: str
    state: str
    # Source pages of the promised links not (yet) healthy; for a pruned agreement, our pages that still
    # carry the link to the partner (to be removed).
    missing: tuple[str, ...]
    # When Linkpact last checked the agreement (its latest link check, ISO 8601 UTC); None: never yet.
    last_checked: str | None = None


@dataclass(frozen=True, slots=True)
class TrendPoint:
    week: str
    referring_domains: int
    live_links: int


@dataclass(frozen=True, slots=True)
class Digest:
    period: str  # the ISO week the digest is for, e.g. "2026-W47"
    since: str
    until: str
    lost: tuple[DigestLink, ...] = ()
    restored: tuple[DigestLink, ...] = ()
    new_referring_domains: tuple[str, ...] = ()
    lost_referring_domains: tuple[str, ...] = ()
    overdue: tuple[AgreementDue, ...] = ()
    one_sided: tuple[AgreementDue, ...] = ()
    proposals: tuple[PruneProposal, ...] = ()
    still_linking_pruned: tuple[AgreementDue, ...] = ()
    totals: dict[str, Any] = field(default_factory=dict)
    trend: tuple[TrendPoint, ...] = ()
    referring_domains: tuple[str, ...] = ()  # live now; the next digest compares against these

    @property
    def is_quiet(self) -> bool:
        return not (
            self.lost or self.restored or self.new_referring_domains or self.lost_referring_domains
            or self.overdue or self.one_sided or self.proposals or self.still_linking_pruned
        )  # fmt: skip


def sparkline(values: Sequence[int]) -> str:
    """A one-line chart (``▁▃▅█``) scaled between the smallest and largest value."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return SPARK_CHARS[0] * len(values)
    steps = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[round((v - low) / (high - low) * steps)] for v in values)


def _dedupe_links(changes: Sequence[Change]) -> tuple[DigestLink, ...]:
    """One row per (source, target): a promised link (it names the partner) wins over the plain
    backlink that tracks the same pair; the latest change wins within a kind."""
    rows: dict[tuple[str, str], DigestLink] = {}
    for change in sorted(changes, key=lambda c: (c.subject != "promised_link", c.at)):
        key = (change.source_url, change.target_url)
        current = rows.get(key)
        if current is not None and current.partner:
            continue
        rows[key] = DigestLink(
            source_url=change.source_url,
            target_url=change.target_url,
            reason=change.reason,
            at=change.at,
            partner=change.partner or (current.partner if current else ""),
            agreement_id=change.agreement_id,
            referring_domain=change.referring_domain,
        )
    return tuple(sorted(rows.values(), key=lambda r: (r.partner or r.referring_domain, r.source_url)))


def _due(agreement: Agreement, today: date) -> AgreementDue:
    return AgreementDue(
        id=agreement.id,
        partner=agreement.partner_name,
        owner=agreement.owner,
        deadline=agreement.deadline.isoformat(),
        state=agreement.state(today).value,
        missing=tuple(link.source_url for link in agreement.links if link.health is not LinkHealth.HEALTHY),
        last_checked=max((link.checked_at for link in agreement.links if link.checked_at), default=None),
    )


async def build_digest(
    store: Store,
    agreements: AgreementService,
    prune: PruneBook,
    *,
    until: datetime,
    since: datetime | None = None,
) -> Digest:
    """The digest for the period ending at ``until`` (default start: the previous posted digest, else a
    week earlier)."""
    if since is None:
        previous = await previous_digest(store, until)
        if previous is not None:
            since = datetime.fromisoformat(previous["until"])
        else:
            since = until - timedelta(days=DIGEST_PERIOD_DAYS)
    since_iso, until_iso = since.isoformat(timespec="seconds"), until.isoformat(timespec="seconds")
    today = until.date()
    changes = [
        Change.from_doc(doc)
        for doc in await store.find(CHANGES_TABLE)
        if since_iso <= doc.get("at", "") < until_iso
    ]
    pruned_ids = {a.id for a in await agreements.all(AgreementState.PRUNED)}
    # A lost link of ours on a pruned agreement is the removal we asked for, not a loss.
    losses = [
        c for c in changes
        if c.kind is ChangeKind.LOST and not (c.agreement_id in pruned_ids and c.subject == "promised_link")
    ]  # fmt: skip
    restored = [c for c in changes if c.kind is ChangeKind.RESTORED]

    snapshots = sorted(await store.find(SNAPSHOTS_TABLE), key=lambda s: s["week"])
    current = snapshots[-1] if snapshots else None
    now_domains = set(current["referring_domains"]) if current else set()
    # Compared with what the previous posted digest saw (no previous digest: everything live is new).
    previous = await previous_digest(store, until)
    old_domains = set(previous.get("referring_domains", [])) if previous else set()

    active = await agreements.active()
    all_agreements = await agreements.all()
    states: dict[str, int] = {state.value: 0 for state in AgreementState}
    for agreement in all_agreements:
        states[agreement.state(today).value] += 1
    trend = tuple(
        TrendPoint(s["week"], len(s["referring_domains"]), s["live_links"]) for s in snapshots[-TREND_WEEKS:]
    )
    still_linking = tuple(
        replace(_due(a, today), missing=ours_still_up)
        for a in all_agreements
        if a.id in pruned_ids
        for ours_still_up in [
            tuple(
                link.source_url
                for link in a.links
                if link.direction is Direction.OURS and link.health is LinkHealth.HEALTHY
            )
        ]
        if ours_still_up
    )
    return Digest(
        period=iso_week(until),
        since=since_iso,
        until=until_iso,
        lost=_dedupe_links(losses),
        restored=_dedupe_links(restored),
        new_referring_domains=tuple(sorted(now_domains - old_domains)),
        lost_referring_domains=tuple(sorted(old_domains - now_domains)),
        overdue=tuple(
            _due(a, today)
            for a in active
            if a.overdue(today) and a.state(today) is not AgreementState.ONE_SIDED
        ),
        one_sided=tuple(_due(a, today) for a in active if a.state(today) is AgreementState.ONE_SIDED),
        proposals=tuple(await prune.open_proposals()),
        still_linking_pruned=still_linking,
        totals={
            "referring_domains": len(now_domains),
            "live_links": current["live_links"] if current else 0,
            "agreements": states,
        },
        trend=trend,
        referring_domains=tuple(sorted(now_domains)),
    )


async def previous_digest(store: Store, before: datetime) -> dict[str, Any] | None:
    """The ledger document of the latest digest posted for a period ending before ``before``."""
    cutoff = before.isoformat(timespec="seconds")
    posted = [
        doc
        for doc in await store.find(DIGESTS_TABLE, status="posted")
        if doc.get("until") and doc["until"] < cutoff
    ]
    return max(posted, key=lambda doc: doc["until"]) if posted else None


def digest_to_json(digest: Digest) -> dict[str, Any]:
    def links(rows: Sequence[DigestLink]) -> list[dict[str, Any]]:
        return [
            {
                "source_url": r.source_url,
                "target_url": r.target_url,
                "reason": r.reason,
                "at": r.at,
                "partner": r.partner,
                "agreement_id": r.agreement_id,
                "referring_domain": r.referring_domain,
            }
            for r in rows
        ]

    def dues(rows: Sequence[AgreementDue]) -> list[dict[str, Any]]:
        return [
            {"id": r.id, "partner": r.partner, "owner": r.owner, "deadline": r.deadline, "state": r.state,
             "missing": list(r.missing), "last_checked": r.last_checked}
            for r in rows
        ]  # fmt: skip

    return {
        "period": digest.period,
        "since": digest.since,
        "until": digest.until,
        "lost": links(digest.lost),
        "restored": links(digest.restored),
        "new_referring_domains": list(digest.new_referring_domains),
        "lost_referring_domains": list(digest.lost_referring_domains),
        "overdue": dues(digest.overdue),
        "one_sided": dues(digest.one_sided),
        "proposals": [proposal_to_json(p) for p in digest.proposals],
        "still_linking_pruned": dues(digest.still_linking_pruned),
        "totals": digest.totals,
        "trend": [
            {"week": t.week, "referring_domains": t.referring_domains, "live_links": t.live_links}
            for t in digest.trend
        ],
        "sparkline": trend_sparkline(digest),
    }


def proposal_to_json(proposal: PruneProposal) -> dict[str, Any]:
    return {
        "id": proposal.id,
        "agreement_id": proposal.agreement_id,
        "partner": proposal.partner,
        "owner": proposal.owner,
        "reasons": [{"code": r.code, "text": r.text} for r in proposal.reasons],
    }


def trend_sparkline(digest: Digest) -> str:
    values = [t.referring_domains for t in digest.trend]
    if not values:
        return ""
    return f"referring domains {sparkline(values)} {values[-1]} (12 weeks)"


def render_digest_text(digest: Digest) -> str:
    lines = [f"Linkpact digest {digest.period} ({digest.since[:10]} to {digest.until[:10]})"]
    totals = digest.totals
    domains, live = totals.get("referring_domains", 0), totals.get("live_links", 0)
    lines.append(f"Referring domains: {domains}, live backlinks: {live}")
    if digest.trend:
        lines.append(trend_sparkline(digest))

    def section(title: str, rows: Sequence[str]) -> None:
        if rows:
            lines.append(f"\n{title} ({len(rows)}):")
            lines.extend(f"  {row}" for row in rows)

    section(
        "Lost links",
        [
            f"{r.source_url} -> {r.target_url} ({r.reason}){' · ' + r.partner if r.partner else ''}"
            for r in digest.lost
        ],
    )
    section("Restored", [f"{r.source_url} -> {r.target_url}" for r in digest.restored])
    section("New referring domains", list(digest.new_referring_domains))
    section("Lost referring domains", list(digest.lost_referring_domains))
    section(
        "One-sided agreements",
        [
            f"#{a.id} {a.partner} (deadline {a.deadline}, owner {a.owner}, {checked_text(a.last_checked)})"
            for a in digest.one_sided
        ],
    )
    section(
        "Overdue agreements",
        [
            f"#{a.id} {a.partner} (deadline {a.deadline}, owner {a.owner}, {checked_text(a.last_checked)})"
            for a in digest.overdue
        ],
    )
    section(
        "Proposed for pruning",
        [f"#{p.agreement_id} {p.partner}: " + "; ".join(r.text for r in p.reasons) for p in digest.proposals],
    )
    section(
        "Pruned, but our link is still up",
        [
            f"#{a.id} {a.partner}: remove it from "
            + ", ".join(a.missing)
            + f" ({checked_text(a.last_checked)})"
            for a in digest.still_linking_pruned
        ],
    )
    if digest.is_quiet:
        lines.append("\nNothing changed this week.")
    return "\n".join(lines) + "\n"


def checked_text(last_checked: str | None) -> str:
    """``last checked 2026-11-02 09:00 UTC`` (stored timestamps are UTC), or ``not checked yet``."""
    if not last_checked:
        return "not checked yet"
    return f"last checked {last_checked[:16].replace('T', ' ')} UTC"


def trend_chart_png(digest: Digest) -> bytes | None:
    """A PNG chart of referring domains and live links over the last 12 weeks (matplotlib, Agg backend);
    None when there is no trend yet."""
    if not digest.trend:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    weeks = [t.week.split("-")[1] for t in digest.trend]
    figure = Figure(figsize=(6.4, 2.8), dpi=100)
    axes = figure.subplots()
    axes.plot(weeks, [t.referring_domains for t in digest.trend], marker="o", label="referring domains")
    axes.plot(weeks, [t.live_links for t in digest.trend], marker="s", label="live backlinks")
    axes.set_title(f"Link profile, last {len(digest.trend)} weeks")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class DigestLedger:
    """Exactly-once posting: one ``digests`` document per (period, channel), written after a channel
    got its post. A restart re-posts only where no document says "posted"; a crash between two channels
    therefore does not repost to the first."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    async def posted(self, period: str, channel: str) -> bool:
        doc = await self._store.get(DIGESTS_TABLE, _ledger_id(period, channel))
        return bool(doc and doc.get("status") == "posted")

    async def mark_posted(self, digest: Digest, channel: str, *, ts: str = "") -> None:
        await self._store.upsert(
            DIGESTS_TABLE,
            {
                "id": _ledger_id(digest.period, channel),
                "period": digest.period,
                "channel": channel,
                "status": "posted",
                "since": digest.since,
                "until": digest.until,
                "ts": ts,
                "referring_domains": list(digest.referring_domains),
                "posted_at": self._clock().isoformat(timespec="seconds"),
            },
            key=("id",),
        )


def _ledger_id(period: str, channel: str) -> str:
    return f"{period}:{channel}".lower().replace("#", "")
