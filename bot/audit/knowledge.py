"""Everything Linkpact already knows about links between us and other sites, read from the store.

Sources: the ``backlinks`` table (tracked and imported backlinks, with the monitor's ``state``), the
agreements' promised links (``theirs`` links to us, ``ours`` links, and links between partners that a
three-way agreement records), and the change log's ``new`` entries (when each referring domain was
first seen live: link velocity). Nothing here does network I/O.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any

from bot.agreements.model import AGREEMENTS_TABLE, Agreement, LinkHealth, PromisedLink, from_doc
from bot.backlinks.changes import CHANGES_TABLE, ChangeKind
from bot.backlinks.registry import BACKLINKS_TABLE
from bot.store import Store
from bot.urls import link_key, url_registrable_domain


class LinkStatus(StrEnum):
    """What is known about one link. Only ``live`` and ``unverified`` count as "they link to us"."""

    LIVE = "live"  # verified live by the monitor (or seen by this audit)
    UNVERIFIED = "unverified"  # tracked or imported, never verified: taken at its word
    PENDING = "pending"  # promised, not there yet, deadline not passed
    LOST = "lost"  # was live, loss confirmed
    MISSING = "missing"  # checked and never found (past the deadline for a promised link)


LINKING = frozenset({LinkStatus.LIVE, LinkStatus.UNVERIFIED})
# When two records describe one link, the more alive one wins (a recheck records both together).
_RANK = {s: n for n, s in enumerate((LinkStatus.LIVE, LinkStatus.UNVERIFIED, LinkStatus.PENDING,
                                     LinkStatus.LOST, LinkStatus.MISSING))}  # fmt: skip


@dataclass(frozen=True, slots=True)
class KnownLink:
    """A link between two sites as Linkpact knows it. ``anchor``/``rel``/``placement`` are the last seen
    ones (``None`` when never seen; ``anchor`` falls back to the agreed anchor); times are ISO 8601."""

    source_url: str
    target_url: str
    source_domain: str
    target_domain: str
    status: LinkStatus
    origins: tuple[str, ...]  # "backlink", "agreement"
    agreement_ids: tuple[str, ...] = ()
    anchor: str | None = None
    agreed_anchor: str | None = None
    rel: tuple[str, ...] | None = None
    placement: str | None = None
    first_live_at: str | None = None
    lost_at: str | None = None
    reason: str = ""
    # The backlink tool's own "first seen" date of an imported link (ISO date): closer to when the link
    # was made than Linkpact's first sighting, which for an import is the import's week.
    first_seen: str | None = None

    @property
    def linking(self) -> bool:
        return self.status in LINKING


@dataclass
class Knowledge:
    """``links``: one :class:`KnownLink` per (source, target) pair; ``agreements``: not pruned;
    ``first_live``: referring domain -> earliest ISO time a link from it to us was first seen live."""

    domain: str
    links: list[KnownLink] = field(default_factory=list)
    agreements: list[Agreement] = field(default_factory=list)
    first_live: dict[str, str] = field(default_factory=dict)

    @property
    def inbound(self) -> list[KnownLink]:
        """Links from other sites to ours."""
        return [k for k in self.links if k.target_domain == self.domain and k.source_domain != self.domain]

    @property
    def between_others(self) -> list[KnownLink]:
        """Links where neither side is ours (recorded by three-way agreements or tracked by hand)."""
        return [k for k in self.links if self.domain not in (k.source_domain, k.target_domain)]

    @property
    def partner_domains(self) -> set[str]:
        """Registrable domains we have an agreement with (or that an agreement's links touch)."""
        domains = {a.partner_domain for a in self.agreements}
        for agreement in self.agreements:
            for link in agreement.links:
                domains.add(url_registrable_domain(link.source_url))
                domains.add(url_registrable_domain(link.target_url))
        domains.discard(self.domain)
        domains.discard("")
        return domains

    def agreements_with(self, domain: str) -> list[Agreement]:
        """Agreements whose partner is ``domain`` or one of whose links sits on or points to it."""
        out = []
        for agreement in self.agreements:
            touched = {agreement.partner_domain}
            for link in agreement.links:
                touched |= {url_registrable_domain(link.source_url), url_registrable_domain(link.target_url)}
            if domain in touched:
                out.append(agreement)
        return out


def _backlink_status(doc: dict[str, Any], deadline: date | None, today: date) -> LinkStatus:
    state = doc.get("state")
    if state == "live":
        return LinkStatus.LIVE
    if state == "lost":
        return LinkStatus.LOST
    if doc.get("last_verdict") == "lost":  # checked, never found
        if deadline is not None and today <= deadline:
            return LinkStatus.PENDING
        return LinkStatus.MISSING
    return LinkStatus.UNVERIFIED


def _promised_status(link: PromisedLink, deadline: date, today: date) -> LinkStatus:
    if link.health is LinkHealth.HEALTHY:
        return LinkStatus.LIVE
    if link.health is LinkHealth.FAILING:
        if link.ever_healthy:
            return LinkStatus.LOST
        return LinkStatus.PENDING if today <= deadline else LinkStatus.MISSING
    return LinkStatus.UNVERIFIED


def _key(source_url: str, target_url: str) -> tuple[str, str] | None:
    try:
        return link_key(source_url), link_key(target_url)
    except ValueError:
        return None


def _merge(old: KnownLink, new: KnownLink) -> KnownLink:
    best, other = (old, new) if _RANK[old.status] <= _RANK[new.status] else (new, old)
    return replace(
        best,
        origins=tuple(dict.fromkeys(old.origins + new.origins)),
        agreement_ids=tuple(dict.fromkeys(old.agreement_ids + new.agreement_ids)),
        anchor=best.anchor if best.anchor is not None else other.anchor,
        agreed_anchor=best.agreed_anchor or other.agreed_anchor,
        rel=best.rel if best.rel is not None else other.rel,
        placement=best.placement or other.placement,
        first_live_at=min(filter(None, (old.first_live_at, new.first_live_at)), default=None),
        first_seen=min(filter(None, (old.first_seen, new.first_seen)), default=None),
    )


async def load_knowledge(store: Store, domain: str, today: date) -> Knowledge:
    """Read backlinks, agreements (not pruned) and the change log for our registrable ``domain``.
    ``today`` decides whether a promised link that is not there yet is still ``pending``."""
    agreements = [from_doc(doc) for doc in await store.find(AGREEMENTS_TABLE)]
    active = [a for a in agreements if not a.pruned_at]
    deadlines = {a.id: a.deadline for a in agreements}
    merged: dict[tuple[str, str], KnownLink] = {}

    def add(link: KnownLink) -> None:
        key = _key(link.source_url, link.target_url)
        if key is None or link.source_domain == link.target_domain:
            return
        merged[key] = _merge(merged[key], link) if key in merged else link

    for doc in await store.find(BACKLINKS_TABLE):
        agreement_id = str(doc.get("agreement_id") or "")
        seen = doc.get("seen") or {}
        # What an imported backlink's export said (bot.imports): used until a recheck has seen the link.
        reported = doc.get("reported") or {}
        rel = seen.get("rel") if seen else reported.get("rel")
        add(
            KnownLink(
                source_url=doc["source_url"],
                target_url=doc["target_url"],
                source_domain=url_registrable_domain(doc["source_url"]),
                target_domain=url_registrable_domain(doc["target_url"]),
                status=_backlink_status(doc, deadlines.get(agreement_id), today),
                origins=("backlink",),
                agreement_ids=(agreement_id,) if agreement_id else (),
                anchor=seen.get("anchor") if seen else reported.get("anchor"),
                rel=tuple(rel) if rel is not None else None,
                placement=seen.get("placement") or None,
                first_live_at=doc.get("first_live_at"),
                lost_at=doc.get("lost_at"),
                reason=doc.get("last_reason") or "",
                first_seen=reported.get("first_seen"),
            )
        )
    for agreement in active:
        for link in agreement.links:
            add(
                KnownLink(
                    source_url=link.source_url,
                    target_url=link.target_url,
                    source_domain=url_registrable_domain(link.source_url),
                    target_domain=url_registrable_domain(link.target_url),
                    status=_promised_status(link, agreement.deadline, today),
                    origins=("agreement",),
                    agreement_ids=(agreement.id,),
                    anchor=link.seen_anchor,
                    agreed_anchor=link.expected_anchor,
                    rel=link.seen_rel if link.checked_at and link.seen_anchor is not None else None,
                    placement=link.seen_placement,
                    reason=link.reason,
                )
            )
    knowledge = Knowledge(domain=domain, links=list(merged.values()), agreements=active)
    knowledge.first_live = await _first_live(store, knowledge)
    return knowledge


async def _first_live(store: Store, knowledge: Knowledge) -> dict[str, str]:
    """Referring domain -> the earliest time one of its links to our domain is known to exist: the
    backlink tool's ``first_seen`` date for an imported link that has one, else when Linkpact first saw
    it live (the change log's ``new`` entries, and ``first_live_at`` for entries older than the log)."""
    born: dict[tuple[str, str], list[str]] = defaultdict(list)
    for doc in await store.find(CHANGES_TABLE, kind=ChangeKind.NEW.value):
        key = _key(doc.get("source_url") or "", doc.get("target_url") or "")
        if key is not None and doc.get("at"):
            born[key].append(doc["at"])
    first: dict[str, list[str]] = defaultdict(list)
    for link in knowledge.inbound:
        key = _key(link.source_url, link.target_url)
        if link.first_seen:
            first[link.source_domain].append(f"{link.first_seen[:10]}T00:00:00+00:00")
            continue
        times = born.get(key, []) if key is not None else []
        if link.first_live_at:
            times = [*times, link.first_live_at]
        if times:
            first[link.source_domain].append(min(times))
    return {domain: min(times) for domain, times in first.items()}
